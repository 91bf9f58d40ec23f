#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "model/log_histogram.hpp"

using monitor::model::LogHistogram;

namespace {
int64_t exact_quantile(std::vector<int64_t> values, double q) {
  std::sort(values.begin(), values.end());
  const auto rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * static_cast<double>(values.size()))));
  return values[rank - 1];
}
}  // namespace

TEST_CASE("every value lands in a bucket whose midpoint is within 1/128 of it", "[hist]") {
  std::mt19937_64 rng(Catch::rngSeed());
  std::vector<int64_t> probes = {0, 1, -1, 127, 128, 129, 255, 256, 1000, -1000, 123456789,
                                 std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                                 std::numeric_limits<int64_t>::min() + 1};
  for (int i = 0; i < 100000; ++i) {
    const int shift = static_cast<int>(rng() % 63);
    probes.push_back(static_cast<int64_t>(rng() >> (shift + 1)) * ((rng() & 1) ? 1 : -1));
  }
  for (const int64_t v : probes) {
    const int64_t rep = LogHistogram::bucket_value(LogHistogram::bucket_key(v));
    if (v == 0) {
      REQUIRE(rep == 0);
      continue;
    }
    const double err = std::fabs(static_cast<double>(rep) - static_cast<double>(v)) / std::fabs(static_cast<double>(v));
    INFO("value " << v << " reported as " << rep);
    REQUIRE(err <= LogHistogram::kMaxRelativeError + 1e-12);
  }
}

TEST_CASE("bucket keys are ordered like the values", "[hist]") {
  int32_t previous = LogHistogram::bucket_key(-1'000'000'000);
  for (int64_t v = -1'000'000'000; v <= 1'000'000'000; v += 999'983) {
    const int32_t key = LogHistogram::bucket_key(v);
    REQUIRE(key >= previous);
    previous = key;
  }
}

TEST_CASE("quantiles are within the documented relative error of the exact ones", "[hist][property]") {
  std::mt19937_64 rng(Catch::rngSeed());
  std::lognormal_distribution<double> latency(8.0, 1.5);
  for (int trial = 0; trial < 20; ++trial) {
    LogHistogram h;
    std::vector<int64_t> values;
    for (int i = 0; i < 5000; ++i) {
      const auto v = static_cast<int64_t>(latency(rng)) + 1;
      values.push_back(v);
      h.add(v);
    }
    const int64_t lo = *std::min_element(values.begin(), values.end());
    const int64_t hi = *std::max_element(values.begin(), values.end());
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
      const auto exact = static_cast<double>(exact_quantile(values, q));
      const auto approx = static_cast<double>(h.quantile(q, lo, hi));
      REQUIRE(std::fabs(approx - exact) / exact <= LogHistogram::kMaxRelativeError + 1e-12);
    }
  }
}

TEST_CASE("merged histograms equal the histogram of all values", "[hist][property]") {
  std::mt19937_64 rng(Catch::rngSeed());
  for (int trial = 0; trial < 100; ++trial) {
    LogHistogram all, merged;
    std::vector<LogHistogram> parts(rng() % 6 + 1);
    for (int i = 0; i < 1000; ++i) {
      const auto v = static_cast<int64_t>(rng() % 2'000'000) - 1'000'000;
      all.add(v);
      parts[rng() % parts.size()].add(v);
    }
    for (const auto& p : parts) merged.merge(p);
    REQUIRE(merged == all);
    REQUIRE(merged.total() == 1000);
  }
}

TEST_CASE("an empty histogram reports 0 for every quantile", "[hist]") {
  LogHistogram h;
  CHECK(h.quantile(0.5, 0, 0) == 0);
  CHECK(h.total() == 0);
}

TEST_CASE("a histogram that turns dense, or back to sparse, keeps every count", "[hist]") {
  std::mt19937_64 rng(Catch::rngSeed());
  LogHistogram narrow, reference_parts[3], merged;
  std::vector<int64_t> values;
  for (int i = 0; i < 20000; ++i) {
    const auto v = static_cast<int64_t>(rng() % 5000);  // a few hundred buckets: dense
    values.push_back(v);
    narrow.add(v);
    reference_parts[i % 3].add(v);
  }
  for (const auto& part : reference_parts) merged.merge(part);
  CHECK(narrow == merged);
  CHECK(narrow.total() == 20000);
  // A value far outside the dense span switches the histogram back to sparse.
  narrow.add(-4'000'000'000'000LL);
  narrow.add(4'000'000'000'000LL);
  CHECK(narrow.total() == 20002);
  const auto buckets = narrow.buckets();
  CHECK(buckets.front().key == LogHistogram::bucket_key(-4'000'000'000'000LL));
  CHECK(buckets.back().key == LogHistogram::bucket_key(4'000'000'000'000LL));
  for (size_t i = 1; i < buckets.size(); ++i) REQUIRE(buckets[i - 1].key < buckets[i].key);
  // Quantiles still agree with the exact ones within the bound.
  values.push_back(-4'000'000'000'000LL);
  values.push_back(4'000'000'000'000LL);
  const auto exact = static_cast<double>(exact_quantile(values, 0.5));
  CHECK(std::fabs(static_cast<double>(narrow.quantile(0.5, INT64_MIN, INT64_MAX)) - exact) / exact <=
        LogHistogram::kMaxRelativeError);
  narrow.clear();
  CHECK(narrow.empty());
  narrow.add(7);
  CHECK(narrow.total() == 1);
}
