// Time sources. The SDK stamps reports with the TSC when the kernel itself
// trusts it (invariant TSC and clocksource "tsc"): 8 ns instead of 19 ns for
// clock_gettime on this class of machine. The agent converts ticks to ns.
#pragma once

#include <time.h>
#include <x86intrin.h>

#include <cstdint>

namespace monitor {

/// The Unix second that `time_ns` (ns since the epoch) falls in, rounding
/// down for times before the epoch too.
constexpr int64_t second_of_ns(int64_t time_ns) noexcept {
  return time_ns / 1'000'000'000 - (time_ns % 1'000'000'000 < 0 ? 1 : 0);
}

/// The first second of the minute that `second` falls in.
constexpr int64_t minute_of(int64_t second) noexcept { return second - ((second % 60) + 60) % 60; }

inline int64_t realtime_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline int64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

/// Whether a deadline `due_ns` on the real-time clock, set to recur every
/// `period_ns`, has come at `now_ns`. Also when it lies more than a period
/// ahead: the clock stepped back, and waiting the step out would stop the work
/// for as long (minutes, after an NTP step).
constexpr bool real_time_due(int64_t now_ns, int64_t due_ns, int64_t period_ns) noexcept {
  return now_ns >= due_ns || due_ns - now_ns > period_ns;
}

inline uint64_t read_tsc() noexcept { return __rdtsc(); }

/// True when TSC ticks taken on any core of this host are one global clock.
/// Reads /proc and /sys; call once, not per report.
bool tsc_is_reliable() noexcept;

/// The clocks a TscClock reads; a seam for tests (a stepped wall clock cannot
/// be provoked on a shared machine).
struct TscSources {
  uint64_t (*tsc)() noexcept = read_tsc;
  int64_t (*realtime)() noexcept = realtime_ns;
  int64_t (*monotonic)() noexcept = monotonic_ns;
};

/// Converts TSC ticks to ns since the epoch. The tick rate is measured against
/// CLOCK_MONOTONIC over an ever longer baseline (a step of the wall clock, by
/// an operator or NTP, must not skew it); the offset is re-anchored to
/// CLOCK_REALTIME on every recalibrate(), so converted times follow the wall
/// clock, steps included, within a few microseconds. Not thread-safe: one owner.
class TscClock {
 public:
  using Sources = TscSources;

  /// Takes the first anchor and measures the tick rate over `warmup_ms`.
  explicit TscClock(int warmup_ms = 20, Sources sources = {}) noexcept;

  /// Re-anchors to the current realtime clock and refines the rate. Cheap; call
  /// about once a second.
  void recalibrate() noexcept;

  int64_t to_ns(uint64_t tsc) const noexcept {
    const double delta = static_cast<double>(static_cast<int64_t>(tsc - anchor_tsc_));
    return anchor_ns_ + static_cast<int64_t>(delta * ns_per_tick_);
  }
  double ticks_per_second() const noexcept { return 1e9 / ns_per_tick_; }

 private:
  struct Sample {
    uint64_t tsc;
    int64_t realtime_ns;
    int64_t monotonic_ns;
  };
  Sample sample() const noexcept;

  const Sources sources_;
  Sample origin_{};
  uint64_t anchor_tsc_ = 0;
  int64_t anchor_ns_ = 0;
  double ns_per_tick_ = 1.0;
};

}  // namespace monitor
