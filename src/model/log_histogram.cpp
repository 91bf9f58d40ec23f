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
  if (!dense_.empty()) {
    const int64_t offset = int64_t{key} - dense_base_;
    if (offset >= 0 && offset < static_cast<int64_t>(dense_.size())) {
      dense_[static_cast<size_t>(offset)] += count;
      return;
    }
    const int32_t low = std::min(key, dense_base_);
    const int32_t high = std::max(key, dense_base_ + static_cast<int32_t>(dense_.size()) - 1);
    if (high - low < kDenseMaxSpan) {
      if (key < dense_base_) {
        dense_.insert(dense_.begin(), static_cast<size_t>(dense_base_ - key), 0);
        dense_base_ = key;
      } else {
        dense_.resize(static_cast<size_t>(key - dense_base_) + 1, 0);
      }
      dense_[static_cast<size_t>(key - dense_base_)] += count;
      return;
    }
    // Too wide for dense: fall back to sparse.
    sparse_ = buckets();
    dense_.clear();
  }
  auto it = std::lower_bound(sparse_.begin(), sparse_.end(), key,
                             [](const Bucket& b, int32_t k) { return b.key < k; });
  if (it != sparse_.end() && it->key == key) {
    it->count += count;
    return;
  }
  sparse_.insert(it, Bucket{key, 0, count});
  if (sparse_.size() > kSparseMax && sparse_.back().key - sparse_.front().key < kDenseMaxSpan) to_dense();
}

void LogHistogram::to_dense() {
  dense_base_ = sparse_.front().key;
  dense_.assign(static_cast<size_t>(sparse_.back().key - dense_base_) + 1, 0);
  for (const Bucket& b : sparse_) dense_[static_cast<size_t>(b.key - dense_base_)] = b.count;
  sparse_.clear();
}

void LogHistogram::merge(const LogHistogram& other) {
  other.for_each([this](int32_t key, uint64_t count) { add_to_bucket(key, count); });
}

void LogHistogram::clear() noexcept {
  sparse_.clear();
  dense_.clear();
}

std::vector<LogHistogram::Bucket> LogHistogram::buckets() const {
  if (dense_.empty()) return sparse_;
  std::vector<Bucket> out;
  for_each([&](int32_t key, uint64_t count) { out.push_back(Bucket{key, 0, count}); });
  return out;
}

uint64_t LogHistogram::total() const noexcept {
  uint64_t n = 0;
  for_each([&](int32_t, uint64_t count) { n += count; });
  return n;
}

int64_t LogHistogram::quantile(double q, int64_t lo, int64_t hi) const noexcept {
  const uint64_t n = total();
  if (n == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(n))));
  uint64_t seen = 0;
  int64_t result = hi;
  bool found = false;
  for_each([&](int32_t key, uint64_t count) {
    if (found) return;
    seen += count;
    if (seen >= rank) {
      result = bucket_value(key);
      found = true;
    }
  });
  return std::clamp(result, lo, hi);
}

}  // namespace monitor::model
