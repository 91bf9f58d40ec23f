#include "model/log_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace monitor::model {
namespace {
constexpr int kSubBits = 6;                    // 64 buckets per power of two
constexpr uint64_t kExactLimit = 1u << (kSubBits + 1);  // 128: below this, one bucket per value

int32_t magnitude_key(uint64_t m) noexcept {
  if (m < kExactLimit) return static_cast<int32_t>(m);
  const int exponent = 63 - __builtin_clzll(m);  // >= 7
  const auto sub = static_cast<int32_t>((m >> (exponent - kSubBits)) & ((1u << kSubBits) - 1));
  return static_cast<int32_t>(kExactLimit) + (exponent - kSubBits - 1) * (1 << kSubBits) + sub;
}

uint64_t magnitude_value(int32_t key) noexcept {
  if (key < static_cast<int32_t>(kExactLimit)) return static_cast<uint64_t>(key);
  const int32_t rel = key - static_cast<int32_t>(kExactLimit);
  const int exponent = rel / (1 << kSubBits) + kSubBits + 1;
  const uint64_t sub = static_cast<uint64_t>(rel % (1 << kSubBits));
  const int shift = exponent - kSubBits;
  const uint64_t low = ((uint64_t{1} << kSubBits) + sub) << shift;
  return low + ((uint64_t{1} << shift) >> 1);
}
}  // namespace

int32_t LogHistogram::bucket_key(int64_t value) noexcept {
  if (value >= 0) return magnitude_key(static_cast<uint64_t>(value));
  // Negate in unsigned arithmetic so INT64_MIN has a magnitude too.
  return -magnitude_key(0 - static_cast<uint64_t>(value));
}

int64_t LogHistogram::bucket_value(int32_t key) noexcept {
  if (key >= 0) {
    const uint64_t v = magnitude_value(key);
    return v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
  }
  const uint64_t v = magnitude_value(-key);
  return v >= uint64_t{1} << 63 ? INT64_MIN : -static_cast<int64_t>(v);
}

void LogHistogram::add_to_bucket(int32_t key, uint64_t count) {
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), key,
                             [](const Bucket& b, int32_t k) { return b.key < k; });
  if (it != buckets_.end() && it->key == key) {
    it->count += count;
  } else {
    buckets_.insert(it, Bucket{key, 0, count});
  }
}

void LogHistogram::merge(const LogHistogram& other) {
  if (other.buckets_.empty()) return;
  if (buckets_.empty()) {
    buckets_ = other.buckets_;
    return;
  }
  std::vector<Bucket> merged;
  merged.reserve(buckets_.size() + other.buckets_.size());
  auto a = buckets_.cbegin();
  auto b = other.buckets_.cbegin();
  while (a != buckets_.cend() || b != other.buckets_.cend()) {
    if (b == other.buckets_.cend() || (a != buckets_.cend() && a->key < b->key)) {
      merged.push_back(*a++);
    } else if (a == buckets_.cend() || b->key < a->key) {
      merged.push_back(*b++);
    } else {
      merged.push_back(Bucket{a->key, 0, a->count + b->count});
      ++a;
      ++b;
    }
  }
  buckets_.swap(merged);
}

uint64_t LogHistogram::total() const noexcept {
  uint64_t n = 0;
  for (const auto& b : buckets_) n += b.count;
  return n;
}

int64_t LogHistogram::quantile(double q, int64_t lo, int64_t hi) const noexcept {
  const uint64_t n = total();
  if (n == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(n))));
  uint64_t seen = 0;
  for (const auto& b : buckets_) {
    seen += b.count;
    if (seen >= rank) return std::clamp(bucket_value(b.key), lo, hi);
  }
  return std::clamp(bucket_value(buckets_.back().key), lo, hi);
}

}  // namespace monitor::model
