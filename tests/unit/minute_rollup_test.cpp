#include <map>
#include <random>
#include <tuple>

#include <catch2/catch.hpp>

#include "judger/minute_rollup.hpp"
#include "judger/series_limiter.hpp"
#include "support/catch_result.hpp"
#include "support/temp_names.hpp"

using namespace monitor::judger;
using monitor::model::LogHistogram;
using monitor::model::Stats;

namespace {

constexpr int64_t kBase = 1'732'176'000;

// Names of records made without a store.
NameTable g_names;

PendingRecord second_record(const std::string& attr, int64_t second, int64_t server, uint8_t ops,
                            const std::vector<int64_t>& values, NameTable& names = g_names) {
  PendingRecord p{names.intern("Shop.Api", attr), {}};
  p.record.second = second;
  p.record.server_id = server;
  p.record.ops = ops;
  int64_t t = second * 1'000'000'000;
  for (int64_t v : values) {
    p.record.stats.add(v, t++);
    if (ops & 128) p.record.hist.add(v);
  }
  return p;
}

double find(const std::vector<MinutePoint>& points, const std::string& attr, uint32_t op, int64_t server) {
  for (const auto& p : points) {
    if (p.attr == attr && p.op == op && p.server_id == server) return p.value;
  }
  FAIL("no point for " << attr << " op " << op << " server " << server);
  return 0;
}

}  // namespace

TEST_CASE("seconds roll up to a minute per server and in total by each op's rule", "[rollup]") {
  MinuteRollup rollup({10, 120}, g_names);
  const uint8_t ops = 1 | 2 | 4 | 8 | 16 | 32 | 64;
  rollup.add(second_record("Orders.Placed", kBase + 1, 1, ops, {5, 7}), kBase + 2);
  rollup.add(second_record("Orders.Placed", kBase + 30, 1, ops, {1}), kBase + 31);
  rollup.add(second_record("Orders.Placed", kBase + 2, 2, ops, {100}), kBase + 31);
  rollup.add(second_record("Orders.Placed", kBase + 61, 1, ops, {9}), kBase + 62);  // next minute
  CHECK(rollup.due(kBase + 69).empty());  // minute end + grace not reached
  const auto due = rollup.due(kBase + 70);
  REQUIRE(due.size() == 1);
  const auto& pts = due[0].points;
  CHECK(due[0].minute == kBase);
  CHECK_FALSE(due[0].amended);
  CHECK(find(pts, "Orders.Placed", 1, 1) == 13);
  CHECK(find(pts, "Orders.Placed", 1, -1) == 113);  // the total
  CHECK(find(pts, "Orders.Placed", 2, -1) == 100);
  CHECK(find(pts, "Orders.Placed", 4, 1) == 1);
  CHECK(find(pts, "Orders.Placed", 8, -1) == Approx(113.0 / 4));
  CHECK(find(pts, "Orders.Placed", 16, 1) == 5);   // earliest time
  CHECK(find(pts, "Orders.Placed", 32, 1) == 1);   // latest time
  CHECK(find(pts, "Orders.Placed", 64, -1) == 4);
  CHECK(rollup.due(kBase + 71).empty());  // handed out once
}

TEST_CASE("late data amends a minute in memory or reopens it from the store, and too old is counted", "[rollup][failure]") {
  monitor::test::TempDir dir;
  auto store = *MinuteStore::open(dir.file("j.db"));
  MinuteRollup rollup({10, 60, 3600}, store->names(), [&](int64_t minute) { return *store->reader().minute_cells(minute); });
  auto finish = [&](const std::vector<FinishedMinute>& due) {
    for (const auto& f : due) {
      REQUIRE(store->finish_minute(f.minute, f.points, f.cells));
      rollup.stored(f.minute);
    }
  };
  rollup.add(second_record("Orders.Placed", kBase + 5, 1, 1 | 2, {5}, store->names()), kBase + 6);
  finish(rollup.due(kBase + 70));

  // Inside the late window: amended from memory.
  CHECK(rollup.add(second_record("Orders.Placed", kBase + 6, 1, 1 | 2, {2}, store->names()), kBase + 100) ==
        MinuteRollup::AddResult::kAccepted);
  auto amended = rollup.due(kBase + 101);
  REQUIRE(amended.size() == 1);
  CHECK(amended[0].amended);
  CHECK(find(amended[0].points, "Orders.Placed", 1, 1) == 7);
  finish(amended);
  rollup.due(kBase + 131);  // past the late window: forgotten in memory
  CHECK(rollup.open_minutes() == 0);

  // Later (a spool replayed after an outage, or after a restart): reopened
  // from the stored state, so the amendment is exact, not a replacement.
  CHECK(rollup.add(second_record("Orders.Placed", kBase + 7, 1, 1 | 2, {10}, store->names()), kBase + 900) ==
        MinuteRollup::AddResult::kAccepted);
  amended = rollup.due(kBase + 900);
  REQUIRE(amended.size() == 1);
  CHECK(amended[0].amended);
  CHECK(find(amended[0].points, "Orders.Placed", 1, 1) == 17);
  CHECK(find(amended[0].points, "Orders.Placed", 2, 1) == 10);
  CHECK(find(amended[0].points, "Orders.Placed", 1, -1) == 17);
  finish(amended);
  CHECK(store->reader().query("Shop.Api", "Orders.Placed", 1, 1, kBase, kBase + 60, 60, kBase + 900)->at(0).value == 17);

  // Older than the store can amend: counted and dropped.
  CHECK(rollup.add(second_record("Orders.Placed", kBase + 8, 1, 1, {1}, store->names()), kBase + 4000) ==
        MinuteRollup::AddResult::kTooLate);
  CHECK(rollup.too_late() == 1);
}

TEST_CASE("HIST minutes carry quantiles of all the minute's values", "[rollup]") {
  MinuteRollup rollup({10, 120}, g_names);
  std::vector<int64_t> values;
  for (int s = 0; s < 60; ++s) {
    std::vector<int64_t> second_values;
    for (int k = 1; k <= 10; ++k) second_values.push_back(s * 10 + k);
    values.insert(values.end(), second_values.begin(), second_values.end());
    rollup.add(second_record("Latency.Us", kBase + s, s % 2, 128, second_values), kBase + s);
  }
  const auto due = rollup.due(kBase + 70);
  REQUIRE(due.size() == 1);
  CHECK(find(due[0].points, "Latency.Us", kOpHistP50, -1) == Approx(300).epsilon(LogHistogram::kMaxRelativeError));
  CHECK(find(due[0].points, "Latency.Us", kOpHistP99, -1) == Approx(594).epsilon(LogHistogram::kMaxRelativeError));
  CHECK(find(due[0].points, "Latency.Us", kOpHistP999, -1) == 600);  // clamped to the max
}

TEST_CASE("per-server minutes merge to the total and match all reports at once", "[rollup][property]") {
  std::mt19937_64 rng(Catch::rngSeed());
  MinuteRollup rollup({10, 120}, g_names);
  std::map<std::tuple<uint32_t, int64_t>, Stats> expected;  // (op, server or -1)
  for (int i = 0; i < 2000; ++i) {
    const int64_t server = static_cast<int64_t>(rng() % 4);
    const int64_t second = kBase + static_cast<int64_t>(rng() % 60);
    const auto value = static_cast<int64_t>(rng() % 1000) - 500;
    const uint8_t ops = static_cast<uint8_t>((rng() % 127) + 1);  // no HIST here
    // Distinct times, so FIRST and LAST have one right answer per server and in total.
    const int64_t time = second * 1'000'000'000 + i;
    PendingRecord p{g_names.intern("Shop.Api", "Mixed.Ops"), {}};
    p.record.second = second;
    p.record.server_id = server;
    p.record.ops = ops;
    p.record.stats.add(value, time);
    rollup.add(p, kBase);
    for (uint32_t bit = 1; bit < 128; bit <<= 1) {
      if ((ops & bit) == 0) continue;
      expected[{bit, server}].add(value, time);
      expected[{bit, -1}].add(value, time);
    }
  }
  const auto due = rollup.due(kBase + 70);
  REQUIRE(due.size() == 1);
  for (const auto& [key, stats] : expected) {
    const auto [op, server] = key;
    const double got = find(due[0].points, "Mixed.Ops", op, server);
    INFO("op " << op << " server " << server);
    switch (op) {
      case 1: CHECK(got == static_cast<double>(stats.sum)); break;
      case 2: CHECK(got == static_cast<double>(stats.max)); break;
      case 4: CHECK(got == static_cast<double>(stats.min)); break;
      case 8: CHECK(got == Approx(stats.average())); break;
      case 16: CHECK(got == static_cast<double>(stats.first)); break;
      case 32: CHECK(got == static_cast<double>(stats.last)); break;
      case 64: CHECK(got == static_cast<double>(stats.count)); break;
      default: FAIL("unexpected op " << op);
    }
  }
}

TEST_CASE("after a restart the pending records rebuild the same minute", "[rollup][store][crash]") {
  monitor::test::TempDir dir;
  std::vector<MinutePoint> before;
  {
    auto store = *MinuteStore::open(dir.file("j.db"));
    MinuteRollup rollup({10, 120}, store->names());
    for (int s = 0; s < 60; ++s) {
      const auto rec = second_record("Orders.Placed", kBase + s, s % 3, 1 | 8, {s, s * 2}, store->names());
      REQUIRE(store->append_batch(1, static_cast<uint64_t>(s + 1), {rec}, kBase));
      rollup.add(rec, kBase + s);
    }
    before = rollup.due(kBase + 70).at(0).points;
    // Killed here: the minute was never stored.
  }
  auto store = *MinuteStore::open(dir.file("j.db"));
  MinuteRollup rebuilt({10, 120}, store->names());
  for (const auto& rec : *store->pending()) rebuilt.add(rec, kBase + 70);
  const auto after = rebuilt.due(kBase + 70).at(0).points;
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].server_id == before[i].server_id);
    CHECK(after[i].value == before[i].value);
  }
  REQUIRE(store->finish_minute(kBase, after));
  CHECK(store->pending()->empty());
}

// Issue 7, item 5: a minute whose store failed used to be marked finished and
// never tried again; past its late window a late record rebuilt it from the
// stale stored state.
TEST_CASE("issue 7: a minute whose store fails stays due and in memory until it is stored", "[rollup][issue7][failure]") {
  monitor::test::TempDir dir;
  auto store = *MinuteStore::open(dir.file("j.db"));
  MinuteRollup rollup({10, 60, 3600}, store->names(), [&](int64_t minute) { return *store->reader().minute_cells(minute); });
  rollup.add(second_record("Orders.Placed", kBase + 5, 1, 1, {5}, store->names()), kBase + 6);
  auto due = rollup.due(kBase + 70);
  REQUIRE(due.size() == 1);
  rollup.store_failed(kBase);  // say the disk is full

  // Tried again at every call while it fails, long past its late window.
  for (int64_t now = kBase + 71; now < kBase + 400; now += 60) {
    due = rollup.due(now);
    REQUIRE(due.size() == 1);
    CHECK(due[0].minute == kBase);
    rollup.store_failed(kBase);
  }
  CHECK(rollup.open_minutes() == 1);

  // A late record merges into what memory holds, not into the (absent) stored state.
  CHECK(rollup.add(second_record("Orders.Placed", kBase + 6, 1, 1, {2}, store->names()), kBase + 500) ==
        MinuteRollup::AddResult::kAccepted);
  due = rollup.due(kBase + 501);
  REQUIRE(due.size() == 1);
  CHECK(find(due[0].points, "Orders.Placed", 1, 1) == 7);
  REQUIRE(store->finish_minute(due[0].minute, due[0].points, due[0].cells));
  rollup.stored(kBase);
  CHECK(rollup.due(kBase + 502).empty());
  CHECK(rollup.open_minutes() == 0);  // stored and past its late window: forgotten now
  CHECK(store->reader().query("Shop.Api", "Orders.Placed", 1, 1, kBase, kBase + 60, 60, kBase + 502)->at(0).value == 7);
}

TEST_CASE("issue 7: the judger's series limiter admits open series, counts new ones per service and minute, and forgets "
          "old minutes",
          "[judger][issue7][failure]") {
  monitor::judger::NameTable names;
  const uint32_t a = names.intern("Shop.Api", "Orders.Count");
  const uint32_t b = names.intern("Shop.Api", "Latency.Ms");
  const uint32_t other = names.intern("Shop.Web", "Orders.Count");
  monitor::judger::SeriesLimiter limiter(2, names);
  CHECK(limiter.admit(a, 1, 60));
  CHECK(limiter.admit(b, 1, 60));
  CHECK_FALSE(limiter.admit(a, 2, 60));  // a third series of Shop.Api in minute 60
  CHECK(limiter.admit(a, 1, 60));        // open already
  CHECK(limiter.admit(other, 5, 60));    // another service
  CHECK(limiter.admit(a, 2, 120));       // another minute
  limiter.forget_before(120);
  CHECK(limiter.open_minutes() == 1);
  CHECK(limiter.admit(a, 3, 60));  // forgotten: counted afresh
  monitor::judger::SeriesLimiter unlimited(0, names);
  for (int64_t server = 0; server < 1000; ++server) CHECK(unlimited.admit(a, server, 60));
}
