// A log line per interval at most, counting the ones held back.
#pragma once

#include <cstdint>

namespace monitor {

/// Lets one log line through per interval and counts the ones it held back, so
/// a flood of bad input costs a line a second, not a line per input.
/// Not thread-safe.
class LogThrottle {
 public:
  explicit LogThrottle(int64_t interval_ns = 1'000'000'000) noexcept : interval_ns_(interval_ns) {}

  /// True when the caller may log now; `suppressed` then holds how many were
  /// held back since the last line.
  bool allow(int64_t now_ns, uint64_t& suppressed) noexcept {
    if (now_ns - last_ns_ < interval_ns_) {
      ++held_;
      return false;
    }
    last_ns_ = now_ns;
    suppressed = held_;
    held_ = 0;
    return true;
  }

 private:
  const int64_t interval_ns_;
  int64_t last_ns_ = INT64_MIN / 2;
  uint64_t held_ = 0;
};

}  // namespace monitor
