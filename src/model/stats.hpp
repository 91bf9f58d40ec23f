// Per-period statistics of one series, exactly mergeable (docs/design.md section 1).
#pragma once

#include <cstdint>
#include <limits>

namespace monitor::model {

/// Everything SUM, MAX, MIN, AVG, FIRST, LAST and COUNT need. HIST lives in
/// LogHistogram beside it. Plain value type; not thread-safe.
///
/// sum is kept modulo 2^64 (two's complement): addition stays associative and
/// commutative, so merging is exact even when a sum overflows int64.
/// FIRST keeps the earliest time (the earlier-added report wins a tie), LAST
/// the latest (the later-added report wins a tie).
struct Stats {
  uint64_t count = 0;
  int64_t sum = 0;
  int64_t min = std::numeric_limits<int64_t>::max();
  int64_t max = std::numeric_limits<int64_t>::min();
  int64_t first = 0;
  int64_t last = 0;
  int64_t first_time = std::numeric_limits<int64_t>::max();
  int64_t last_time = std::numeric_limits<int64_t>::min();

  void add(int64_t value, int64_t time_ns) noexcept {
    ++count;
    sum = static_cast<int64_t>(static_cast<uint64_t>(sum) + static_cast<uint64_t>(value));
    if (value < min) min = value;
    if (value > max) max = value;
    if (time_ns < first_time) {
      first_time = time_ns;
      first = value;
    }
    if (time_ns >= last_time) {
      last_time = time_ns;
      last = value;
    }
  }

  /// Folds `later` in as if its reports had been added after this one's.
  void merge(const Stats& later) noexcept {
    if (later.count == 0) return;
    count += later.count;
    sum = static_cast<int64_t>(static_cast<uint64_t>(sum) + static_cast<uint64_t>(later.sum));
    if (later.min < min) min = later.min;
    if (later.max > max) max = later.max;
    if (later.first_time < first_time) {
      first_time = later.first_time;
      first = later.first;
    }
    if (later.last_time >= last_time) {
      last_time = later.last_time;
      last = later.last;
    }
  }

  /// Mean for AVG; 0 for an empty period.
  double average() const noexcept {
    return count == 0 ? 0.0 : static_cast<double>(sum) / static_cast<double>(count);
  }

  friend bool operator==(const Stats&, const Stats&) = default;
};

}  // namespace monitor::model
