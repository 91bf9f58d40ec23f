// Issue 10, section 2: the judger exports every finished minute to real
// VictoriaMetrics and InfluxDB (Debian's packages, started here on loopback).
// What they answer through their own query APIs must equal what the judger's
// query API answers, also after both were down while minutes finished, were
// amended and the judger was killed.
#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "e2e/batch_sender.hpp"
#include "e2e/judger_process.hpp"
#include "e2e/query_oracle.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"
#include "support/tsdb_servers.hpp"
#include "support/wire_client.hpp"
#include "wire/messages.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::free_port;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::url_encode;
using monitor::test::wait_until;
using monitor::test::WireClient;
namespace wire = monitor::wire;

namespace {

constexpr const char* kService = "E2e.Export";

// (server, minute) -> value; server "total" or an id.
using Minutes = std::map<std::pair<std::string, int64_t>, double>;

// What the judger's own query API says.
Minutes judger_minutes(int query_port, const std::string& attr, const std::string& op, int64_t from, int64_t to) {
  Minutes out;
  const auto reply = monitor::test::http_get(
      query_port, "/api/points?service=" + std::string(kService) + "&attr=" + attr + "&op=" + op +
                      "&from=" + std::to_string(from) + "&to=" + std::to_string(to));
  if (reply.status != 200) return out;
  const auto body = boost::json::parse(reply.body);
  for (const auto& [server, rows] : body.at("servers").as_object()) {
    for (const auto& row : rows.as_array()) {
      out[{std::string(server), row.as_array().at(0).to_number<int64_t>()}] = row.as_array().at(1).to_number<double>();
    }
  }
  return out;
}

// What VictoriaMetrics exports of <measurement>_<field>: per minute (or
// second) the newest sample (an amended minute's versions are 1 ms apart);
// `samples` counts all.
Minutes victoria_minutes(const monitor::test::VictoriaMetricsServer& vm, const std::string& attr,
                         const std::string& field, size_t* samples = nullptr,
                         const std::string& measurement = "monitor", int64_t period_ms = 60000) {
  Minutes out;
  std::map<std::pair<std::string, int64_t>, int64_t> newest;
  const std::string match =
      "{__name__=\"" + measurement + "_" + field + "\",service=\"" + kService + "\",attr=\"" + attr + "\"}";
  std::istringstream lines(vm.get("/api/v1/export?match[]=" + url_encode(match)));
  if (samples != nullptr) *samples = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto series = boost::json::parse(line).as_object();
    const std::string server(series.at("metric").at("server").as_string());
    const auto& values = series.at("values").as_array();
    const auto& times = series.at("timestamps").as_array();
    for (size_t i = 0; i < values.size(); ++i) {
      const int64_t ms = times.at(i).to_number<int64_t>();
      const std::pair<std::string, int64_t> key{server, ms / period_ms * period_ms / 1000};
      if (samples != nullptr) ++*samples;
      if (auto it = newest.find(key); it == newest.end() || it->second < ms) {
        newest[key] = ms;
        out[key] = values.at(i).to_number<double>();
      }
    }
  }
  return out;
}

// What InfluxDB answers to SELECT; `rows` counts the points it holds.
Minutes influx_minutes(const monitor::test::InfluxDbServer& influx, const std::string& attr, const std::string& field,
                       size_t* rows = nullptr, const std::string& measurement = "monitor") {
  Minutes out;
  const std::string reply = influx.query("SELECT \"" + field + "\", server FROM " + measurement +
                                         " WHERE service = '" + kService + "' AND attr = '" + attr + "'");
  if (rows != nullptr) *rows = 0;
  if (reply.empty()) return out;
  const auto body = boost::json::parse(reply);
  const auto& result = body.at("results").at(0).as_object();
  if (!result.contains("series")) return out;
  for (const auto& row : result.at("series").at(0).at("values").as_array()) {
    const auto& cells = row.as_array();
    if (cells.at(1).is_null()) continue;
    if (rows != nullptr) ++*rows;
    out[{std::string(cells.at(2).as_string()), cells.at(0).to_number<int64_t>()}] = cells.at(1).to_number<double>();
  }
  return out;
}

bool close_enough(const Minutes& a, const Minutes& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [key, value] : a) {
    const auto it = b.find(key);
    // VictoriaMetrics keeps values as decimals of 12 significant digits or so.
    if (it == b.end() || std::abs(it->second - value) > 1e-9 * std::max(1.0, std::abs(value))) return false;
  }
  return true;
}

std::string describe(const Minutes& m) {
  std::ostringstream out;
  for (const auto& [key, value] : m) out << key.first << "@" << key.second << "=" << value << " ";
  return out.str();
}

// The export figures of one target in the judger's /api/health, or null.
boost::json::object export_figures(int query_port, const std::string& target) {
  const auto reply = monitor::test::http_get(query_port, "/api/health");
  if (reply.status != 200) return {};
  const auto health = boost::json::parse(reply.body).as_object();
  if (!health.contains("export")) return {};
  for (const auto& t : health.at("export").as_array()) {
    if (t.at("target").as_string() == target) return t.as_object();
  }
  return {};
}

int64_t figure(int query_port, const std::string& target, const char* name) {
  const auto f = export_figures(query_port, target);
  return f.contains(name) ? f.at(name).to_number<int64_t>() : -1;
}

// The two names every batch of these tests uses.
class Sender : public monitor::e2e::BatchSender {
 public:
  Sender(int port, uint64_t id) : BatchSender(port, id, {{1, kService, "Orders.Placed"}, {2, kService, "Latency.Ms"}}) {}

  // One batch: for servers 1..3, five seconds of `minute` with orders
  // `scale` * server and latencies around 100 * scale * server.
  void send_minute(int64_t minute, int64_t scale) {
    std::vector<wire::BatchRecord> records;
    for (int64_t server = 1; server <= 3; ++server) {
      for (int64_t s = 0; s < 5; ++s) {
        wire::BatchRecord orders;
        orders.second = minute + s * 7;
        orders.name_id = 1;
        orders.server_id = server;
        orders.ops = 1 | 2 | 64;  // SUM, MAX, COUNT
        orders.stats.add(scale * server + s, orders.second * 1'000'000'000);
        records.push_back(orders);
        wire::BatchRecord latency = orders;
        latency.name_id = 2;
        latency.ops = 128;  // HIST
        latency.stats = {};
        const int64_t ms = 100 * scale * server + 13 * s;
        latency.stats.add(ms, orders.second * 1'000'000'000);
        latency.hist.add(ms);
        records.push_back(latency);
      }
    }
    send(std::move(records));
  }
};

struct Compared {
  const char* attr;
  const char* op;     // the judger's name
  const char* field;  // the exported field
};
constexpr Compared kCompared[] = {{"Orders.Placed", "SUM", "sum"},
                                  {"Orders.Placed", "MAX", "max"},
                                  {"Orders.Placed", "COUNT", "count"},
                                  {"Latency.Ms", "HIST_P50", "p50"},
                                  {"Latency.Ms", "HIST_P99", "p99"}};

// Every compared series of both databases equals the judger's over [from, to),
// which holds `minutes` minutes of 3 servers and the total.
void check_equal(int query_port, const monitor::test::VictoriaMetricsServer& vm,
                 const monitor::test::InfluxDbServer& influx, int64_t from, int64_t to, size_t minutes) {
  for (const Compared& c : kCompared) {
    const Minutes judger = judger_minutes(query_port, c.attr, c.op, from, to);
    INFO(c.attr << " " << c.op << "\njudger:   " << describe(judger));
    REQUIRE(judger.size() == minutes * 4);
    size_t vm_samples = 0, influx_rows = 0;
    // VictoriaMetrics makes what it was sent searchable within a second or so.
    CHECK(wait_until([&] { return close_enough(judger, victoria_minutes(vm, c.attr, c.field, &vm_samples)); }, 15s));
    INFO("victoria: " << describe(victoria_minutes(vm, c.attr, c.field)));
    // Deduplicated per second (-dedup.minScrapeInterval=1s): one sample per minute, the newest version.
    CHECK(vm_samples == judger.size());
    const Minutes from_influx = influx_minutes(influx, c.attr, c.field, &influx_rows);
    INFO("influx:   " << describe(from_influx));
    CHECK(close_enough(judger, from_influx));
    CHECK(influx_rows == judger.size());  // every minute once: an amendment replaced its point
  }
}

}  // namespace

TEST_CASE("issue 10: the judger exports every finished minute to real VictoriaMetrics and InfluxDB equal to its "
          "own query API - with both down while minutes finish and are amended and the judger is killed, every "
          "minute arrives once and amendments overwrite",
          "[e2e][issue10][export]") {
  monitor::test::VictoriaMetricsServer vm;
  monitor::test::InfluxDbServer influx;
  TempDir dir;
  std::filesystem::copy(MONITOR_EXAMPLES_REGISTRY, dir.file("registry"), std::filesystem::copy_options::recursive);
  const int port = free_port(), query_port = free_port();
  const std::vector<std::string> flags = {"--name", "judger-x", "--no-self-metrics", "--no-placement",
                                          "--export", "vm=victoriametrics:" + vm.write_url(),
                                          "--export", "influx=influxdb:" + influx.write_url()};
  std::optional<ChildProcess> judger = monitor::e2e::spawn_judger(dir, port, dir.file("judger-1.log"), query_port, flags);
  // The judger's log, when a check fails (INFO reads it when it is written).
  const auto judger_log = [&] { return read_file(dir.file("judger-1.log")) + read_file(dir.file("judger-2.log")); };

  // Minutes 20 minutes back are final at once; the judger rolls them up as it would late data.
  const int64_t now = monitor::e2e::unix_now_s();
  const int64_t first = now - now % 60 - 20 * 60, to = first + 5 * 60;
  auto delivered = [&](int64_t minutes_stored) {
    return monitor::e2e::judger_health(query_port, "minutes_stored") >= minutes_stored &&
           figure(query_port, "vm", "backlog") == 0 && figure(query_port, "influx", "backlog") == 0;
  };
  {
    Sender sender(port, 501);
    for (int64_t i = 0; i < 3; ++i) sender.send_minute(first + i * 60, 10 + i);
    REQUIRE(wait_until([&] { return delivered(3); }, 30s));
    check_equal(query_port, vm, influx, first, to, 3);
    CHECK(figure(query_port, "vm", "failures") == 0);
    CHECK(figure(query_port, "vm", "dropped") == 0);
  }
  const double first_sum_before = influx_minutes(influx, "Orders.Placed", "sum").at({"total", first});

  // Both targets go away. Two new minutes finish and the first is amended.
  vm.stop();
  influx.stop();
  {
    Sender sender(port, 502);
    sender.send_minute(first + 3 * 60, 20);
    sender.send_minute(first + 4 * 60, 21);
    sender.send_minute(first, 30);
  }
  const bool queued = wait_until([&] {
    return figure(query_port, "vm", "backlog") >= 3 && figure(query_port, "vm", "failures") >= 1 &&
           figure(query_port, "influx", "backlog") >= 3 && figure(query_port, "influx", "failures") >= 1;
  }, 30s);
  INFO(judger_log());
  REQUIRE(queued);

  // The judger dies with all of that undelivered; its position survives it.
  judger->signal(SIGKILL);
  judger->wait_for(10s);
  judger.reset();
  judger.emplace(monitor::e2e::spawn_judger(dir, port, dir.file("judger-2.log"), query_port, flags));
  {
    Sender sender(port, 503);  // one more amendment after the restart
    sender.send_minute(first + 60, 40);
  }
  REQUIRE(wait_until([&] { return figure(query_port, "vm", "backlog") >= 4; }, 30s));

  vm.start();
  influx.start();
  const bool caught_up = wait_until([&] { return delivered(1); }, 60s);
  INFO(judger_log());
  REQUIRE(caught_up);
  check_equal(query_port, vm, influx, first, to, 5);
  const double first_sum_after = influx_minutes(influx, "Orders.Placed", "sum").at({"total", first});
  CHECK(first_sum_after > first_sum_before);  // the amendment overwrote the point
  CHECK(figure(query_port, "vm", "dropped") == 0);
  CHECK(figure(query_port, "influx", "dropped") == 0);
  CHECK_THAT(read_file(dir.file("judger-2.log")), Catch::Contains("export to vm") && Catch::Contains("resumes"));

  // Export lag and backlog are health metrics, also as Prometheus text (refreshed every 5 s).
  std::string metrics;
  const bool reported = wait_until([&] {
    metrics = monitor::test::http_get(query_port, "/metrics").body;
    return metrics.find("monitor_judger_export_lag_seconds 0\n") != std::string::npos &&
           metrics.find("monitor_judger_export_backlog 0\n") != std::string::npos &&
           metrics.find("monitor_judger_export_delivered_total 8\n") != std::string::npos;
  }, 15s);
  INFO(metrics);
  CHECK(reported);  // since the restart, per target: the two new minutes and the two amended (summed over both)
  judger->signal(SIGTERM);
  CHECK(judger->wait_for(20s) == 0);
}

TEST_CASE("issue 10: the export backlog is bounded - a minute older than it when its target is down is counted as "
          "dropped and logged, the rest delivered when the target returns - and bad --export flags are clear errors",
          "[e2e][issue10][export]") {
  monitor::test::VictoriaMetricsServer vm;
  vm.kill();
  TempDir dir;
  std::filesystem::copy(MONITOR_EXAMPLES_REGISTRY, dir.file("registry"), std::filesystem::copy_options::recursive);
  const int port = free_port(), query_port = free_port();
  auto judger = monitor::e2e::spawn_judger(dir, port, dir.file("judger.log"), query_port,
                                           {"--name", "judger-y", "--no-self-metrics", "--no-placement", "--export",
                                            "vm=victoriametrics:" + vm.write_url(), "--export-backlog", "5"});
  const int64_t now = monitor::e2e::unix_now_s();
  const int64_t old_minute = now - now % 60 - 10 * 60, recent_minute = now - now % 60 - 2 * 60;
  {
    Sender sender(port, 601);
    sender.send_minute(old_minute, 1);
    sender.send_minute(recent_minute, 2);
  }
  const bool held = wait_until([&] {
    return figure(query_port, "vm", "dropped") == 1 && figure(query_port, "vm", "backlog") == 1 &&
           figure(query_port, "vm", "failures") >= 1;
  }, 30s);
  INFO("health: " << monitor::test::http_get(query_port, "/api/health").body << "\njudger:\n"
                  << read_file(dir.file("judger.log")));
  REQUIRE(held);
  CHECK_THAT(read_file(dir.file("judger.log")),
             Catch::Contains("minute " + std::to_string(old_minute) + " fell off the 5 min backlog"));
  vm.start();
  REQUIRE(wait_until([&] { return figure(query_port, "vm", "backlog") == 0; }, 60s));
  Minutes exported;
  CHECK(wait_until([&] {  // searchable within a second or so
    exported = victoria_minutes(vm, "Orders.Placed", "sum");
    return !exported.empty();
  }, 15s));
  CHECK(exported.count({"total", recent_minute}) == 1);
  CHECK(exported.count({"total", old_minute}) == 0);
  CHECK(close_enough(judger_minutes(query_port, "Orders.Placed", "SUM", recent_minute, recent_minute + 60), exported));
  judger.signal(SIGTERM);
  CHECK(judger.wait_for(20s) == 0);

  const std::pair<std::vector<std::string>, std::string> bad[] = {
      {{"--export", "nonsense"}, "expected NAME=KIND:URL"},
      {{"--export", "x=graphite:http://127.0.0.1:1/write"}, "kind must be victoriametrics or influxdb"},
      {{"--export", "x=influxdb:ftp://127.0.0.1/"}, "must start with http:// or https://"},
      {{"--export", "a b=influxdb:http://127.0.0.1:1/write"}, "name must be"},
      {{"--export-backlog", "0"}, "export_backlog_minutes must be in [1, 2880]"},
  };
  for (const auto& [args, message] : bad) {
    auto refused = monitor::e2e::spawn_judger(dir, free_port(), dir.file("bad.log"), 0, args);
    CHECK(refused.wait_for(10s) == 2);
    CHECK_THAT(read_file(dir.file("bad.log")), Catch::Contains(message));
  }
}

TEST_CASE("issue 10: with --export-seconds each second's aggregates per server and in total are exported too, "
          "merged over batches, and an amended second overwrites its point whole",
          "[e2e][issue10][export]") {
  monitor::test::VictoriaMetricsServer vm;
  monitor::test::InfluxDbServer influx;
  TempDir dir;
  std::filesystem::copy(MONITOR_EXAMPLES_REGISTRY, dir.file("registry"), std::filesystem::copy_options::recursive);
  const int port = free_port(), query_port = free_port();
  auto judger = monitor::e2e::spawn_judger(
      dir, port, dir.file("judger.log"), query_port,
      {"--name", "judger-z", "--no-self-metrics", "--no-placement", "--export-seconds", "--export",
       "vm=victoriametrics:" + vm.write_url(), "--export", "influx=influxdb:" + influx.write_url()});
  const int64_t now = monitor::e2e::unix_now_s();
  const int64_t minute = now - now % 60 - 5 * 60, second = minute + 17;
  auto record = [&](int64_t server, int64_t value, int64_t at = 0) {
    wire::BatchRecord r;
    r.second = at == 0 ? second : at;
    r.name_id = 1;
    r.server_id = server;
    r.ops = 1 | 2 | 64;  // SUM, MAX, COUNT
    r.stats.add(value, r.second * 1'000'000'000);
    return r;
  };
  auto both_equal = [&](const std::string& field, const Minutes& expected) {
    return close_enough(expected, victoria_minutes(vm, "Orders.Placed", field, nullptr, "monitor_second", 1000)) &&
           close_enough(expected, influx_minutes(influx, "Orders.Placed", field, nullptr, "monitor_second"));
  };
  {
    // Second 17 of server 1 arrives in two batches (an agent's late ring
    // data): its point is their merge; server 2 and second 30 once.
    Sender sender(port, 701);
    sender.send({record(1, 5), record(2, 3)});
    sender.send({record(1, 7), record(2, 4, minute + 30)});
  }
  const bool first_sent = wait_until([&] {
    return both_equal("sum", {{{"1", second}, 12}, {{"2", second}, 3}, {{"total", second}, 15},
                              {{"2", minute + 30}, 4}, {{"total", minute + 30}, 4}}) &&
           both_equal("count", {{{"1", second}, 2}, {{"2", second}, 1}, {{"total", second}, 3},
                                {{"2", minute + 30}, 1}, {{"total", minute + 30}, 1}});
  }, 30s);
  INFO("judger:\n" << read_file(dir.file("judger.log")) << "\nhealth: "
                   << monitor::test::http_get(query_port, "/api/health").body << "\nvictoria sum: "
                   << describe(victoria_minutes(vm, "Orders.Placed", "sum", nullptr, "monitor_second", 1000))
                   << "\ninflux sum: " << describe(influx_minutes(influx, "Orders.Placed", "sum", nullptr, "monitor_second")));
  REQUIRE(first_sent);
  CHECK(both_equal("max", {{{"1", second}, 7}, {{"2", second}, 3}, {{"total", second}, 7},
                           {{"2", minute + 30}, 4}, {{"total", minute + 30}, 4}}));

  {
    // Late data for the stored minute: the second's point is the merge of all three.
    Sender sender(port, 702);
    sender.send({record(1, 10)});
  }
  CHECK(wait_until([&] {
    return both_equal("sum", {{{"1", second}, 22}, {{"2", second}, 3}, {{"total", second}, 25},
                              {{"2", minute + 30}, 4}, {{"total", minute + 30}, 4}}) &&
           both_equal("max", {{{"1", second}, 10}, {{"2", second}, 3}, {{"total", second}, 10},
                              {{"2", minute + 30}, 4}, {{"total", minute + 30}, 4}});
  }, 30s));
  // The minutes go on as before, beside the seconds.
  CHECK(influx_minutes(influx, "Orders.Placed", "sum").at({"total", minute}) == 29);
  CHECK(figure(query_port, "vm", "seconds_dropped") == 0);
  judger.signal(SIGTERM);
  CHECK(judger.wait_for(20s) == 0);
}

// Issue 20, section 7. Regression: InfluxDB answered 400 "partial write:
// points beyond retention policy" to a minute older than its retention, the
// exporter retried that post forever and no later minute reached InfluxDB.
TEST_CASE("issue 20: a minute InfluxDB refuses for good (beyond its retention policy) is dropped and counted, and "
          "the minutes after it are delivered",
          "[e2e][issue20][export]") {
  monitor::test::InfluxDbServer influx;
  REQUIRE_THAT(influx.query("CREATE RETENTION POLICY short ON monitor DURATION 1h REPLICATION 1 DEFAULT"),
               !Catch::Contains("error"));
  TempDir dir;
  std::filesystem::copy(MONITOR_EXAMPLES_REGISTRY, dir.file("registry"), std::filesystem::copy_options::recursive);
  const int port = free_port(), query_port = free_port();
  auto judger = monitor::e2e::spawn_judger(dir, port, dir.file("judger.log"), query_port,
                                           {"--name", "judger-r", "--no-self-metrics", "--no-placement", "--export",
                                            "influx=influxdb:" + influx.write_url()});
  const int64_t now = monitor::e2e::unix_now_s();
  const int64_t old_minute = now - now % 60 - 120 * 60, recent_minute = now - now % 60 - 2 * 60;
  {
    Sender sender(port, 602);
    sender.send_minute(old_minute, 1);
  }
  auto health = [&] { return monitor::test::http_get(query_port, "/api/health").body; };
  {
    const bool refused = wait_until([&] { return figure(query_port, "influx", "refused") > 0; }, 30s);
    INFO("health: " << health() << "\njudger:\n" << read_file(dir.file("judger.log")));
    REQUIRE(refused);
  }
  {
    Sender sender(port, 603);
    sender.send_minute(recent_minute, 2);
  }
  Minutes exported;
  const bool delivered = wait_until([&] {
    exported = influx_minutes(influx, "Orders.Placed", "sum");
    return exported.count({"total", recent_minute}) == 1;
  }, 30s);
  INFO("health: " << health() << "\njudger:\n" << read_file(dir.file("judger.log")));
  CHECK(delivered);
  CHECK(exported.count({"total", old_minute}) == 0);
  CHECK(wait_until([&] { return figure(query_port, "influx", "backlog") == 0; }, 10s));
  // Every line of the old minute, and only those: 3 servers and the total, of two attrs.
  CHECK(figure(query_port, "influx", "refused") == 8);
  CHECK_THAT(read_file(dir.file("judger.log")), Catch::Contains("beyond retention policy"));
  judger.signal(SIGTERM);
  CHECK(judger.wait_for(20s) == 0);
}
