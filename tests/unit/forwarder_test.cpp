// The agent's forwarder: how it cuts seconds into batches and numbers them
// (issue 7, items 2 and 4). No receiver runs: every batch stays in the spool,
// where the test reads it back.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/forwarder.hpp"
#include "agent/name_registry.hpp"
#include "common/clock.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"
#include "wire/frame.hpp"
#include "wire/spool.hpp"
#include "wire/spool_record.hpp"

using monitor::agent::AggregateRecord;
using monitor::agent::Forwarder;
using monitor::agent::NameRegistry;
using monitor::test::TempDir;

namespace {

Forwarder::Options options(const TempDir& dir) {
  // Port 1 on loopback refuses at once: everything stays spooled.
  return Forwarder::Options{"127.0.0.1:1", "", "dc1", dir.file("spool"), 256ull << 20, 77, "test agent", 0, nullptr};
}

// Writes `series` SUM aggregates of one second.
void write_second(Forwarder& forwarder, NameRegistry& names, int64_t second, int series) {
  monitor::model::Stats stats;
  stats.add(1, second * 1'000'000'000);
  for (int i = 0; i < series; ++i) {
    const uint32_t id = names.intern("Shop.Api", "Orders.N" + std::to_string(i % 50'000));
    forwarder.write(AggregateRecord{second, id, i, 1, &stats, nullptr});
  }
  forwarder.end_second(second);
}

struct Spooled {
  std::vector<uint64_t> sequences;
  size_t records = 0;
  size_t largest_batch_bytes = 0;
};

Spooled read_spool(const TempDir& dir) {
  auto spool = monitor::wire::Spool::open(dir.file("spool"), {});
  REQUIRE(spool.has_value());
  Spooled out;
  while (true) {
    auto front = (*spool)->next();
    REQUIRE(front.has_value());
    if (!*front) break;
    monitor::wire::SpoolRecord record;
    REQUIRE(monitor::wire::decode_spool_record((*front)->body, record));
    out.sequences.push_back(record.batch.sequence);
    out.records += record.batch.records.size();
    std::string frame;
    REQUIRE(monitor::wire::encode(frame, record.batch) == monitor::wire::WireError::kOk);
    out.largest_batch_bytes = std::max(out.largest_batch_bytes, frame.size());
    REQUIRE((*spool)->pop(**front).has_value());
  }
  return out;
}

}  // namespace

TEST_CASE("issue 7: batch sequences are dense and go on across a restart, and a large second is cut into batches",
          "[agent][issue7][failure]") {
  TempDir dir;
  {
    NameRegistry names;
    Forwarder forwarder(options(dir), names);
    write_second(forwarder, names, 1000, 10);
    write_second(forwarder, names, 1001, 200'000);  // ~3 MB of records: more than one batch
    write_second(forwarder, names, 1003, 10);
    forwarder.stop();
  }
  {
    NameRegistry names;  // a restarted agent: the sequence goes on from the spool directory
    Forwarder forwarder(options(dir), names);
    write_second(forwarder, names, 1003, 5);  // the same second again: a new batch, not a duplicate
    forwarder.stop();
  }
  const Spooled spooled = read_spool(dir);
  CHECK(spooled.records == 10 + 200'000 + 10 + 5);
  REQUIRE(spooled.sequences.size() >= 5);
  for (size_t i = 1; i < spooled.sequences.size(); ++i) CHECK(spooled.sequences[i] == spooled.sequences[i - 1] + 1);
  CHECK(spooled.largest_batch_bytes <= monitor::wire::kBatchPayloadBudget + 16);
}

TEST_CASE("issue 7: a lost spool directory starts a new epoch of sequences above the old ones", "[agent][issue7]") {
  TempDir dir;
  uint64_t before = 0;
  {
    NameRegistry names;
    Forwarder forwarder(options(dir), names);
    write_second(forwarder, names, 1000, 3);
    forwarder.stop();
    before = read_spool(dir).sequences.at(0);
  }
  std::filesystem::remove_all(dir.file("spool"));
  // An epoch is a millisecond: a real restart is never within the one the
  // first run started in, this test could be.
  const int64_t first_ms = monitor::realtime_ns() / 1'000'000 + 1;
  REQUIRE(monitor::test::wait_until([&] { return monitor::realtime_ns() / 1'000'000 > first_ms; },
                                    std::chrono::seconds(1)));
  NameRegistry names;
  Forwarder forwarder(options(dir), names);
  write_second(forwarder, names, 1000, 3);
  forwarder.stop();
  CHECK(read_spool(dir).sequences.at(0) > before);
}
