#include "alarm/evaluator.hpp"

#include <cmath>

namespace monitor::alarm {
namespace {

bool compare(double v, Cmp cmp, double x) noexcept {
  switch (cmp) {
    case Cmp::kGt: return v > x;
    case Cmp::kGe: return v >= x;
    case Cmp::kLt: return v < x;
    case Cmp::kLe: return v <= x;
    case Cmp::kEq: return v == x;
    case Cmp::kNe: return v != x;
  }
  return false;
}

struct WindowFigures {
  int64_t count = 0;
  double sum = 0, max = -INFINITY, min = INFINITY;
};

template <typename Visit>
void for_window(const MinuteSeries& series, int64_t last, int64_t window, Visit&& visit) {
  for (int64_t m = last - window + 1; m <= last; ++m) visit(series.at(m));
}

WindowFigures figures(const MinuteSeries& series, int64_t last, int64_t window) {
  WindowFigures f;
  for_window(series, last, window, [&](std::optional<double> v) {
    if (!v) return;
    ++f.count;
    f.sum += *v;
    f.max = std::max(f.max, *v);
    f.min = std::min(f.min, *v);
  });
  return f;
}

std::optional<double> window_value(const Cond& c, const MinuteSeries& series, int64_t minute) {
  const WindowFigures f = figures(series, minute, c.window);
  if (c.fn == Cond::Fn::kCount) return static_cast<double>(f.count);
  if (f.count == 0) return std::nullopt;
  switch (c.fn) {
    case Cond::Fn::kMax: return f.max;
    case Cond::Fn::kMin: return f.min;
    case Cond::Fn::kAvg: return f.sum / static_cast<double>(f.count);
    case Cond::Fn::kSum: return f.sum;
    default: return std::nullopt;
  }
}

std::optional<double> change_value(const Cond& c, const MinuteSeries& series, int64_t minute) {
  const WindowFigures now = figures(series, minute, c.window);
  const WindowFigures then = figures(series, minute - c.back, c.window);
  if (now.count == 0 || then.count == 0) return std::nullopt;
  const double a = now.sum / static_cast<double>(now.count);
  const double b = then.sum / static_cast<double>(then.count);
  switch (c.fn) {
    case Cond::Fn::kDiff: return a - b;
    case Cond::Fn::kPdiff: return b == 0 ? std::nullopt : std::optional<double>((a - b) / std::fabs(b) * 100);
    case Cond::Fn::kRatio: return b == 0 ? std::nullopt : std::optional<double>(a / b);
    default: return std::nullopt;
  }
}

}  // namespace

void MinuteSeries::put(int64_t minute, double value) {
  values_[minute] = value;
  const int64_t keep_from = values_.rbegin()->first - span_ + 1;
  values_.erase(values_.begin(), values_.lower_bound(keep_from));
}

std::optional<double> MinuteSeries::at(int64_t minute) const {
  const auto it = values_.find(minute);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

bool holds(const Cond& c, const MinuteSeries& series, int64_t minute) {
  switch (c.kind) {
    case Cond::Kind::kAnd:
      for (const auto& child : c.children) {
        if (!holds(*child, series, minute)) return false;
      }
      return true;
    case Cond::Kind::kOr:
      for (const auto& child : c.children) {
        if (holds(*child, series, minute)) return true;
      }
      return false;
    case Cond::Kind::kNot: return !holds(*c.children[0], series, minute);
    case Cond::Kind::kValue: {
      const auto v = series.at(minute);
      return v && compare(*v, c.cmp, c.threshold);
    }
    case Cond::Kind::kWindow: {
      const auto v = window_value(c, series, minute);
      return v && compare(*v, c.cmp, c.threshold);
    }
    case Cond::Kind::kAll: {
      bool all = true;
      for_window(series, minute, c.window, [&](std::optional<double> v) { all = all && v && compare(*v, c.cmp, c.threshold); });
      return all;
    }
    case Cond::Kind::kAny: {
      bool any = false;
      for_window(series, minute, c.window, [&](std::optional<double> v) { any = any || (v && compare(*v, c.cmp, c.threshold)); });
      return any;
    }
    case Cond::Kind::kLookup: {
      int64_t passing = 0;
      for_window(series, minute, c.window, [&](std::optional<double> v) { passing += v && compare(*v, c.cmp, c.threshold); });
      return passing >= c.at_least;
    }
    case Cond::Kind::kChange: {
      const auto v = change_value(c, series, minute);
      return v && compare(*v, c.cmp, c.threshold);
    }
    case Cond::Kind::kNoData: return figures(series, minute, c.window).count == 0;
  }
  return false;
}

std::string_view state_name(State s) noexcept {
  switch (s) {
    case State::kOk: return "ok";
    case State::kPending: return "pending";
    case State::kFiring: return "firing";
    case State::kResolved: return "resolved";
  }
  return "ok";
}

std::optional<State> parse_state(std::string_view s) noexcept {
  for (State st : {State::kOk, State::kPending, State::kFiring, State::kResolved}) {
    if (state_name(st) == s) return st;
  }
  return std::nullopt;
}

std::string_view event_name(EventKind k) noexcept {
  switch (k) {
    case EventKind::kFiring: return "firing";
    case EventKind::kResolved: return "resolved";
    case EventKind::kGone: return "gone";
  }
  return "firing";
}

std::string_view notice_name(Notice::Kind k) noexcept {
  switch (k) {
    case Notice::Kind::kFiring: return "firing";
    case Notice::Kind::kResolved: return "resolved";
    case Notice::Kind::kGone: return "gone";
    case Notice::Kind::kRepeat: return "repeat";
    case Notice::Kind::kEscalation: return "escalation";
  }
  return "firing";
}

namespace {

// A server no longer watched (silent past the watch period, or out of the
// rule's group): no condition is judged; a firing alarm ends as gone, any
// other goes quiet, and the caller forgets it.
std::optional<Transition> stop_watching(AlarmState& a, int64_t server, int64_t minute) {
  const bool was_firing = a.state == State::kFiring;
  a.state = was_firing ? State::kResolved : State::kOk;
  a.since = minute;
  a.streak = 0;
  if (was_firing) return Transition{EventKind::kGone, server, minute, a.value};
  return std::nullopt;
}

}  // namespace

std::optional<Transition> leave_group(AlarmState& a, int64_t server, int64_t minute) {
  if (minute <= a.evaluated) return std::nullopt;
  a.evaluated = minute;
  return stop_watching(a, server, minute);
}

std::optional<Transition> step(const Rule& rule, AlarmState& a, int64_t server, int64_t minute,
                               const MinuteSeries& series) {
  if (minute <= a.evaluated) return std::nullopt;
  a.evaluated = minute;
  a.value = series.at(minute);
  if (a.value) {
    a.seen = minute;
  } else if (a.seen == 0) {  // a new alarm, or one stored before `seen` was
    a.seen = series.empty() ? minute : std::min(series.newest(), minute);
  }
  if (rule.per_server && server_forgotten(a.seen, minute)) return stop_watching(a, server, minute);
  const bool bad = holds(*rule.when, series, minute);
  auto fire = [&]() -> Transition {
    a.state = State::kFiring;
    a.since = a.fired_at = minute;
    a.streak = 0;
    a.notifications = 0;
    a.last_notified = 0;
    a.escalated = false;
    a.acked_at = 0;
    a.acked_by.clear();
    return {EventKind::kFiring, server, minute, a.value};
  };
  switch (a.state) {
    case State::kOk:
    case State::kResolved:
      if (!bad) return std::nullopt;
      a.streak = 1;
      if (rule.pending <= 1) return fire();
      a.state = State::kPending;
      a.since = minute;
      return std::nullopt;
    case State::kPending:
      if (!bad) {
        a.state = State::kOk;
        a.streak = 0;
        a.since = minute;
        return std::nullopt;
      }
      if (++a.streak >= rule.pending) return fire();
      return std::nullopt;
    case State::kFiring: {
      // Hysteresis: `recover` ends an episode only once `when` no longer
      // holds too; otherwise a recovery inside a still-bad window would
      // resolve and fire again as a new episode (clearing its ack and caps).
      const bool recovered = !bad && (!rule.recover || holds(*rule.recover, series, minute));
      if (!recovered) {
        a.streak = 0;
        return std::nullopt;
      }
      if (++a.streak <= rule.keep) return std::nullopt;
      a.state = State::kResolved;
      a.since = minute;
      a.streak = 0;
      return Transition{EventKind::kResolved, server, minute, a.value};
    }
  }
  return std::nullopt;
}

}  // namespace monitor::alarm
