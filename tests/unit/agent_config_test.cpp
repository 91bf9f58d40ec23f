#include <fstream>

#include <catch2/catch.hpp>

#include "agent/agent_config.hpp"
#include "judger/judger_config.hpp"
#include "support/temp_names.hpp"

using monitor::agent::AgentConfig;

namespace {
std::string write(const monitor::test::TempDir& dir, const std::string& text) {
  const std::string path = dir.file("agent.json");
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST_CASE("a config file sets the agent's options", "[config]") {
  monitor::test::TempDir dir;
  AgentConfig config;
  config.load_file(write(dir, R"({"ring": "/r1", "socket": "/tmp/s", "late_window_s": 5, "server_id": 3,
                                  "self_metrics": false, "ring_slots_per_lane": 1024})"));
  CHECK(config.ring == "/r1");
  CHECK(config.socket == "/tmp/s");
  CHECK(config.late_window_s == 5);
  CHECK(config.server_id == 3);
  CHECK_FALSE(config.self_metrics);
  CHECK(config.ring_slots_per_lane == 1024);
  CHECK_NOTHROW(config.validate());
}

TEST_CASE("a config file sets plugins and checks", "[config][plugins]") {
  monitor::test::TempDir dir;
  AgentConfig config;
  config.load_file(write(dir, R"({"plugins": {"dir": "/opt/plugins", "max_running": 2, "max_output_bytes": 4096},
                                  "checks": [{"type": "tcp", "name": "Redis", "address": "127.0.0.1:6379"}]})"));
  CHECK(config.plugins.dir == "/opt/plugins");
  CHECK(config.plugins.max_running == 2);
  CHECK(config.plugins.max_output_bytes == 4096);
  REQUIRE(config.checks.size() == 1);
  CHECK(config.checks[0].name == "Redis");
  CHECK_NOTHROW(config.validate());
  config.plugins.max_running = 0;
  CHECK_THROWS_WITH(config.validate(), Catch::Contains("plugins.max_running"));
  CHECK_THROWS_WITH(config.load_file(write(dir, R"({"plugins": {"dirs": "/x"}})")), Catch::Contains("unknown key \"dirs\""));
  CHECK_THROWS_WITH(config.load_file(write(dir, R"({"checks": [{"type": "tcp", "name": "X"}]})")),
                    Catch::Contains("checks[0] (X)"));
}

TEST_CASE("a bad config file is an error that names the problem", "[config][failure]") {
  monitor::test::TempDir dir;
  AgentConfig config;
  CHECK_THROWS_WITH(config.load_file(dir.file("missing.json")), Catch::Contains("cannot open"));
  CHECK_THROWS_WITH(config.load_file(write(dir, "{not json")), Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(config.load_file(write(dir, "[1]")), Catch::Contains("must be an object"));
  CHECK_THROWS_WITH(config.load_file(write(dir, R"({"late_window": 3})")), Catch::Contains("unknown key \"late_window\""));
  CHECK_THROWS_WITH(config.load_file(write(dir, R"({"late_window_s": "3"})")), Catch::Contains("must be an integer"));
  CHECK_THROWS_WITH(config.load_file(write(dir, R"({"late_window_s": 99999999999})")), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(config.load_file(write(dir, R"({"self_metrics": 1})")), Catch::Contains("true or false"));
}

TEST_CASE("out-of-range values fail validation", "[config][failure]") {
  AgentConfig config;
  config.ring_slots_per_lane = 1000;
  CHECK_THROWS_WITH(config.validate(), Catch::Contains("power of two"));
  config = AgentConfig{};
  config.late_window_s = -1;
  CHECK_THROWS(config.validate());
  config = AgentConfig{};
  config.ring = "no-slash";
  CHECK_THROWS_WITH(config.validate(), Catch::Contains("must look like /name"));
  config = AgentConfig{};
  config.ring_shared_lanes = config.ring_lanes;
  CHECK_THROWS(config.validate());
}

TEST_CASE("the judger's config file is read with the same checks", "[config][judger]") {
  monitor::test::TempDir dir;
  monitor::judger::JudgerConfig config;
  config.load_file(write(dir, R"({"name": "judger-7", "listen": "127.0.0.1:9000", "grace_s": 3})"));
  CHECK(config.name == "judger-7");
  CHECK(config.listen == "127.0.0.1:9000");
  CHECK(config.grace_s == 3);
  CHECK_NOTHROW(config.validate());
  CHECK_THROWS_WITH(config.load_file(write(dir, R"({"grace": 3})")), Catch::Contains("unknown key \"grace\""));
  CHECK_THROWS_WITH(config.load_file(write(dir, R"({"grace_s": "3"})")), Catch::Contains("must be an integer"));
  CHECK_THROWS_WITH(config.load_file(write(dir, "{oops")), Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(config.load_file(write(dir, "[1]")), Catch::Contains("must be an object"));
  config = monitor::judger::JudgerConfig{};
  config.name = "bad name";
  CHECK_THROWS(config.validate());
  // Alarm messages link to the dashboard: only an http(s) address, nothing that would break the link.
  config = monitor::judger::JudgerConfig{};
  config.load_file(write(dir, R"({"dashboard_url": "https://dash.example.com:8080"})"));
  CHECK(config.dashboard_url == "https://dash.example.com:8080");
  CHECK_NOTHROW(config.validate());
  for (const char* bad : {"dash.example.com", "javascript:alert(1)", "http://a b", "http://x/\"<b>"}) {
    config.dashboard_url = bad;
    CHECK_THROWS_WITH(config.validate(), Catch::Contains("dashboard_url"));
  }
}

// Issue 23: a name the SDK interned in the ring must never be refused by the
// agent for room; lines have a budget of their own, and what it leaves must
// hold the ring's whole name table.
TEST_CASE("issue 23: the agent refuses a name budget that leaves the SDK less room than the ring's name table",
          "[config][issue23]") {
  AgentConfig config;
  CHECK_NOTHROW(config.validate());  // the defaults: 1 000 000 names, half for lines, 16 384 in the ring
  config.max_names = 20'000;
  config.max_line_names = 10'000;
  CHECK_THROWS_WITH(config.validate(), Catch::Contains("leaves 10000 for the SDK's names, fewer than ring_name_capacity (16384)"));
  config.max_line_names = 0;  // half: the same
  CHECK_THROWS_WITH(config.validate(), Catch::Contains("ring_name_capacity"));
  config.max_line_names = 3'000;
  CHECK_NOTHROW(config.validate());
}
