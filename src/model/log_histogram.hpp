// A mergeable log-bucket histogram over int64 values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace monitor::model {

/// Buckets are exact below 128; above, each power of two is split into 64
/// equal buckets, so a bucket's width is at most 1/64 of its lower bound and
/// the midpoint reported for a quantile is within 1/128 (0.78 %) of every value
/// in it. Negative values mirror positive ones. Merging adds bucket counts, so
/// merged histograms equal the histogram of all values. Not thread-safe.
class LogHistogram {
 public:
  struct Bucket {
    int32_t key;  // bucket_key(value); ordered like the values it holds
    uint32_t reserved;
    uint64_t count;
    friend bool operator==(const Bucket&, const Bucket&) = default;
  };

  static constexpr double kMaxRelativeError = 1.0 / 128.0;

  static int32_t bucket_key(int64_t value) noexcept;
  /// The value reported for a bucket: its midpoint (exact buckets: the value).
  static int64_t bucket_value(int32_t key) noexcept;

  void add(int64_t value) noexcept { add_to_bucket(bucket_key(value), 1); }
  void add_to_bucket(int32_t key, uint64_t count);
  void merge(const LogHistogram& other);
  void clear() noexcept { buckets_.clear(); }

  /// The value at quantile q in [0, 1] (nearest rank), clamped to [lo, hi];
  /// 0 when empty.
  int64_t quantile(double q, int64_t lo, int64_t hi) const noexcept;

  uint64_t total() const noexcept;
  const std::vector<Bucket>& buckets() const noexcept { return buckets_; }
  bool empty() const noexcept { return buckets_.empty(); }
  size_t memory_bytes() const noexcept { return buckets_.capacity() * sizeof(Bucket); }

  friend bool operator==(const LogHistogram&, const LogHistogram&) = default;

 private:
  std::vector<Bucket> buckets_;  // sorted by key
};

}  // namespace monitor::model
