// Issue 8: the console and the etcd registry, against a real etcd started by
// the test on loopback. Everything is read as a user reads it: monitorctl's
// output and exit codes, and the judgers' query API.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "e2e/agent_process.hpp"
#include "e2e/judger_process.hpp"
#include "e2e/monitorctl_run.hpp"
#include "e2e/proxy_process.hpp"
#include "e2e/query_oracle.hpp"
#include "e2e/registry_address.hpp"
#include "e2e/steady_writer.hpp"
#include "support/child_process.hpp"
#include "support/etcd_server.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"
#include "wire/frame.hpp"
#include "wire/messages.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::EtcdServer;
using monitor::test::free_port;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::TempRing;
using monitor::test::wait_until;
using monitor::e2e::monitorctl;
using monitor::e2e::Run;

namespace {

boost::json::value json_of(const Run& run) {
  INFO(run.out << run.err);
  REQUIRE(run.rc == 0);
  return boost::json::parse(run.out);
}

// A part's state in `monitorctl status --output json`: live, gone, declared, or "" if not listed.
std::string part_state(const TempDir& dir, const std::string& registry, const std::string& name) {
  const Run run = monitorctl(dir, registry, {"status", "--output", "json"});
  if (run.rc != 0) return "";
  const boost::json::value rows = boost::json::parse(run.out);  // outlives the loop
  for (const auto& row : rows.as_array()) {
    if (row.at("name").as_string() == name) return std::string(row.at("state").as_string());
  }
  return "";
}

std::string owner_of(const TempDir& dir, const std::string& registry, const std::string& service) {
  const Run run = monitorctl(dir, registry, {"service", "show", service, "--output", "json"});
  if (run.rc != 0) return "";
  return std::string(boost::json::parse(run.out).at("judger").as_string());
}

}  // namespace

TEST_CASE("issue 8: monitorctl on etcd assigns stable ids and refuses bad input with a message, a non-zero exit and "
          "no change",
          "[e2e][issue8][console][failure]") {
  EtcdServer etcd;
  TempDir dir;
  const std::string reg = etcd.address();
  REQUIRE(monitorctl(dir, reg, {"judger", "add", "judger-1"}).rc == 0);
  const Run added = monitorctl(dir, reg, {"service", "add", "Shop.Api", "--judger", "judger-1"});
  INFO(added.out << added.err);
  REQUIRE(added.rc == 0);
  CHECK_THAT(added.out, Catch::Contains("id 1"));
  REQUIRE(monitorctl(dir, reg, {"attr", "add", "Shop.Api", "Orders.Placed", "Request.LatencyUs"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"service", "add", "Pay.Gateway", "--judger", "judger-1"}).rc == 0);
  // Removed ids are never handed out again.
  REQUIRE(monitorctl(dir, reg, {"service", "rm", "Pay.Gateway"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"attr", "rm", "Shop.Api", "Orders.Placed"}).rc == 0);
  CHECK_THAT(monitorctl(dir, reg, {"service", "add", "Pay.Wallet"}).out, Catch::Contains("id 3"));
  CHECK_THAT(monitorctl(dir, reg, {"attr", "add", "Shop.Api", "Orders.Refunded"}).out,
             Catch::Contains("Orders.Refunded=3"));
  const auto shown = json_of(monitorctl(dir, reg, {"service", "show", "Shop.Api", "--output", "json"}));
  CHECK(shown.at("id").as_int64() == 1);
  CHECK(shown.at("attrs").at("Request.LatencyUs").as_int64() == 2);
  CHECK(shown.at("judger").as_string() == "judger-1");

  const std::string before = monitorctl(dir, reg, {"service", "list", "--output", "json"}).out +
                             monitorctl(dir, reg, {"attr", "list", "Shop.Api", "--output", "json"}).out +
                             monitorctl(dir, reg, {"judger", "list", "--output", "json"}).out;
  struct Bad {
    std::vector<std::string> args;
    int rc;
    std::string says;
  };
  const std::vector<Bad> bad = {
      {{"service", "add", "shop.api"}, 2, "is not valid"},
      {{"service", "add", "Shop"}, 2, "is not valid"},
      {{"service", "add", "Shop.Api"}, 2, "already exists (id 1)"},
      {{"service", "add", "Shop.New", "--judger", "judger-9"}, 2, "no judger judger-9"},
      {{"service", "add"}, 2, "name is required"},
      {{"service", "show", "No.Such"}, 2, "no service No.Such"},
      {{"service", "rm", "No.Such"}, 2, "no service No.Such"},
      {{"service", "assign", "Shop.Api", "judger-9"}, 2, "no judger judger-9"},
      {{"service", "frobnicate"}, 2, "unknown verb"},
      {{"attr", "add", "Shop.Api", "Request.LatencyUs"}, 2, "already exists"},
      {{"attr", "add", "Shop.Api", "bad name"}, 2, "is not valid"},
      {{"attr", "add", "No.Such", "A.B"}, 2, "no service No.Such"},
      {{"attr", "rm", "Shop.Api", "Not.There"}, 2, "has no attr Not.There"},
      {{"judger", "add", "judger-1"}, 2, "already known"},
      {{"judger", "add", "bad/name"}, 2, "judger name"},
      {{"judger", "rm", "judger-1"}, 2, "still owns"},
      {{"user", "add", "bob"}, 2, "--new-password is required"},
      {{"user", "grant", "nobody", "shop"}, 2, "no user nobody"},
      {{"role", "add", "shop", "shop*"}, 2, "pattern"},
      {{"service", "list", "--output", "xml"}, 2, "--output must be table or json"},
      {{"service", "list", "--no-such-flag"}, 2, "no-such-flag"},
  };
  for (const auto& b : bad) {
    const Run run = monitorctl(dir, reg, b.args);
    INFO(b.args[0] << " " << (b.args.size() > 1 ? b.args[1] : "") << ": " << run.err);
    CHECK(run.rc == b.rc);
    CHECK_THAT(run.err, Catch::Contains(b.says));
  }
  const std::string after = monitorctl(dir, reg, {"service", "list", "--output", "json"}).out +
                            monitorctl(dir, reg, {"attr", "list", "Shop.Api", "--output", "json"}).out +
                            monitorctl(dir, reg, {"judger", "list", "--output", "json"}).out;
  CHECK(after == before);

  // A registry nobody answers at: said so, exit 3, promptly.
  const Run unreachable = monitorctl(dir, "etcd:127.0.0.1:" + std::to_string(free_port()), {"service", "list"});
  CHECK(unreachable.rc == 3);
  CHECK_THAT(unreachable.err, Catch::Contains("cannot be reached"));
  const Run no_dir = monitorctl(dir, "file:" + dir.file("nowhere"), {"service", "list"});
  CHECK(no_dir.rc == 2);
  CHECK_THAT(no_dir.err, Catch::Contains("no such directory"));
  // --help on every subcommand.
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"service", "add"}, {"service", "list"}, {"service", "show"}, {"service", "rm"}, {"service", "assign"},
           {"attr", "add"}, {"attr", "list"}, {"attr", "rm"}, {"judger", "list"}, {"judger", "add"}, {"judger", "rm"},
           {"role", "add"}, {"role", "list"}, {"role", "rm"}, {"user", "add"}, {"user", "list"}, {"user", "rm"},
           {"user", "grant"}, {"user", "passwd"}, {"status"}, {"placement"}, {"query"}, {"auth", "enable"}}) {
    auto args = cmd;
    args.push_back("--help");
    const Run help = monitorctl(dir, "", args);
    INFO(cmd[0]);
    CHECK(help.rc == 0);
    CHECK_THAT(help.out, Catch::Contains("Usage:") && Catch::Contains("--registry"));
  }
}

TEST_CASE("issue 8: two monitorctl processes adding services at once on etcd never hand out one id twice",
          "[e2e][issue8][console]") {
  EtcdServer etcd;
  TempDir dir;
  constexpr int kEach = 12;
  std::vector<std::thread> consoles;
  std::vector<int> failures(2, 0);
  for (int c = 0; c < 2; ++c) {
    consoles.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        const std::string name = (c == 0 ? "Left.S" : "Right.S") + std::to_string(i);
        if (monitorctl(dir, etcd.address(), {"service", "add", name}).rc != 0) ++failures[c];
      }
    });
  }
  for (auto& t : consoles) t.join();
  CHECK(failures == std::vector<int>{0, 0});
  const auto list = json_of(monitorctl(dir, etcd.address(), {"service", "list", "--output", "json"}));
  std::set<std::string> ids;
  for (const auto& row : list.as_array()) ids.insert(std::string(row.at("id").as_string()));
  CHECK(list.as_array().size() == 2 * kEach);
  CHECK(ids.size() == 2 * kEach);  // no id twice
  CHECK(*ids.begin() != "0");
}

TEST_CASE("issue 8: on etcd a user whose role does not own a service cannot change it: etcd refuses, plainly",
          "[e2e][issue8][console][failure]") {
  EtcdServer etcd;
  TempDir dir;
  const std::string reg = etcd.address();
  REQUIRE(monitorctl(dir, reg, {"service", "add", "Shop.Api"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"service", "add", "Pay.Gateway"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"role", "add", "shop", "Shop.*"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"user", "add", "alice", "--new-password", "alice-pw", "--role", "shop"}).rc == 0);
  const Run enabled = monitorctl(dir, reg, {"auth", "enable", "--root-password", "root-pw"});
  INFO(enabled.out << enabled.err);
  REQUIRE(enabled.rc == 0);
  const std::vector<std::string> alice = {"--user", "alice", "--password", "alice-pw"};
  auto as_alice = [&](std::vector<std::string> args) {
    args.insert(args.end(), alice.begin(), alice.end());
    return monitorctl(dir, reg, args);
  };
  // Within her role.
  const Run own = as_alice({"service", "add", "Shop.Cart"});
  INFO(own.err);
  CHECK(own.rc == 0);
  CHECK(as_alice({"attr", "add", "Shop.Api", "Orders.Placed"}).rc == 0);
  // Outside it: etcd itself refuses.
  for (const auto& args : std::vector<std::vector<std::string>>{{"attr", "add", "Pay.Gateway", "Orders.Paid"},
                                                                {"service", "add", "Pay.Wallet"},
                                                                {"service", "rm", "Pay.Gateway"}}) {
    const Run refused = as_alice(args);
    INFO(args[0] << " " << args[1] << ": " << refused.err);
    CHECK(refused.rc == 4);
    CHECK_THAT(refused.err, Catch::Contains("refused by etcd") && Catch::Contains("alice") &&
                                Catch::Contains("permission denied"));
  }
  const Run wrong = monitorctl(dir, reg, {"service", "list", "--user", "alice", "--password", "guess"});
  CHECK(wrong.rc == 4);
  CHECK_THAT(wrong.err, Catch::Contains("wrong user name or password"));
  // Nothing of the refused changes happened (read as root).
  const auto list = json_of(monitorctl(dir, reg, {"service", "list", "--output", "json", "--user", "root",
                                                  "--password", "root-pw"}));
  std::set<std::string> names;
  for (const auto& row : list.as_array()) names.insert(std::string(row.at("service").as_string()));
  CHECK(names == std::set<std::string>{"Pay.Gateway", "Shop.Api", "Shop.Cart"});
  const auto pay = json_of(monitorctl(dir, reg, {"service", "show", "Pay.Gateway", "--output", "json", "--user",
                                                 "root", "--password", "root-pw"}));
  CHECK(pay.at("attrs").as_object().empty());
}

TEST_CASE("issue 8: on etcd a service moved by hand is routed to its new judger within seconds, and the services "
          "of a killed judger move to the live one once its lease expires",
          "[e2e][issue8][placement]") {
  EtcdServer etcd;
  TempDir dir;
  monitor::e2e::UseRegistry use(etcd.address());
  const std::string reg = etcd.address();
  const int q1 = free_port(), q2 = free_port();
  auto judger1 = monitor::e2e::spawn_judger(dir, free_port(), dir.file("judger-1.log"), q1, {"--name", "judger-1"});
  // Its own data directory, so two judgers never share a store.
  TempDir dir2;
  std::optional<ChildProcess> judger2;
  {
    monitor::e2e::UseRegistry again(reg);
    judger2.emplace(monitor::e2e::spawn_judger(dir2, free_port(), dir2.file("judger-2.log"), q2, {"--name", "judger-2"}));
  }
  monitor::e2e::registry_override() = reg;  // `again` cleared it
  REQUIRE(wait_until([&] { return monitorctl(dir, reg, {"judger", "list"}).out.find("judger-2  live") != std::string::npos; },
                     15s));
  REQUIRE(monitorctl(dir, reg, {"service", "add", "E2e.Test", "--judger", "judger-1"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"attr", "add", "E2e.Test", "Steady.Count"}).rc == 0);
  auto bonnie = monitor::e2e::spawn_proxy(dir, "bonnie", "bonnie-1", free_port(), "central");
  TempRing ring("issue8-move");
  auto agent = ChildProcess::spawn(monitor::e2e::agent_argv(dir, ring, ""), "", dir.file("agent.log"));
  auto writer = monitor::e2e::spawn_steady(ring.name(), dir.file("writer.out"), 1, 200, 60);
  auto records = [](int port) { return monitor::e2e::judger_health(port, "records"); };
  REQUIRE(wait_until([&] { return records(q1) > 0; }, 20s));

  // By hand: Bonnie follows the assignment through its watch.
  REQUIRE(monitorctl(dir, reg, {"service", "assign", "E2e.Test", "judger-2"}).rc == 0);
  {
    INFO("bonnie:\n" << read_file(dir.file("bonnie-1.log")));
    CHECK(wait_until([&] { return records(q2) > 0; }, 10s));
  }
  // judger-2 dies: its lease expires (10 s) and judger-1 takes the service.
  judger2->signal(SIGKILL);
  REQUIRE(judger2->wait_for(5s) == 128 + SIGKILL);
  {
    // How soon (lease + about 1 s) is bench/registry_bench.py's figure, not
    // a timed assertion here: under a loaded CI run 12 s became 12.06 s.
    INFO("judger-1:\n" << read_file(dir.file("judger-1.log")));
    REQUIRE(wait_until([&] { return owner_of(dir, reg, "E2e.Test") == "judger-1"; }, 30s));
  }
  const int64_t before = records(q1);
  CHECK(wait_until([&] { return records(q1) > before; }, 10s));  // data flows again, to judger-1
  INFO(monitorctl(dir, reg, {"status"}).out);
  CHECK(part_state(dir, reg, "judger-2") == "gone");
  CHECK(part_state(dir, reg, "judger-1") == "live");
  writer.signal(SIGTERM);
  writer.wait_for(10s);
  monitor::e2e::stop(agent, "agent");
  monitor::e2e::stop(bonnie, "bonnie");
  monitor::e2e::stop(judger1, "judger-1");
}

TEST_CASE("issue 8: on etcd, etcd stopped for 30 s while data flows loses nothing, and every part registers again",
          "[e2e][issue8][failure][slow]") {
  EtcdServer etcd;
  TempDir dir;
  monitor::e2e::UseRegistry use(etcd.address());
  const std::string reg = etcd.address();
  const int query_port = free_port();
  auto judger = monitor::e2e::spawn_judger(dir, free_port(), dir.file("judger.log"), query_port);
  REQUIRE(wait_until([&] { return monitorctl(dir, reg, {"judger", "list"}).out.find("live") != std::string::npos; }, 15s));
  REQUIRE(monitorctl(dir, reg, {"service", "add", "E2e.Test"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"attr", "add", "E2e.Test", "Steady.Count"}).rc == 0);
  auto bonnie = monitor::e2e::spawn_proxy(dir, "bonnie", "bonnie-1", free_port(), "central");
  TempRing ring("issue8-outage");
  auto agent = ChildProcess::spawn(monitor::e2e::agent_argv(dir, ring, ""), "", dir.file("agent.log"));
  const int64_t start = monitor::e2e::unix_now_s();
  auto writer = monitor::e2e::spawn_steady(ring.name(), dir.file("writer.out"), 1, 500, 45);
  REQUIRE(wait_until([&] { return monitor::e2e::judger_health(query_port, "records") > 0; }, 20s));
  etcd.kill();
  // The outage is the scenario: 30 s of data flowing with no registry.
  std::this_thread::sleep_for(30s);
  const int64_t during = monitor::e2e::judger_health(query_port, "records");
  etcd.start();
  REQUIRE(writer.wait_for(30s) == 0);
  const int64_t last = monitor::e2e::unix_now_s();
  // Every part is live again (their leases expired while etcd was down).
  REQUIRE(wait_until([&] { return part_state(dir, reg, "judger-1") == "live" && part_state(dir, reg, "bonnie-1") == "live"; },
                     20s));
  const double expected = static_cast<double>(monitor::e2e::ok_count(dir.file("writer.out")));
  const double got = monitor::e2e::query_sum_when_final(dir, "E2e.Test", "Steady.Count", "SUM", "total", start, last,
                                                        expected);
  INFO("judger:\n" << read_file(dir.file("judger.log")) << "\nbonnie:\n" << read_file(dir.file("bonnie-1.log"))
                   << "\nagent:\n" << read_file(dir.file("agent.log")));
  CHECK(during > 0);
  CHECK(got == expected);
  CHECK_THAT(read_file(dir.file("judger.log")), Catch::Contains("registered again"));
  CHECK_THAT(read_file(dir.file("bonnie-1.log")), Catch::Contains("routing on the last known view"));
  monitor::e2e::stop(agent, "agent");
  monitor::e2e::stop(bonnie, "bonnie");
  monitor::e2e::stop(judger, "judger");
}

TEST_CASE("issue 8: a batch replayed whole after a service moved stores exactly the services its judger did not "
          "have",
          "[e2e][issue8][judger]") {
  // Before the move Bonnie sent this judger the A.Svc part of batch (5, 1);
  // B.Svc went elsewhere. After B.Svc moved here, the batch is replayed whole
  // (its sender never had it acknowledged): A.Svc's part is a duplicate,
  // B.Svc's is new and must be stored.
  TempDir dir;
  const int port = free_port(), query_port = free_port();
  auto judger = monitor::e2e::spawn_judger(dir, port, dir.file("judger.log"), query_port);
  const int64_t now_s = monitor::e2e::unix_now_s();
  const int64_t minute = now_s - now_s % 60 - 60;
  auto record = [&](uint32_t name, int64_t value) {
    monitor::wire::BatchRecord r;
    r.second = minute + 7;
    r.name_id = name;
    r.server_id = 1;
    r.ops = 1;  // SUM
    r.stats.add(value, r.second * 1'000'000'000);
    return r;
  };
  {
    monitor::test::WireClient client(port, 10s);
    std::string out;
    monitor::wire::encode(out, monitor::wire::Hello{5, monitor::wire::Role::kBonnie, "test-bonnie"});
    monitor::wire::encode(out, std::vector<monitor::wire::DictEntry>{{1, "A.Svc", "Orders.Placed"},
                                                                     {2, "B.Svc", "Orders.Placed"}});
    REQUIRE(client.send(out));
    auto hello_ack = client.read_frame(10s);
    REQUIRE((hello_ack && hello_ack->type == monitor::wire::FrameType::kHelloAck));
    const std::vector<monitor::wire::Batch> batches = {{5, 1, {record(1, 10)}},
                                                       {5, 1, {record(1, 10), record(2, 20)}}};
    for (const auto& batch : batches) {
      std::string frame;
      REQUIRE(monitor::wire::encode(frame, batch) == monitor::wire::WireError::kOk);
      REQUIRE(client.send(frame));
      auto ack = client.read_frame(10s);
      REQUIRE((ack && ack->type == monitor::wire::FrameType::kAck));
    }
  }
  REQUIRE(wait_until([&] { return monitor::e2e::judger_health(query_port, "minutes_stored") >= 1; }, 15s));
  auto sum = [&](const std::string& service) {
    const auto reply = monitor::test::http_get(
        query_port, "/api/series?service=" + service + "&attr=Orders.Placed&op=SUM&server=total&from=" +
                        std::to_string(minute) + "&to=" + std::to_string(minute + 60));
    INFO(reply.body);
    double total = 0;
    const boost::json::value body = boost::json::parse(reply.body);  // outlives the loop
    for (const auto& p : body.at("points").as_array()) {
      total += p.as_array().at(1).to_number<double>();
    }
    return total;
  };
  CHECK(sum("A.Svc") == 10);  // once, not twice
  CHECK(sum("B.Svc") == 20);  // stored, not dropped as a duplicate of A.Svc's part
  CHECK(monitor::e2e::judger_health(query_port, "parts_duplicate") == 1);
  monitor::e2e::stop(judger, "judger");
}

TEST_CASE("issue 8: on etcd a service moved by hand twice, then off a killed judger by placement, while data "
          "flows, reads exactly through monitorctl query, its minutes merged across both judgers",
          "[e2e][issue8][placement][slow]") {
  EtcdServer etcd;
  TempDir dir, dir2;
  const std::string reg = etcd.address();
  monitor::e2e::UseRegistry use(reg);
  const int q1 = free_port(), q2 = free_port();
  const int port1 = free_port();
  std::optional<ChildProcess> judger1;
  judger1.emplace(monitor::e2e::spawn_judger(dir, port1, dir.file("judger-1.log"), q1, {"--name", "judger-1"}));
  auto judger2 = monitor::e2e::spawn_judger(dir2, free_port(), dir2.file("judger-2.log"), q2, {"--name", "judger-2"});
  REQUIRE(wait_until([&] { return part_state(dir, reg, "judger-1") == "live" && part_state(dir, reg, "judger-2") == "live"; },
                     15s));
  REQUIRE(monitorctl(dir, reg, {"service", "add", "E2e.Test", "--judger", "judger-1"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"attr", "add", "E2e.Test", "Steady.Count"}).rc == 0);
  auto bonnie = monitor::e2e::spawn_proxy(dir, "bonnie", "bonnie-1", free_port(), "central");
  TempRing ring("issue8-split");
  auto agent = ChildProcess::spawn(monitor::e2e::agent_argv(dir, ring, ""), "", dir.file("agent.log"));
  const int64_t start = monitor::e2e::unix_now_s();
  auto writer = monitor::e2e::spawn_steady(ring.name(), dir.file("writer.out"), 1, 1000, 45);
  auto records = [](int port) { return monitor::e2e::judger_health(port, "records"); };
  REQUIRE(wait_until([&] { return records(q1) > 0; }, 20s));
  // Moved while reports flow: minutes end up split across the judgers.
  REQUIRE(monitorctl(dir, reg, {"service", "assign", "E2e.Test", "judger-2"}).rc == 0);
  REQUIRE(wait_until([&] { return records(q2) > 0; }, 15s));
  const int64_t on_one = records(q1);
  REQUIRE(monitorctl(dir, reg, {"service", "assign", "E2e.Test", "judger-1"}).rc == 0);
  REQUIRE(wait_until([&] { return records(q1) > on_one; }, 15s));
  // judger-1 is killed: placement gives the service back to judger-2 within
  // the lease time; what Bonnie could not deliver to judger-1 waits in its
  // spool, and judger-1 finishes its minutes when it comes back.
  judger1->signal(SIGKILL);
  REQUIRE(judger1->wait_for(5s) == 128 + SIGKILL);
  const int64_t on_two = records(q2);
  REQUIRE(wait_until([&] { return owner_of(dir, reg, "E2e.Test") == "judger-2"; }, 15s));
  REQUIRE(wait_until([&] { return records(q2) > on_two; }, 15s));
  judger1.emplace(monitor::e2e::spawn_judger(dir, port1, dir.file("judger-1b.log"), q1, {"--name", "judger-1"}));
  REQUIRE(writer.wait_for(60s) == 0);
  const int64_t last = monitor::e2e::unix_now_s();
  const double expected = static_cast<double>(monitor::e2e::ok_count(dir.file("writer.out")));
  INFO("bonnie:\n" << read_file(dir.file("bonnie-1.log")) << "\nquery:\n" << read_file(dir.file("query.err")));
  CHECK(monitor::e2e::query_sum_when_final(dir, "E2e.Test", "Steady.Count", "SUM", "total", start, last, expected) ==
        expected);
  CHECK(monitor::e2e::query_sum_when_final(dir, "E2e.Test", "Steady.Count", "SUM", "1", start, last, expected) ==
        expected);
  // Each judger alone holds only part of it.
  auto alone = [&](int port) {
    const auto reply = monitor::test::http_get(
        port, "/api/series?service=E2e.Test&attr=Steady.Count&op=SUM&server=total&from=" +
                  std::to_string(start - start % 60) + "&to=" + std::to_string(last - last % 60 + 60));
    const boost::json::value body = boost::json::parse(reply.body);
    double total = 0;
    for (const auto& p : body.at("points").as_array()) total += p.as_array().at(1).to_number<double>();
    return total;
  };
  const double one = alone(q1), two = alone(q2);
  CHECK(one > 0);
  CHECK(two > 0);
  CHECK(one + two == expected);
  // `service show` names the owner's last stored minute.
  const auto shown = json_of(monitorctl(dir, reg, {"service", "show", "E2e.Test", "--output", "json"}));
  CHECK(shown.at("judger").as_string() == "judger-2");
  CHECK(shown.at("last_minute").as_int64() >= last - last % 60 - 60);
  monitor::e2e::stop(agent, "agent");
  monitor::e2e::stop(bonnie, "bonnie");
  monitor::e2e::stop(*judger1, "judger-1");
  monitor::e2e::stop(judger2, "judger-2");
}

TEST_CASE("issue 8: on etcd, what Bonnie spooled for a judger that died goes to the service's new judger once the "
          "dead one is removed: every report once",
          "[e2e][issue8][placement][slow]") {
  EtcdServer etcd;
  TempDir dir, dir2;
  const std::string reg = etcd.address();
  monitor::e2e::UseRegistry use(reg);
  const int q2 = free_port();
  auto judger1 = monitor::e2e::spawn_judger(dir, free_port(), dir.file("judger-1.log"), free_port(), {"--name", "judger-1"});
  auto judger2 = monitor::e2e::spawn_judger(dir2, free_port(), dir2.file("judger-2.log"), q2, {"--name", "judger-2"});
  REQUIRE(wait_until([&] { return part_state(dir, reg, "judger-1") == "live" && part_state(dir, reg, "judger-2") == "live"; },
                     15s));
  REQUIRE(monitorctl(dir, reg, {"service", "add", "E2e.Test", "--judger", "judger-1"}).rc == 0);
  REQUIRE(monitorctl(dir, reg, {"attr", "add", "E2e.Test", "Steady.Count"}).rc == 0);
  // judger-1 dies before any report: until placement moves the service,
  // Bonnie keeps the service's reports in judger-1's spool.
  judger1.signal(SIGKILL);
  REQUIRE(judger1.wait_for(5s) == 128 + SIGKILL);
  auto bonnie = monitor::e2e::spawn_proxy(dir, "bonnie", "bonnie-1", free_port(), "central");
  TempRing ring("issue8-handover");
  auto agent = ChildProcess::spawn(monitor::e2e::agent_argv(dir, ring, ""), "", dir.file("agent.log"));
  const int64_t start = monitor::e2e::unix_now_s();
  auto writer = monitor::e2e::spawn_steady(ring.name(), dir.file("writer.out"), 1, 1000, 25);
  REQUIRE(wait_until([&] { return owner_of(dir, reg, "E2e.Test") == "judger-2"; }, 20s));
  REQUIRE(wait_until([&] { return monitor::e2e::judger_health(q2, "records") > 0; }, 15s));
  // The operator says judger-1 is gone for good: Bonnie hands its spool over.
  const Run removed = monitorctl(dir, reg, {"judger", "rm", "judger-1"});
  INFO(removed.err);
  REQUIRE(removed.rc == 0);
  CHECK(wait_until([&] { return read_file(dir.file("bonnie-1.log")).find("spool handed over") != std::string::npos; },
                   15s));
  REQUIRE(writer.wait_for(40s) == 0);
  const int64_t last = monitor::e2e::unix_now_s();
  const double expected = static_cast<double>(monitor::e2e::ok_count(dir.file("writer.out")));
  INFO("bonnie:\n" << read_file(dir.file("bonnie-1.log")) << "\nquery:\n" << read_file(dir.file("query.err")));
  CHECK(monitor::e2e::query_sum_when_final(dir, "E2e.Test", "Steady.Count", "SUM", "total", start, last, expected) ==
        expected);
  monitor::e2e::stop(agent, "agent");
  monitor::e2e::stop(bonnie, "bonnie");
  monitor::e2e::stop(judger2, "judger-2");
}

// Issue 23: etcd holds users, roles, tokens' hashes and where every report
// goes: over the network, only over TLS with certificates on both ends.
TEST_CASE("issue 23: the registry over TLS: etcd and the parts verify each other's certificates, and without the "
          "deployment's nothing reads it",
          "[e2e][issue23][registry][tls]") {
  TempDir dir;
  const auto pki = [&](const std::string& args) {
    const std::string command = std::string(MONITOR_SOURCE_DIR) + "/scripts/pki.sh --days 2 " + args + " >/dev/null";
    REQUIRE(std::system(command.c_str()) == 0);
  };
  const std::string ca = dir.file("pki"), stranger = dir.file("stranger");
  pki("init " + ca);
  pki("init " + stranger);
  pki("issue " + ca + " etcd etcd-1 --ip 127.0.0.1");
  pki("issue " + ca + " judger judger-1");
  pki("issue " + stranger + " judger judger-1");
  EtcdServer etcd(monitor::test::EtcdTls{ca + "/ca.pem", ca + "/etcd-etcd-1.pem", ca + "/etcd-etcd-1.key",
                                         ca + "/judger-judger-1.pem", ca + "/judger-judger-1.key"});
  const auto tls_env = [](const std::string& trust, const std::string& files) {
    return std::vector<std::string>{"MONITOR_REGISTRY_CA=" + trust + "/ca.pem",
                                    "MONITOR_REGISTRY_CERT=" + files + "/judger-judger-1.pem",
                                    "MONITOR_REGISTRY_KEY=" + files + "/judger-judger-1.key"};
  };
  const auto env = tls_env(ca, ca);

  const Run added = monitorctl(dir, etcd.address(), {"service", "add", "Shop.Api"}, env);
  INFO(added.out << added.err);
  REQUIRE(added.rc == 0);
  // Plain HTTP to etcd's TLS port, a client certificate of another CA, and
  // an etcd whose certificate is not of the CA this part trusts: refused.
  CHECK(monitorctl(dir, etcd.address(), {"service", "list"}).rc != 0);
  CHECK(monitorctl(dir, etcd.address(), {"service", "list"}, tls_env(ca, stranger)).rc != 0);
  CHECK(monitorctl(dir, etcd.address(), {"service", "list"}, tls_env(stranger, ca)).rc != 0);

  // A daemon takes the same three variables (deploy/systemd's registry.env).
  std::vector<std::string> judger_env = env;
  judger_env.push_back(std::string(MONITOR_RING_ENV) + "=" + monitor::e2e::private_ring(dir));
  auto judger = ChildProcess::spawn({MONITOR_JUDGER_PATH, "--listen", "127.0.0.1:" + std::to_string(free_port()),
                                     "--query-listen", "127.0.0.1:" + std::to_string(free_port()), "--data-dir",
                                     dir.file("judger"), "--registry", etcd.address()},
                                    "", dir.file("judger.log"), judger_env);
  REQUIRE(wait_until([&] {
    const Run list = monitorctl(dir, etcd.address(), {"judger", "list", "--output", "json"}, env);
    return list.rc == 0 && list.out.find("\"live\"") != std::string::npos;
  }, 20s));
  // Automatic placement, through the registry, gives it the judger.
  CHECK(wait_until([&] {
    return monitorctl(dir, etcd.address(), {"service", "show", "Shop.Api", "--output", "json"}, env)
               .out.find("\"judger\":\"judger-1\"") != std::string::npos;
  }, 45s));
  judger.signal(SIGTERM);
  CHECK(judger.wait_for(20s) == 0);
}
