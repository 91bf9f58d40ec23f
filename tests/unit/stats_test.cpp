#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "model/op.hpp"
#include "model/stats.hpp"

using monitor::model::Stats;

TEST_CASE("stats keep every op of one period", "[stats]") {
  Stats s;
  s.add(5, 300);
  s.add(-2, 100);
  s.add(9, 200);
  CHECK(s.count == 3);
  CHECK(s.sum == 12);
  CHECK(s.min == -2);
  CHECK(s.max == 9);
  CHECK(s.first == -2);  // earliest timestamp, not earliest arrival
  CHECK(s.last == 5);
  CHECK(s.average() == Approx(4.0));
}

TEST_CASE("FIRST and LAST break timestamp ties by arrival", "[stats]") {
  Stats s;
  s.add(1, 100);
  s.add(2, 100);
  CHECK(s.first == 1);
  CHECK(s.last == 2);
}

TEST_CASE("a sum that overflows int64 still merges exactly (mod 2^64)", "[stats]") {
  Stats a, b, all;
  const int64_t big = std::numeric_limits<int64_t>::max();
  a.add(big, 1);
  b.add(big, 2);
  b.add(-big, 3);
  all.add(big, 1);
  all.add(big, 2);
  all.add(-big, 3);
  a.merge(b);
  CHECK(a == all);
  CHECK(a.sum == big);
}

TEST_CASE("merging per-period stats equals adding all reports at once", "[stats][property]") {
  std::mt19937_64 rng(Catch::rngSeed());
  for (int trial = 0; trial < 200; ++trial) {
    std::uniform_int_distribution<int64_t> value(-1'000'000, 1'000'000);
    const int n = static_cast<int>(rng() % 200) + 1;
    const int periods = static_cast<int>(rng() % 5) + 1;
    Stats all;
    std::vector<Stats> parts(static_cast<size_t>(periods));
    int64_t t = 0;
    for (int i = 0; i < n; ++i) {
      t += static_cast<int64_t>(rng() % 3);  // ties on purpose
      const int64_t v = value(rng);
      all.add(v, t);
      // Period boundaries follow time, as seconds do.
      parts[static_cast<size_t>(std::min<int64_t>(periods - 1, t * periods / (2 * n + 1)))].add(v, t);
    }
    Stats merged;
    for (const auto& p : parts) merged.merge(p);
    REQUIRE(merged == all);
  }
}

TEST_CASE("op names parse to masks", "[op]") {
  using monitor::model::parse_ops;
  CHECK(parse_ops("SUM") == 1u);
  CHECK(parse_ops("SUM,MAX,HIST") == 131u);
  CHECK(parse_ops("255") == 255u);
  CHECK_FALSE(parse_ops(""));
  CHECK_FALSE(parse_ops("0"));
  CHECK_FALSE(parse_ops("256"));
  CHECK_FALSE(parse_ops("SUM,"));
  CHECK_FALSE(parse_ops("sum"));
  CHECK_FALSE(parse_ops("SUM,,MAX"));
  CHECK_FALSE(parse_ops("12x"));
}
