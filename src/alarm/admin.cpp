#include "alarm/admin.hpp"

#include <fmt/format.h>

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

namespace {

ChangeOutcome failed(const boost::system::error_code& error) {
  return {ChangeOutcome::Status::kRegistryFailed, {}, error};
}

}  // namespace

ChangeOutcome store_rules(registry::Registry& registry, const std::vector<Rule>& rules, bool replace) {
  const std::string kind(kRulesKind);
  std::vector<registry::Precondition> pre;
  std::vector<registry::Write> writes;
  for (const auto& rule : rules) {
    auto existing = registry.get(kind, rule.name);
    if (!existing) return failed(existing.error());
    if (*existing && !replace) return {ChangeOutcome::Status::kExists, rule.name, {}};
    pre.push_back({kind, rule.name, *existing ? (*existing)->version : 0});
    writes.push_back({kind, rule.name, rule_value(rule, rule.enabled)});
  }
  auto done = registry.commit(pre, writes);
  if (!done) return failed(done.error());
  return {*done ? ChangeOutcome::Status::kDone : ChangeOutcome::Status::kChangedMeanwhile, {}, {}};
}

ChangeOutcome remove_rule(registry::Registry& registry, const std::string& name) {
  auto existing = registry.get(std::string(kRulesKind), name);
  if (!existing) return failed(existing.error());
  if (!*existing) return {ChangeOutcome::Status::kNotFound, name, {}};
  auto done = registry.commit({}, {{std::string(kRulesKind), name, std::nullopt},
                                   {std::string(kAlarmsKind), name, std::nullopt}});
  if (!done) return failed(done.error());
  return {};
}

ChangeOutcome set_rule_enabled(registry::Registry& registry, const std::string& name, bool enabled, int tries) {
  const std::string kind(kRulesKind);
  for (int attempt = 0; attempt < tries; ++attempt) {
    auto entry = registry.get(kind, name);
    if (!entry) return failed(entry.error());
    if (!*entry) return {ChangeOutcome::Status::kNotFound, name, {}};
    boost::json::value value = (*entry)->value;
    if (auto* o = value.if_object()) (*o)["enabled"] = enabled;
    auto done = registry.commit({{kind, name, (*entry)->version}}, {{kind, name, value}});
    if (!done) return failed(done.error());
    if (*done) return {};
  }
  return {ChangeOutcome::Status::kChangedMeanwhile, name, {}};
}

ChangeOutcome add_silence(registry::Registry& registry, Silence& silence, int64_t now_ms) {
  silence.id = fmt::format("s{}", now_ms);
  const std::string kind(kSilencesKind);
  auto done = registry.commit({{kind, silence.id, 0}}, {{kind, silence.id, silence_value(silence)}});
  if (!done) return failed(done.error());
  if (!*done) return {ChangeOutcome::Status::kExists, silence.id, {}};
  return {};
}

ChangeOutcome remove_silence(registry::Registry& registry, const std::string& id) {
  const std::string kind(kSilencesKind);
  auto entry = registry.get(kind, id);
  if (!entry) return failed(entry.error());
  if (!*entry) return {ChangeOutcome::Status::kNotFound, id, {}};
  auto removed = registry.remove(kind, id);
  if (!removed) return failed(removed.error());
  return {};
}

}  // namespace monitor::alarm
