// Evaluating a rule's condition on a series, and an alarm's life cycle.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "alarm/rule.hpp"

namespace monitor::alarm {

/// The finalised minutes of one series (minute numbers: Unix seconds / 60).
class MinuteSeries {
 public:
  /// Keeps the last `span` minutes before the newest one put.
  explicit MinuteSeries(int64_t span = 1) : span_(span) {}
  void put(int64_t minute, double value);
  /// Makes it keep at least `span` minutes from now on.
  void widen(int64_t span) { span_ = std::max(span_, span); }
  std::optional<double> at(int64_t minute) const;
  int64_t newest() const noexcept { return values_.empty() ? 0 : values_.rbegin()->first; }
  bool empty() const noexcept { return values_.empty(); }

 private:
  int64_t span_;
  std::map<int64_t, double> values_;  // sparse: a series with gaps costs only its minutes
};

/// Whether `cond` holds for `series` at `minute`. A term with no data to
/// compare (an empty window, a change against a missing minute) does not hold.
bool holds(const Cond& cond, const MinuteSeries& series, int64_t minute);

enum class State { kOk, kPending, kFiring, kResolved };
std::string_view state_name(State s) noexcept;
std::optional<State> parse_state(std::string_view s) noexcept;

/// An alarm: one rule on one series (a server, or the total: server -1).
struct AlarmState {
  State state = State::kOk;
  int64_t streak = 0;     // consecutive minutes: `when` held (pending), or recovered (firing)
  int64_t since = 0;      // minute the state began
  int64_t fired_at = 0;   // minute this episode fired: it names the episode
  int64_t evaluated = 0;  // last minute evaluated
  int64_t seen = 0;       // last minute evaluated that had a value (per-server rules: when a server is gone)
  std::optional<double> value;  // at the last minute evaluated
  int64_t notifications = 0;    // sent in this episode (firing, repeats, escalation)
  int64_t last_notified = 0;    // minute of the last one
  bool escalated = false;
  int64_t acked_at = 0;  // minute acknowledged (0: not); cleared by a new episode
  std::string acked_by;
};

/// kGone: a firing alarm of a server silent for the watch period
/// (kForgetServerAfter): it ends, and the server is forgotten.
enum class EventKind { kFiring, kResolved, kGone };
std::string_view event_name(EventKind k) noexcept;

struct Transition {
  EventKind kind;
  int64_t server;
  int64_t minute;
  std::optional<double> value;
};

/// Per-server rules: which servers the rule watches at `minute`. A server
/// seen in the rule's span stays watched (so nodata can fire) until it has
/// been silent for a day (the watch period): then its alarm, if firing,
/// resolves as gone, and the server is forgotten.
inline constexpr int64_t kForgetServerAfter = 1440;

/// Steps one alarm to `minute`: `when` (and `recover`) evaluated there, or,
/// for a server silent past the watch period, gone. Returns the transition
/// it made, if any. Idempotent for a minute already evaluated (nothing
/// happens), so a replay after a restart changes nothing.
std::optional<Transition> step(const Rule& rule, AlarmState& alarm, int64_t server, int64_t minute,
                               const MinuteSeries& series);

/// A server that left the rule's group (docs/rules.md, "Templates and
/// groups") at `minute`: a firing alarm ends as gone, any other goes quiet;
/// the caller forgets the alarm.
std::optional<Transition> leave_group(AlarmState& alarm, int64_t server, int64_t minute);

/// Whether a per-server rule has stopped watching `server`, last seen at
/// minute `seen`: the engine and `rule test` forget it at the same minute.
inline bool server_forgotten(int64_t seen, int64_t minute) noexcept { return minute - seen > kForgetServerAfter; }

/// What one minute's evaluation asks to send, grouped per rule and kind: one
/// message for many series that fired together.
struct Notice {
  enum class Kind { kFiring, kResolved, kGone, kRepeat, kEscalation };
  Kind kind;
  int64_t minute;
  std::vector<int64_t> servers;
};
std::string_view notice_name(Notice::Kind k) noexcept;

/// Given the transitions of one minute and every alarm of the rule after
/// them, the notices to send: firing and resolved as they happen; repeats of
/// firing, unacknowledged alarms every `repeat` minutes; an escalation once
/// when one fired `escalate_after` minutes ago unacknowledged. Counts them in
/// the alarms and stops at `max_notifications` per episode. `muted(server)`
/// says a silence or an inhibition holds: nothing is sent and nothing counted.
template <typename Muted>
std::vector<Notice> plan_notices(const Rule& rule, std::map<int64_t, AlarmState>& alarms,
                                 const std::vector<Transition>& transitions, int64_t minute, Muted&& muted);

}  // namespace monitor::alarm

#include "alarm/evaluator_inl.hpp"
