#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/clock.hpp"
#include "judger/exporter.hpp"
#include "judger/judger_config.hpp"
#include "judger/minute_store.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"

using namespace std::chrono_literals;

using monitor::judger::export_line;
using monitor::judger::ExportTarget;
using monitor::judger::JudgerConfig;

TEST_CASE("an exported line carries the series as tags, one field per op and the minute", "[unit][export]") {
  CHECK(export_line("monitor", "Shop.Api", "Orders.Placed", 12, {{"sum", 31}, {"max", 4}, {"count", 9}}, 1796019660) ==
        "monitor,service=Shop.Api,attr=Orders.Placed,server=12 sum=31,max=4,count=9 1796019660\n");
  CHECK(export_line("monitor_second", "Shop.Api", "Orders.Placed", -1, {{"avg", 0.1}}, 1796019660001) ==
        "monitor_second,service=Shop.Api,attr=Orders.Placed,server=total avg=0.1 1796019660001\n");
  // Values keep every digit a double has: InfluxDB stores what the judger stores.
  CHECK(export_line("monitor", "A.B", "C.D", 0, {{"p99", 1234.5678901234567}}, 60) ==
        "monitor,service=A.B,attr=C.D,server=0 p99=1234.5678901234567 60\n");
  // No valid name holds these, but nothing can break a line.
  CHECK(export_line("monitor", "A B", "C,D=E", 1, {{"sum", 1}}, 60) ==
        "monitor,service=A\\ B,attr=C\\,D\\=E,server=1 sum=1 60\n");
}

TEST_CASE("an export target is NAME=KIND:URL with a known kind and an http URL", "[unit][export]") {
  const ExportTarget vm = JudgerConfig::parse_export_target("vm=victoriametrics:http://127.0.0.1:8428/write");
  CHECK(vm.name == "vm");
  CHECK(vm.kind == ExportTarget::Kind::kVictoriaMetrics);
  CHECK(vm.url == "http://127.0.0.1:8428/write");
  const ExportTarget influx = JudgerConfig::parse_export_target("i-1=influxdb:https://u:p@db:8086/write?db=monitor");
  CHECK(influx.kind == ExportTarget::Kind::kInfluxDb);
  CHECK(influx.url == "https://u:p@db:8086/write?db=monitor");
  CHECK_THROWS_WITH(JudgerConfig::parse_export_target("vm"), Catch::Contains("expected NAME=KIND:URL"));
  CHECK_THROWS_WITH(JudgerConfig::parse_export_target("vm=graphite:http://x/"), Catch::Contains("kind must be"));
  CHECK_THROWS_WITH(JudgerConfig::parse_export_target("vm=influxdb:file:///etc/passwd"),
                    Catch::Contains("must start with http://"));
  CHECK_THROWS_WITH(JudgerConfig::parse_export_target("=influxdb:http://x/"), Catch::Contains("name must be"));
  JudgerConfig config;
  config.export_targets = {vm, vm};
  CHECK_THROWS_WITH(config.validate(), Catch::Contains("\"vm\" is used twice"));
}

// Regression (issue 20): while a target was away, the exporter held the read
// of a minute's points open across its retries (it posted each part from
// inside the read), so the store's write-ahead log could not be checkpointed
// and grew for as long as the target stayed away.
TEST_CASE("an exporter whose target is away holds no read on the store while it retries", "[unit][export]") {
  monitor::test::TempDir dir;
  const std::filesystem::path db = dir.file("judger.db");
  auto store = monitor::judger::MinuteStore::open(db);
  REQUIRE(store.has_value());
  const int64_t minute = monitor::realtime_ns() / 60'000'000'000 * 60 - 120;
  std::vector<monitor::judger::MinutePoint> points;
  for (int64_t server = 0; server < 50; ++server) points.push_back({"Shop.Api", "Orders.Placed", 1, server, minute, 1.0});
  REQUIRE((*store)->finish_minute(minute, points).has_value());

  // A port nothing listens on: every post fails and is tried again.
  monitor::judger::ExportOptions options;
  options.targets.push_back(JudgerConfig::parse_export_target(
      "away=influxdb:http://127.0.0.1:" + std::to_string(monitor::test::free_port()) + "/write?db=monitor"));
  options.lines_per_post = 10;  // the minute is five posts
  monitor::judger::Exporter exporter(dir.path(), db, options);
  exporter.minute_queued();
  REQUIRE(monitor::test::wait_until([&] { return exporter.figures().at(0).failures >= 2; }, 10s));

  sqlite3* reader = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &reader) == SQLITE_OK);
  sqlite3_stmt* checkpoint = nullptr;
  REQUIRE(sqlite3_prepare_v2(reader, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &checkpoint, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(checkpoint) == SQLITE_ROW);
  const int busy = sqlite3_column_int(checkpoint, 0);
  sqlite3_finalize(checkpoint);
  sqlite3_close(reader);
  CHECK(busy == 0);  // 1: a reader pins the log
}
