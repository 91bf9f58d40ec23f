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

  void add(int64_t value) { add_to_bucket(bucket_key(value), 1); }
  void add_to_bucket(int32_t key, uint64_t count);
  void merge(const LogHistogram& other);
  /// Empties the histogram, keeping its memory for reuse.
  void clear() noexcept;

  /// Calls f(key, count) for every non-empty bucket in key order.
  template <class F>
  void for_each(F&& f) const {
    if (dense_.empty()) {
      for (const Bucket& b : sparse_) f(b.key, b.count);
      return;
    }
    for (size_t i = 0; i < dense_.size(); ++i) {
      if (dense_[i] != 0) f(dense_base_ + static_cast<int32_t>(i), dense_[i]);
    }
  }

  /// The value at quantile q in [0, 1] (nearest rank), clamped to [lo, hi];
  /// 0 when empty.
  int64_t quantile(double q, int64_t lo, int64_t hi) const noexcept;

  uint64_t total() const noexcept;
  /// The non-empty buckets in key order (allocates; for tests and tools).
  std::vector<Bucket> buckets() const;
  bool empty() const noexcept { return sparse_.empty() && dense_.empty(); }
  size_t memory_bytes() const noexcept {
    return sparse_.capacity() * sizeof(Bucket) + dense_.capacity() * sizeof(uint64_t);
  }

  friend bool operator==(const LogHistogram& a, const LogHistogram& b) { return a.buckets() == b.buckets(); }

 private:
  // Sparse (a sorted vector) while a histogram holds few buckets, which is the
  // common case for one series in one second; dense (a count per key over the
  // span in use) once it holds more than kSparseMax over a span of at most
  // kDenseMaxSpan keys, so a busy series adds in O(1).
  static constexpr size_t kSparseMax = 24;
  static constexpr int32_t kDenseMaxSpan = 1024;
  void to_dense();

  std::vector<Bucket> sparse_;
  int32_t dense_base_ = 0;
  std::vector<uint64_t> dense_;
};

}  // namespace monitor::model
