#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include "judger/minute_store.hpp"
#include "support/catch_result.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace monitor::judger;
using monitor::test::TempDir;

namespace {

constexpr int64_t kBase = 1'732'176'000;  // a minute boundary

// A store whose name id 0 is Shop.Api Orders.Placed, the name of pending_record().
std::unique_ptr<MinuteStore> open_store(const TempDir& dir) {
  auto s = MinuteStore::open(dir.file("judger.db"));
  REQUIRE(s.has_value());
  REQUIRE((*s)->names().intern("Shop.Api", "Orders.Placed") == 0);
  return std::move(*s);
}

PendingRecord pending_record(int64_t second, int64_t server, int64_t value) {
  PendingRecord p{0, {}};
  p.record.second = second;
  p.record.name_id = 1;
  p.record.server_id = server;
  p.record.ops = 1 | 128;
  p.record.stats.add(value, second * 1'000'000'000);
  p.record.hist.add(value);
  return p;
}

MinutePoint point(int64_t minute, double value, int64_t server = -1) {
  return MinutePoint{"Shop.Api", "Orders.Placed", 1, server, minute, value};
}

}  // namespace

TEST_CASE("a batch is stored once: replays of its sequence are duplicates, also after a reopen", "[store]") {
  TempDir dir;
  {
    auto store = open_store(dir);
    CHECK(store->last_sequence(7) == 0);
    CHECK(*store->append_batch(7, 1, {pending_record(kBase, 1, 5)}, kBase) == MinuteStore::AppendResult::kStored);
    CHECK(*store->append_batch(7, 2, {pending_record(kBase + 1, 1, 6), pending_record(kBase + 1, 2, 7)}, kBase) ==
          MinuteStore::AppendResult::kStored);
    CHECK(*store->append_batch(7, 2, {pending_record(kBase + 1, 1, 6)}, kBase) == MinuteStore::AppendResult::kDuplicate);
    CHECK(*store->append_batch(7, 1, {pending_record(kBase, 1, 5)}, kBase) == MinuteStore::AppendResult::kDuplicate);
    CHECK(*store->append_batch(8, 1, {pending_record(kBase, 3, 1)}, kBase) == MinuteStore::AppendResult::kStored);
  }
  auto store = open_store(dir);  // as after a restart
  CHECK(store->last_sequence(7) == 2);
  CHECK(store->last_sequence(8) == 1);
  CHECK(*store->append_batch(7, 2, {pending_record(kBase + 1, 1, 6)}, kBase) == MinuteStore::AppendResult::kDuplicate);
  const auto pending = store->pending();
  REQUIRE(pending.has_value());
  REQUIRE(pending->size() == 4);
  const auto& r = (*pending)[2].record;  // arrival order kept
  CHECK(r.second == kBase + 1);
  CHECK(r.server_id == 2);
  CHECK(r.stats.sum == 7);
  CHECK(r.stats.count == 1);
  CHECK(r.stats.max == 7);  // SUM and HIST keep what they need, as on the wire: HIST its min and max
  CHECK(r.stats.min == 7);
  CHECK(r.hist.total() == 1);
  CHECK(store->names().service((*pending)[2].name) == "Shop.Api");
}

TEST_CASE("sequences arriving out of order over two paths are each stored once, also after a reopen",
          "[store][dedup]") {
  TempDir dir;
  const auto stored = MinuteStore::AppendResult::kStored;
  const auto duplicate = MinuteStore::AppendResult::kDuplicate;
  {
    auto store = open_store(dir);
    // 11 overtakes 10 (a failover between Bonnies), then a restart jumps the sequence far ahead.
    for (const uint64_t seq : {1, 2, 11, 12, 10, 1 << 20, 3}) {
      INFO(seq);
      CHECK(*store->append_batch(7, seq, {pending_record(kBase, 1, 1)}, kBase) == stored);
    }
    CHECK(*store->append_batch(7, 11, {pending_record(kBase, 1, 1)}, kBase) == duplicate);
    CHECK(store->seen_intervals() == 3);  // [1,3] [10,12] [2^20]: 4..9 not yet
    CHECK(store->last_sequence(7) == 1u << 20);
  }
  auto store = open_store(dir);
  for (const uint64_t seq : {1, 2, 3, 10, 11, 12, 1 << 20}) {
    INFO(seq);
    CHECK(*store->append_batch(7, seq, {pending_record(kBase, 1, 1)}, kBase) == duplicate);
  }
  for (const uint64_t seq : {4, 5, 6, 7, 8, 9}) CHECK(*store->append_batch(7, seq, {}, kBase) == stored);
  CHECK(store->seen_intervals() == 2);  // the gap closed: [1,12] and [2^20]
  CHECK(store->pending()->size() == 7);
  // Intervals not added to for longer than the minutes can be amended are forgotten.
  REQUIRE(store->apply_retention(kBase + 3 * 86400));
  CHECK(store->seen_intervals() == 0);
}

TEST_CASE("a minute stored in parts: a crash before completing keeps the old state, a rerun replaces it",
          "[store][crash]") {
  TempDir dir;
  auto cell = [](int64_t server, int64_t sum) {
    MinuteCell c{"Shop.Api", "Orders.Placed", 1, server, {}, {}};
    c.stats.add(sum, kBase * 1'000'000'000);
    return c;
  };
  {
    auto store = open_store(dir);
    REQUIRE(store->append_batch(1, 1, {pending_record(kBase + 1, 1, 5), pending_record(kBase + 2, 2, 6)}, kBase));
    const int64_t through = store->last_pending_id();
    // A late record arrives while the minute is being stored: it is the next amendment's.
    REQUIRE(store->append_batch(1, 2, {pending_record(kBase + 3, 1, 7)}, kBase));
    REQUIRE(store->last_pending_id() > through);
    const std::vector<MinutePoint> points = {point(kBase, 5, 1), point(kBase, 6, 2), point(kBase, 11)};
    REQUIRE(store->put_minute_points(std::span(points).subspan(0, 2)));
    REQUIRE(store->put_minute_points(std::span(points).subspan(2)));
    const std::vector<MinuteCell> cells = {cell(1, 5), cell(2, 6), cell(-1, 11)};
    REQUIRE(store->stage_minute_cells(kBase, std::span(cells).subspan(0, 1), true));
    REQUIRE(store->stage_minute_cells(kBase, std::span(cells).subspan(1), false));
    REQUIRE(store->complete_minute(kBase, through));
    CHECK(store->reader().query("Shop.Api", "Orders.Placed", 1, -1, kBase, kBase + 60, 60, kBase)->at(0).value == 11);
    CHECK(store->reader().minute_cells(kBase)->size() == 3);
    const auto left = *store->pending();
    REQUIRE(left.size() == 1);  // only the late record
    CHECK(left[0].record.stats.sum == 7);

    // The amendment's run is cut short by a crash after staging a part.
    REQUIRE(store->stage_minute_cells(kBase, std::vector<MinuteCell>{cell(1, 12), cell(3, 99)}, true));
  }
  auto store = open_store(dir);
  auto stored = *store->reader().minute_cells(kBase);
  REQUIRE(stored.size() == 3);  // the completed state, untouched by the staged part
  for (const auto& c : stored) CHECK(c.stats.sum != 12);
  CHECK(store->pending()->size() == 1);  // so the restart rebuilds the amendment exactly
  // The rerun stages afresh: the crashed run's rows (server 3) are not carried in.
  REQUIRE(store->stage_minute_cells(kBase, std::vector<MinuteCell>{cell(1, 12), cell(2, 6), cell(-1, 18)}, true));
  REQUIRE(store->complete_minute(kBase, store->last_pending_id()));
  stored = *store->reader().minute_cells(kBase);
  REQUIRE(stored.size() == 3);
  for (const auto& c : stored) CHECK(c.server_id != 3);
  CHECK(store->pending()->empty());
}

TEST_CASE("finishing a minute stores its points and drops only its pending records", "[store]") {
  TempDir dir;
  auto store = open_store(dir);
  REQUIRE(store->append_batch(1, 1, {pending_record(kBase + 5, 1, 5), pending_record(kBase + 65, 1, 9)}, kBase));
  REQUIRE(store->finish_minute(kBase, {point(kBase, 5, 1), point(kBase, 5)}));
  const auto left = store->pending();
  REQUIRE(left->size() == 1);
  CHECK((*left)[0].record.second == kBase + 65);
  auto got = store->reader().query("Shop.Api", "Orders.Placed", 1, 1, kBase, kBase + 60, 60, kBase + 100);
  REQUIRE(got->size() == 1);
  CHECK((*got)[0].value == 5);
  REQUIRE(store->finish_minute(kBase, {point(kBase, 8, 1)}));  // late data amends the minute
  got = store->reader().query("Shop.Api", "Orders.Placed", 1, 1, kBase, kBase + 60, 60, kBase + 100);
  CHECK((*got)[0].value == 8);
  CHECK(store->reader().query("Shop.Api", "Orders.Placed", 1, -1, kBase, kBase + 60, 60, kBase + 100)->size() == 1);
  CHECK(store->reader().query("Shop.Api", "Nope.Attr", 1, 1, kBase, kBase + 60, 60, kBase + 100)->empty());
  CHECK(store->reader().list_series()->size() == 1);
}

TEST_CASE("a completed minute's pending rows are gone for good before they are purged, an amendment's stay",
          "[store]") {
  TempDir dir;
  const auto sql_count = [&](const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(dir.file("judger.db").c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    const int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  };
  {
    auto store = open_store(dir);
    store->keep_seconds_for_export(3600);
    for (uint64_t seq = 1; seq <= 10; ++seq) {
      REQUIRE(store->append_batch(1, seq, {pending_record(kBase + static_cast<int64_t>(seq), 1, 1)}, kBase));
    }
    REQUIRE(store->complete_minute(kBase, store->last_pending_id()));
    CHECK(store->pending()->empty());
    CHECK(sql_count("SELECT count(*) FROM pending_records") == 10);  // removed later, a few at a time
    // Late data amends the minute; the kill comes before any purge.
    REQUIRE(store->append_batch(1, 11, {pending_record(kBase + 30, 1, 7)}, kBase));
  }
  auto store = open_store(dir);
  store->keep_seconds_for_export(3600);
  auto left = *store->pending();
  REQUIRE(left.size() == 1);  // not the ten the minute holds: rolled up again, they would count twice
  CHECK(left[0].record.stats.sum == 7);
  REQUIRE(*store->purge_applied(4));  // more left
  REQUIRE(*store->purge_applied(4));
  CHECK(store->pending()->size() == 1);
  // The amendment completes while rows of the first version are still there:
  // its exported seconds are its own record only.
  REQUIRE(store->complete_minute(kBase, store->last_pending_id()));
  CHECK(sql_count("SELECT count(*) FROM export_seconds WHERE version = 1") == 10);
  CHECK(sql_count("SELECT count(*) FROM export_seconds WHERE version = 2") == 1);
  CHECK(store->pending()->empty());
  CHECK_FALSE(*store->purge_applied(100));
  CHECK(sql_count("SELECT count(*) FROM pending_records") == 0);
  CHECK(sql_count("SELECT count(*) FROM applied_pending") == 0);
  // Records of the next minute were never applied: no purge takes them.
  REQUIRE(store->append_batch(1, 12, {pending_record(kBase + 61, 1, 3)}, kBase));
  CHECK_FALSE(*store->purge_applied(100));
  CHECK(store->pending()->size() == 1);
}

TEST_CASE("archives keep the average, minimum and maximum of their minutes", "[store]") {
  TempDir dir;
  auto store = open_store(dir);
  for (int m = 0; m < 10; ++m) REQUIRE(store->finish_minute(kBase + 60 * m, {point(kBase + 60 * m, m)}));
  const int64_t now = kBase + 600;
  SECTION("5-minute step from minutes") {
    const auto got = *store->reader().query("Shop.Api", "Orders.Placed", 1, -1, kBase, kBase + 600, 300, now);
    REQUIRE(got.size() == 2);
    CHECK(got[0].value == Approx(2.0));  // minutes 0..4
    CHECK(got[0].min == 0);
    CHECK(got[0].max == 4);
    CHECK(got[1].value == Approx(7.0));
    CHECK(got[1].minutes == 5);
  }
  SECTION("older than the minute retention: the 5-minute archive answers") {
    const int64_t later = kBase + 3 * 86400;
    const auto got = *store->reader().query("Shop.Api", "Orders.Placed", 1, -1, kBase, kBase + 600, 60, later);
    REQUIRE(got.size() == 2);  // 5-minute points, even for a 1-minute step
    CHECK(got[1].value == Approx(7.0));
    CHECK(got[1].max == 9);
  }
  SECTION("hour archive") {
    const auto got = *store->reader().query("Shop.Api", "Orders.Placed", 1, -1, kBase, kBase + 3600, 3600, now);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == Approx(4.5));
    CHECK(got[0].minutes == 10);
  }
  SECTION("retention deletes by resolution") {
    CHECK(*store->apply_retention(kBase + 3 * 86400) == 10);  // the minutes only
    CHECK(store->reader().query("Shop.Api", "Orders.Placed", 1, -1, kBase, kBase + 600, 300, kBase + 3 * 86400)->size() == 2);
    CHECK(*store->apply_retention(kBase + 400 * 86400) == 3);  // 2 five-minute + 1 hour
  }
}

// Crashes the path the judger takes (points, archives, staged cells, then the
// completion, each its own transaction), not finish_minute(): a minute whose
// completion did not commit must be neither served nor have lost its pending
// records.
TEST_CASE("a store killed with SIGKILL keeps whole batches and whole minutes only", "[store][crash]") {
  TempDir dir;
  std::mt19937_64 rng(Catch::rngSeed());
  for (int round = 0; round < 3; ++round) {
    const std::string db = dir.file("crash" + std::to_string(round) + ".db");
    auto writer = monitor::test::ChildProcess::fork_run([&] {
      auto opened = MinuteStore::open(db);
      if (!opened) return 1;
      MinuteStore& store = **opened;
      if (store.names().intern("Shop.Api", "Orders.Placed") != 0) return 4;
      for (uint64_t seq = 1;; ++seq) {
        // Batch `seq` holds 3 records of second kBase + seq - 1, each of value seq.
        const int64_t second = kBase + static_cast<int64_t>(seq) - 1;
        std::vector<PendingRecord> batch;
        for (int64_t server = 1; server <= 3; ++server) batch.push_back(pending_record(second, server, static_cast<int64_t>(seq)));
        if (!store.append_batch(1, seq, batch, kBase)) return 2;
        if (seq % 60 == 0) {
          const int64_t minute = second - 59;
          const int64_t pending_through = store.last_pending_id();
          const std::vector<MinutePoint> points = {point(minute, static_cast<double>(seq))};
          monitor::model::Stats stats;
          stats.add(static_cast<int64_t>(seq), minute * 1'000'000'000);
          const std::vector<MinuteCell> cells = {MinuteCell{"Shop.Api", "Orders.Placed", 1, -1, stats, {}}};
          if (!store.put_minute_points(points)) return 3;
          const auto series_end = store.series_id_end();
          if (!series_end || !store.put_minute_archives(minute, 0, *series_end)) return 5;
          if (!store.stage_minute_cells(minute, cells, true)) return 6;
          if (!store.complete_minute(minute, pending_through)) return 7;
        }
        // As the judger does between batches: a kill may land inside a purge.
        if (seq % 7 == 0 && !store.purge_applied(5)) return 8;
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 600));
    writer.signal(SIGKILL);
    REQUIRE(writer.wait_for(std::chrono::seconds(5)) == 128 + SIGKILL);

    auto store = MinuteStore::open(db);
    REQUIRE(store.has_value());
    const uint64_t last = (*store)->last_sequence(1);
    REQUIRE(last > 0);
    const auto minutes = *(*store)->reader().query("Shop.Api", "Orders.Placed", 1, -1, kBase, kBase + 100000, 60, kBase);
    const uint64_t finished = minutes.size() * 60;
    REQUIRE(finished <= last);
    for (size_t m = 0; m < minutes.size(); ++m) CHECK(minutes[m].value == static_cast<double>((m + 1) * 60));
    // Every batch after the last finished minute is pending, whole, exactly once.
    const auto pending = *(*store)->pending();
    REQUIRE(pending.size() == 3 * (last - finished));
    std::map<int64_t, int> per_second;
    for (const auto& p : pending) ++per_second[p.record.second];
    for (const auto& [second, n] : per_second) {
      CHECK(n == 3);
      CHECK(second >= kBase + static_cast<int64_t>(finished));
    }
    // And a replay of any stored sequence is recognised.
    CHECK(*(*store)->append_batch(1, last, {pending_record(kBase, 1, 1)}, kBase) == MinuteStore::AppendResult::kDuplicate);
  }
}

TEST_CASE("a store that cannot be opened is an error, not a crash", "[store][failure]") {
  CHECK_FALSE(MinuteStore::open("/nonexistent-dir/x/judger.db").has_value());
  TempDir dir;
  { std::ofstream(dir.file("junk.db")) << std::string(4096, 'j'); }
  CHECK_FALSE(MinuteStore::open(dir.file("junk.db")).has_value());
}

TEST_CASE("minute points older than the minute retention are read as their 5-minute averages, gaps in kept minutes "
          "stay gaps", "[store][alarms]") {
  monitor::test::TempDir dir;
  Retention retention;
  retention.minute_s = 600;  // ten minutes of minutes
  auto store = *MinuteStore::open(dir.file("j.db"), retention);
  for (int m = 0; m < 30; ++m) {
    if (m == 25) continue;  // no data in minute 25
    REQUIRE(store->finish_minute(kBase + 60 * m, {MinutePoint{"Shop.Api", "Orders.Placed", 1, 4, kBase + 60 * m, 1.0 * m}}));
  }
  REQUIRE(store->apply_retention(kBase + 30 * 60));  // keeps minutes 20 .. 29
  const auto points = store->reader().minute_points("Shop.Api", "Orders.Placed", 1, kBase + 60, kBase + 1800);
  REQUIRE(points);
  std::map<int64_t, double> by_minute;
  for (const auto& p : *points) by_minute[(p.minute - kBase) / 60] = p.value;
  CHECK(by_minute.size() == 28);  // minutes 1 .. 29 less minute 25
  CHECK(by_minute.at(1) == 2);    // the average of minutes 0 .. 4
  CHECK(by_minute.at(4) == 2);
  CHECK(by_minute.at(5) == 7);    // of 5 .. 9
  CHECK(by_minute.at(19) == 17);  // of 15 .. 19
  CHECK(by_minute.at(20) == 20);  // kept: the minute itself
  CHECK(by_minute.count(25) == 0);
  CHECK(by_minute.at(29) == 29);
}
