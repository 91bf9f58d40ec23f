#include "alarm/admin.hpp"

#include "alarm/records.hpp"

namespace monitor::alarm {

AckOutcome acknowledge(registry::Registry& registry, const std::string& rule, std::optional<int64_t> server,
                       const std::string& by, int64_t minute, int tries) {
  const std::string kind(kAlarmsKind);
  for (int attempt = 0; attempt < tries; ++attempt) {
    auto entry = registry.get(kind, rule);
    if (!entry) return {AckOutcome::Status::kRegistryFailed, 0, entry.error()};
    if (!*entry) return {AckOutcome::Status::kNoAlarms, 0, {}};
    RuleAlarms state = alarms_from_value((*entry)->value);
    int acknowledged = 0;  // counted again each round: another writer may have acknowledged some meanwhile
    for (auto& [id, alarm] : state.alarms) {
      if (alarm.state != State::kFiring || alarm.acked_at != 0 || (server && *server != id)) continue;
      alarm.acked_at = minute;
      alarm.acked_by = by;
      ++acknowledged;
    }
    if (acknowledged == 0) return {AckOutcome::Status::kNothingToAcknowledge, 0, {}};
    auto done = registry.commit({{kind, rule, (*entry)->version}}, {{kind, rule, alarms_value(state)}});
    if (!done) return {AckOutcome::Status::kRegistryFailed, 0, done.error()};
    if (*done) return {AckOutcome::Status::kDone, acknowledged, {}};
  }
  return {AckOutcome::Status::kKeptChanging, 0, {}};
}

}  // namespace monitor::alarm
