// Time sources. The SDK stamps reports with the TSC when the kernel itself
// trusts it (invariant TSC and clocksource "tsc"): 8 ns instead of 19 ns for
// clock_gettime on this class of machine. The agent converts ticks to ns.
#pragma once

#include <time.h>
#include <x86intrin.h>

#include <cstdint>

namespace monitor {

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

inline uint64_t read_tsc() noexcept { return __rdtsc(); }

/// True when TSC ticks taken on any core of this host are one global clock.
/// Reads /proc and /sys; call once, not per report.
bool tsc_is_reliable() noexcept;

/// Converts TSC ticks to ns since the epoch. Calibrated against CLOCK_REALTIME
/// over an ever longer baseline and re-anchored on every recalibrate(), so the
/// error stays within a few microseconds. Not thread-safe: one owner.
class TscClock {
 public:
  /// Takes the first anchor and measures the tick rate over `warmup_ms`.
  explicit TscClock(int warmup_ms = 20) noexcept;

  /// Re-anchors to the current realtime clock and refines the rate. Cheap; call
  /// about once a second.
  void recalibrate() noexcept;

  int64_t to_ns(uint64_t tsc) const noexcept {
    const double delta = static_cast<double>(static_cast<int64_t>(tsc - anchor_tsc_));
    return anchor_ns_ + static_cast<int64_t>(delta * ns_per_tick_);
  }
  double ticks_per_second() const noexcept { return 1e9 / ns_per_tick_; }

 private:
  struct Pair {
    uint64_t tsc;
    int64_t ns;
  };
  static Pair sample() noexcept;

  Pair origin_{};
  uint64_t anchor_tsc_ = 0;
  int64_t anchor_ns_ = 0;
  double ns_per_tick_ = 1.0;
};

}  // namespace monitor
