// Issue 20: the judger and the console under ordinary operations. Real
// judgers, a real etcd and real monitorctl processes on loopback, read as a
// user reads them: monitorctl's output and exit codes.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "e2e/agent_process.hpp"
#include "e2e/judger_process.hpp"
#include "e2e/monitorctl_run.hpp"
#include "e2e/registry_address.hpp"
#include "support/child_process.hpp"
#include "support/etcd_server.hpp"
#include "support/temp_names.hpp"

using namespace std::chrono_literals;
using monitor::e2e::monitorctl;
using monitor::e2e::Run;
using monitor::test::ChildProcess;
using monitor::test::EtcdServer;
using monitor::test::free_port;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::wait_until;

namespace {

std::string owner_of(const TempDir& dir, const std::string& registry, const std::string& service) {
  const Run run = monitorctl(dir, registry, {"service", "show", service, "--output", "json"});
  if (run.rc != 0) return "";
  return std::string(boost::json::parse(run.out).at("judger").as_string());
}

// Two monitorctl processes started together; both their runs.
std::pair<Run, Run> race(const TempDir& dir, const std::string& registry, const std::string& tag,
                         std::vector<std::string> a, std::vector<std::string> b) {
  std::vector<ChildProcess> running;
  for (auto* args : {&a, &b}) {
    args->insert(args->begin(), MONITORCTL_PATH);
    args->insert(args->end(), {"--registry", registry});
  }
  const std::string out_a = dir.file(tag + "-a.out"), err_a = dir.file(tag + "-a.err");
  const std::string out_b = dir.file(tag + "-b.out"), err_b = dir.file(tag + "-b.err");
  running.push_back(ChildProcess::spawn(a, out_a, err_a));
  running.push_back(ChildProcess::spawn(b, out_b, err_b));
  const int rc_a = running[0].wait_for(30s).value_or(-1), rc_b = running[1].wait_for(30s).value_or(-1);
  return {Run{rc_a, read_file(out_a), read_file(err_a)}, Run{rc_b, read_file(out_b), read_file(err_b)}};
}

std::vector<std::string> roles_of(const TempDir& dir, const std::string& registry, const std::string& user) {
  const Run run = monitorctl(dir, registry, {"user", "list", "--output", "json"});
  REQUIRE(run.rc == 0);
  const boost::json::value rows = boost::json::parse(run.out);
  for (const auto& row : rows.as_array()) {
    if (row.at("user").as_string() != user) continue;
    std::vector<std::string> roles;
    const std::string text(row.at("roles").as_string());
    for (size_t at = 0; at < text.size();) {
      const size_t comma = std::min(text.find(',', at), text.size());
      roles.push_back(text.substr(at, comma - at));
      at = comma + 1;
    }
    return roles;
  }
  return {};
}

// Two consoles granting two roles to one user at once, `pairs` times:
// every grant they both report done is there afterwards.
void grants_race(const TempDir& dir, const std::string& reg, int pairs) {
  REQUIRE(monitorctl(dir, reg, {"role", "add", "reader", "Shop.*"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"role", "add", "writer", "Shop.Api"}).rc == 0);
  int lost = 0;
  for (int i = 0; i < pairs; ++i) {
    const std::string user = "user-" + std::to_string(i);
    REQUIRE(monitorctl(dir, reg, {"user", "add", user, "--new-password", "pw-" + user}).rc == 0);
    const auto [a, b] = race(dir, reg, "grant-" + std::to_string(i), {"user", "grant", user, "reader"},
                             {"user", "grant", user, "writer"});
    INFO(a.err << b.err);
    REQUIRE(a.rc == 0);
    REQUIRE(b.rc == 0);
    const auto roles = roles_of(dir, reg, user);
    lost += roles.size() == 2 ? 0 : 1;
  }
  CHECK(lost == 0);
  // Two consoles adding one user at once: one wins, the other is told.
  const auto [a, b] = race(dir, reg, "add", {"user", "add", "carol", "--new-password", "one"},
                           {"user", "add", "carol", "--new-password", "two"});
  INFO(a.err << b.err);
  CHECK(((a.rc == 0) + (b.rc == 0)) == 1);
  CHECK_THAT(a.err + b.err, Catch::Contains("user carol already exists"));
}

}  // namespace

TEST_CASE("issue 20: two consoles granting roles at once lose neither, on file: and on etcd",
          "[e2e][issue20][console]") {
  SECTION("file:") {
    TempDir dir;
    std::filesystem::create_directories(dir.file("registry"));
    grants_race(dir, "file:" + dir.file("registry"), 20);
  }
  SECTION("etcd") {
    EtcdServer etcd;
    TempDir dir;
    grants_race(dir, etcd.address(), 20);
  }
}

// Regression: the leader was the smallest live judger name, placing or not;
// with a --no-placement judger first, nobody moved a dead judger's services.
TEST_CASE("issue 20: a judger started with --no-placement never leads: a dead judger's services still move",
          "[e2e][issue20][placement]") {
  EtcdServer etcd;
  const std::string reg = etcd.address();
  TempDir dir_a, dir_b, dir_c;
  monitor::e2e::registry_override() = reg;
  auto judger_a = monitor::e2e::spawn_judger(dir_a, free_port(), dir_a.file("judger-a.log"), 0,
                                             {"--name", "judger-a", "--no-placement"});
  auto judger_b = monitor::e2e::spawn_judger(dir_b, free_port(), dir_b.file("judger-b.log"), 0, {"--name", "judger-b"});
  std::optional<ChildProcess> judger_c;
  judger_c.emplace(monitor::e2e::spawn_judger(dir_c, free_port(), dir_c.file("judger-c.log"), 0, {"--name", "judger-c"}));
  monitor::e2e::registry_override().clear();
  auto live = [&](const std::string& name) {
    return monitorctl(dir_a, reg, {"judger", "list"}).out.find(name + "  live") != std::string::npos;
  };
  REQUIRE(wait_until([&] { return live("judger-a") && live("judger-b") && live("judger-c"); }, 15s));
  REQUIRE(monitorctl(dir_a, reg, {"service", "add", "E2e.Test", "--judger", "judger-c"}).rc == 0);
  REQUIRE(owner_of(dir_a, reg, "E2e.Test") == "judger-c");

  judger_c->signal(SIGKILL);
  REQUIRE(judger_c->wait_for(5s) == 128 + SIGKILL);
  {
    INFO("judger-b:\n" << read_file(dir_b.file("judger-b.log")));
    // Lease (10 s) and the placer's start-up grace, with room for a loaded run.
    REQUIRE(wait_until([&] { return owner_of(dir_a, reg, "E2e.Test") != "judger-c"; }, 40s));
  }
  const std::string owner = owner_of(dir_a, reg, "E2e.Test");
  CHECK((owner == "judger-a" || owner == "judger-b"));
  CHECK_THAT(read_file(dir_b.file("judger-b.log")), Catch::Contains("placement: service E2e.Test"));
  monitor::e2e::stop(judger_b, "judger-b");
  monitor::e2e::stop(judger_a, "judger-a");
}

// Regression: a silence of a rule name nobody defined (a typo) was stored and
// matched nothing, while its author believed the alarm silenced.
TEST_CASE("issue 20: silence add --rule refuses a rule that does not exist, and keeps nothing",
          "[e2e][issue20][console]") {
  TempDir dir;
  const std::string reg = "file:" + dir.file("registry");
  std::filesystem::create_directories(dir.file("registry"));
  REQUIRE(monitorctl(dir, reg, {"service", "add", "Silence.Test"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"attr", "add", "Silence.Test", "Orders.Placed"}).rc == 0);
  const std::string rules = dir.file("silence.rules");
  std::ofstream(rules) << "rule Silence.Test.High\n  service Silence.Test\n  attr Orders.Placed\n  op SUM\n"
                          "  per total\n  when value > 1000\n";
  REQUIRE(monitorctl(dir, reg, {"rule", "add", rules}).rc == 0);

  const Run typo = monitorctl(dir, reg, {"silence", "add", "--rule", "Silence.Test.Hgih", "--end", "+1h"});
  CHECK(typo.rc == 2);
  CHECK_THAT(typo.err, Catch::Contains("no rule Silence.Test.Hgih"));
  const Run known = monitorctl(dir, reg, {"silence", "add", "--rule", "Silence.Test.High", "--end", "+1h"});
  INFO(known.out << known.err);
  CHECK(known.rc == 0);
  const Run listed = monitorctl(dir, reg, {"silence", "list", "--output", "json"});
  REQUIRE(listed.rc == 0);
  const auto rows = boost::json::parse(listed.out).as_array();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].at("rule").as_string() == "Silence.Test.High");
}
