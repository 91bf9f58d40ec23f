// A daemon's health figures from one table (src/health/health_table.hpp):
// what it reports as Monitor.*, serves as /metrics and /api/health and logs
// agree, and are the attrs the example registry declares.
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "agent/agent.hpp"
#include "dashboard/dashboard_server.hpp"
#include "health/health_table.hpp"
#include "health/metrics.hpp"
#include "judger/judger.hpp"
#include "proxy/proxy.hpp"

namespace {

std::set<std::string> registered_attrs(const std::string& service) {
  std::ifstream in(std::string(MONITOR_SOURCE_DIR) + "/examples/registry/services/" + service + ".json");
  std::stringstream text;
  text << in.rdbuf();
  const boost::json::value entry = boost::json::parse(text.str());
  std::set<std::string> out;
  for (const auto& attr : entry.at("value").at("attrs").as_object()) out.insert(attr.key());
  return out;
}

std::set<std::string> as_set(const std::vector<std::string>& attrs) { return {attrs.begin(), attrs.end()}; }

struct Toy {
  uint64_t stored = 0;
  int64_t open = 0;
};

}  // namespace

TEST_CASE("issue 22: each daemon's health table is what the example registry declares for it", "[health][issue22]") {
  CHECK(as_set(monitor::agent::Agent::health_attrs()) == registered_attrs("Monitor.Agent"));
  CHECK(as_set(monitor::judger::Judger::health_attrs()) == registered_attrs("Monitor.Judger"));
  CHECK(as_set(monitor::proxy::Proxy::health_attrs()) == registered_attrs("Monitor.Proxy"));
  CHECK(as_set(monitor::dashboard::DashboardServer::health_attrs()) == registered_attrs("Monitor.Dashboard"));
  // No attr twice: the second would report a delta of the first's total.
  for (const auto& attrs : {monitor::agent::Agent::health_attrs(), monitor::judger::Judger::health_attrs(),
                            monitor::proxy::Proxy::health_attrs(),
                            monitor::dashboard::DashboardServer::health_attrs()}) {
    CHECK(as_set(attrs).size() == attrs.size());
  }
}

TEST_CASE("issue 22: one health table feeds /metrics, /api/health and the log line alike", "[health][issue22]") {
  monitor::health::HealthTable<Toy> table;
  table.counter("Minutes.Stored", "minutes_stored", "minutes stored", [](const Toy& t) { return t.stored; })
      .gauge("Minutes.Open", "open_minutes", "", [](const Toy& t) { return t.open; });
  CHECK(table.attrs() == std::vector<std::string>{"Minutes.Stored", "Minutes.Open"});

  Toy toy{12, 3};
  monitor::health::Metrics metrics("judger");
  monitor::health::HealthReporter reporter("Monitor.Judger", 0, false);  // no agent: /metrics only
  reporter.expose(&metrics);
  table.report(toy, reporter);
  const std::string text = metrics.text();
  CHECK_THAT(text, Catch::Contains("monitor_judger_rollups_stored_total 12"));
  CHECK_THAT(text, Catch::Contains("monitor_judger_rollups_open 3"));

  boost::json::object health{{"name", "judger-1"}};
  table.add_json(toy, health);
  CHECK(health.at("minutes_stored").to_number<int64_t>() == 12);
  CHECK(health.at("open_minutes").to_number<int64_t>() == 3);
  CHECK(health.at("name").as_string() == "judger-1");

  CHECK(table.log_line(toy) == "12 minutes stored");
}

TEST_CASE("issue 22: a part the daemon does not run reports nothing, and a sink takes the deltas", "[health][issue22]") {
  struct Daemon {
    uint64_t sent = 0;
    bool forwarding = false;
  };
  monitor::health::HealthTable<Daemon> table;
  table.when([](const Daemon& d) { return d.forwarding; })
      .counter("Forward.Sent", "sent", "sent", [](const Daemon& d) { return d.sent; });
  std::vector<std::pair<std::string, int64_t>> taken;
  monitor::health::HealthReporter reporter([&](monitor::Name attr, int64_t value, int32_t) {
    taken.emplace_back(attr.view(), value);
    return true;
  });

  Daemon daemon{5, false};
  table.report(daemon, reporter);
  boost::json::object health;
  table.add_json(daemon, health);
  CHECK(taken.empty());
  CHECK(health.empty());
  CHECK(table.log_line(daemon).empty());

  daemon.forwarding = true;
  table.report(daemon, reporter);
  daemon.sent = 12;
  table.report(daemon, reporter);
  CHECK(taken == std::vector<std::pair<std::string, int64_t>>{{"Forward.Sent", 5}, {"Forward.Sent", 7}});
  CHECK(table.log_line(daemon) == "12 sent");
}
