// plan_notices(), a template so the caller's silence check inlines.
#pragma once

namespace monitor::alarm {

template <typename Muted>
std::vector<Notice> plan_notices(const Rule& rule, std::map<int64_t, AlarmState>& alarms,
                                 const std::vector<Transition>& transitions, int64_t minute, Muted&& muted) {
  Notice firing{Notice::Kind::kFiring, minute, {}}, resolved{Notice::Kind::kResolved, minute, {}};
  Notice gone{Notice::Kind::kGone, minute, {}};
  Notice repeat{Notice::Kind::kRepeat, minute, {}}, escalation{Notice::Kind::kEscalation, minute, {}};
  for (const Transition& t : transitions) {
    auto it = alarms.find(t.server);
    if (it == alarms.end()) continue;
    AlarmState& a = it->second;
    if (t.kind == EventKind::kFiring) {
      if (muted(t.server) || a.notifications >= rule.max_notifications) continue;
      firing.servers.push_back(t.server);
      ++a.notifications;
      a.last_notified = minute;
    } else if (a.notifications > 0) {
      // A resolution is sent only for an alarm people were told about.
      if (!muted(t.server)) (t.kind == EventKind::kGone ? gone : resolved).servers.push_back(t.server);
    }
  }
  for (auto& [server, a] : alarms) {
    if (a.state != State::kFiring || a.acked_at != 0 || a.fired_at == minute) continue;
    if (a.notifications >= rule.max_notifications || muted(server)) continue;
    if (rule.escalate_to && !a.escalated && minute - a.fired_at >= rule.escalate_after) {
      escalation.servers.push_back(server);
      a.escalated = true;
      ++a.notifications;
      a.last_notified = minute;
      continue;
    }
    // A repeat also covers an alarm whose firing was muted or capped before.
    const int64_t from = a.last_notified != 0 ? a.last_notified : a.fired_at;
    if (rule.repeat > 0 && minute - from >= rule.repeat) {
      repeat.servers.push_back(server);
      ++a.notifications;
      a.last_notified = minute;
    }
  }
  std::vector<Notice> out;
  for (Notice* n : {&firing, &resolved, &gone, &repeat, &escalation}) {
    if (!n->servers.empty()) out.push_back(std::move(*n));
  }
  return out;
}

}  // namespace monitor::alarm
