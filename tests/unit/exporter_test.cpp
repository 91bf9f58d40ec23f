#include <stdexcept>

#include <catch2/catch.hpp>

#include "judger/exporter.hpp"
#include "judger/judger_config.hpp"

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
