// Issue 7, item 7: the agent's crash journal. What is committed is read back
// exactly, what is not is not, what was written out is not replayed, and a
// journal that is full, wrapped or garbage never makes the reader crash or
// invent reports.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/recovery_journal.hpp"
#include "support/temp_names.hpp"

using monitor::agent::Aggregator;
using monitor::agent::RecoveredJournal;
using monitor::agent::RecoveryJournal;
using monitor::agent::RingIdentity;
using monitor::ring::LanePosition;
using monitor::test::TempDir;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
const RingIdentity kRing{7, 42};

Aggregator::Input input(uint32_t name, int64_t second, int64_t value) {
  return Aggregator::Input{name, 1, 3, value, second * kSecond + 5};
}

RecoveryJournal::Options small() { return RecoveryJournal::Options{1 << 20, 1 << 16}; }

// Makes `j` the journal at its path, with name 1 = Shop.Api Orders.Count.
void publish_with_name_1(RecoveryJournal& j) {
  j.publish();
  j.add_name("Shop.Api", "Orders.Count");
}

}  // namespace

TEST_CASE("journal: committed reports and names come back in order, uncommitted ones do not", "[journal][issue7]") {
  TempDir dir;
  const std::string path = dir.file("j");
  {
    RecoveryJournal j(path, small(), kRing, 4, 99);
    publish_with_name_1(j);
    j.add_name("Shop.Api", "Latency.Ms");
    j.add(input(1, 100, 10));
    j.add(input(2, 101, 20));
    const LanePosition lanes[] = {{0, 17}, {3, 5}};
    j.commit(lanes);
    j.add(input(1, 101, 30));  // never committed: the agent "died" here
  }
  const RecoveredJournal r = RecoveryJournal::read(path);
  REQUIRE(r.found);
  REQUIRE(r.problem.empty());
  REQUIRE(r.names.size() == 2);
  CHECK(r.names[1].second == "Latency.Ms");
  REQUIRE(r.inputs.size() == 2);
  CHECK(r.inputs[0].value == 10);
  CHECK(r.inputs[1].name_id == 2);
  CHECK(r.inputs[1].value == 20);
  CHECK(r.ring == kRing);
  CHECK(r.lane_tails == std::vector<uint64_t>{17, 0, 0, 5});
  CHECK(r.corrupt == 0);
  CHECK_FALSE(r.unfinished_flush);
}

TEST_CASE("journal: seconds written out are not replayed, and a write-out cut off is reported with its sequence",
          "[journal][issue7]") {
  TempDir dir;
  const std::string path = dir.file("j");
  RecoveryJournal j(path, small(), kRing, 1, 99);
  publish_with_name_1(j);
  for (int64_t s = 100; s <= 103; ++s) j.add(input(1, s, s));
  j.commit();
  j.begin_flush(100, 500);
  j.end_flush(100);
  j.begin_flush(101, 503);  // killed while writing out 101
  const RecoveredJournal r = RecoveryJournal::read(path);
  CHECK(r.flushed_second == 100);
  REQUIRE(r.inputs.size() == 3);
  CHECK(r.inputs.front().value == 101);
  REQUIRE(r.unfinished_flush);
  CHECK(r.unfinished_flush->first == 101);
  CHECK(r.unfinished_flush->second == 503);
}

TEST_CASE("journal: written-out chunks are reclaimed, and a log that wrapped many times reads back exactly",
          "[journal][issue7]") {
  TempDir dir;
  const std::string path = dir.file("j");
  RecoveryJournal j(path, small(), kRing, 2, 99);
  publish_with_name_1(j);
  // 1 MiB of log, ~200 KiB per second: it wraps every five seconds.
  uint64_t tail = 0;
  for (int64_t s = 100; s < 160; ++s) {
    for (int i = 0; i < 6400; ++i) j.add(input(1, s, i));
    const LanePosition lanes[] = {{1, ++tail}};
    j.commit(lanes);
    if (s >= 102) j.end_flush(s - 2);  // two seconds stay open, as behind a late window
  }
  CHECK(j.unjournaled() == 0);
  CHECK(j.live_bytes() < 3 * 6400 * 32 + 4096);
  const RecoveredJournal r = RecoveryJournal::read(path);
  REQUIRE(r.problem.empty());
  CHECK(r.corrupt == 0);
  CHECK(r.flushed_second == 157);
  REQUIRE(r.inputs.size() == 2 * 6400);
  CHECK(monitor::second_of_ns(r.inputs.front().time_ns) == 158);
  CHECK(r.inputs.back().value == 6399);
  CHECK(r.lane_tails[1] == tail);  // the last chunk's
}

TEST_CASE("journal: lane tails of reclaimed chunks survive in the lane region", "[journal][issue7]") {
  TempDir dir;
  const std::string path = dir.file("j");
  RecoveryJournal j(path, small(), kRing, 2, 99);
  publish_with_name_1(j);
  j.add(input(1, 100, 1));
  const LanePosition lanes[] = {{0, 9}};
  j.commit(lanes);
  j.end_flush(100);  // the only chunk with lane 0's tail is given up
  CHECK(j.live_bytes() == 0);
  CHECK(RecoveryJournal::read(path).lane_tails[0] == 9);
}

TEST_CASE("journal: a full journal counts what it could not keep, and the reader reports it", "[journal][issue7]") {
  TempDir dir;
  const std::string path = dir.file("j");
  RecoveryJournal j(path, small(), kRing, 1, 99);
  publish_with_name_1(j);
  const uint64_t fits = (1 << 20) / 32;
  for (uint64_t i = 0; i < fits + 1000; ++i) j.add(input(1, 100, 1));
  j.commit();
  CHECK(j.unjournaled() > 1000);
  CHECK(j.unjournaled() < 1100);
  const RecoveredJournal r = RecoveryJournal::read(path);
  CHECK(r.inputs.size() + j.unjournaled() == fits + 1000);
  CHECK(r.unjournaled == j.unjournaled());
  CHECK(r.unjournaled_max_second == 100);
}

TEST_CASE("journal: garbage, a cut file or a torn chunk is refused or skipped, never trusted", "[journal][issue7]") {
  TempDir dir;
  const std::string path = dir.file("j");
  SECTION("no file") { CHECK_FALSE(RecoveryJournal::read(dir.file("none")).found); }
  SECTION("random bytes") {
    std::mt19937_64 rng(7);
    std::FILE* f = std::fopen(path.c_str(), "w");
    for (int i = 0; i < 100000; ++i) std::fputc(static_cast<int>(rng() & 0xFF), f);
    std::fclose(f);
    const RecoveredJournal r = RecoveryJournal::read(path);
    CHECK_FALSE(r.problem.empty());
    CHECK(r.inputs.empty());
  }
  SECTION("header fields rewritten") {
    {
      RecoveryJournal j(path, small(), kRing, 1, 99);
      publish_with_name_1(j);
      j.add(input(1, 100, 1));
      j.commit();
    }
    std::mt19937_64 rng(11);
    for (int round = 0; round < 200; ++round) {
      const int fd = ::open(path.c_str(), O_RDWR);
      REQUIRE(fd >= 0);
      const uint64_t garbage = rng();
      REQUIRE(::pwrite(fd, &garbage, 8, static_cast<off_t>(8 + (rng() % 14) * 8)) == 8);
      ::close(fd);
      const RecoveredJournal r = RecoveryJournal::read(path);  // must not crash, hang or allocate wildly
      CHECK(r.inputs.size() <= 1);
    }
  }
  SECTION("a chunk whose bytes were rewritten") {
    {
      RecoveryJournal j(path, small(), kRing, 1, 99);
      publish_with_name_1(j);
      j.add(input(1, 100, 1));
      j.commit();
      j.add(input(1, 100, 2));
      j.commit();
    }
    // The second chunk's header starts 64 + 8 bytes into the log; its size field lies.
    const uint64_t log_offset = 4096 + 4096 + (1 << 16);
    const int fd = ::open(path.c_str(), O_RDWR);
    const uint64_t lie = 1 << 30;
    REQUIRE(::pwrite(fd, &lie, 8, static_cast<off_t>(log_offset + 64 + 24)) == 8);
    ::close(fd);
    const RecoveredJournal r = RecoveryJournal::read(path);
    CHECK(r.problem.empty());
    CHECK(r.corrupt == 1);
    REQUIRE(r.inputs.size() == 1);
    CHECK(r.inputs[0].value == 1);
  }
}

TEST_CASE("journal: a statsd sample rate carried in a report's ops comes back with it, and a bad rate is refused",
          "[journal][statsd]") {
  TempDir dir;
  const std::string path = dir.file("j");
  {
    RecoveryJournal j(path, small(), kRing, 4, 99);
    publish_with_name_1(j);
    Aggregator::Input sampled = input(1, 100, 3);
    sampled.ops = Aggregator::with_rate(65, 750'000);  // SUM|COUNT at @0.75
    j.add(sampled);
    Aggregator::Input bad = input(1, 100, 4);
    bad.ops = 1 | (Aggregator::kRateOne << Aggregator::kRateShift);  // a rate of 1.000001 and more: not ours
    j.add(bad);
    j.commit({});
  }
  const RecoveredJournal r = RecoveryJournal::read(path);
  REQUIRE(r.inputs.size() == 1);
  CHECK(r.inputs[0].ops == Aggregator::with_rate(65, 750'000));
  CHECK(r.corrupt == 1);
}
