// End-to-end through the proxies, every part a real process on loopback:
// writer processes -> monitor-agent -> monitor-proxy --role clyde ->
// monitor-proxy --role bonnie -> monitor-judger, with the registry in a temp
// directory. Checks exactness, a Bonnie killed under a Clyde, an agent killed
// with batches in its spool, validation at Bonnie and corrupt frames.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "e2e/exactness.hpp"
#include "e2e/judger_process.hpp"
#include "e2e/proxy_process.hpp"
#include "e2e/query_oracle.hpp"
#include "e2e/workload.hpp"
#include "monitor/monitor.h"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"
#include "wire/messages.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::free_port;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::TempRing;
using monitor::test::wait_until;
using monitor::test::WireClient;
using namespace monitor::e2e;
namespace wire = monitor::wire;

namespace {

constexpr int kPerThread = 3000;
const std::vector<std::string> kAttrs = {"Sdk.Handle", "Sdk.Names", "Socket.Native", "Socket.Statsd", "Seq.Order"};

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string address(int port) { return "127.0.0.1:" + std::to_string(port); }

void write_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fputs(text.c_str(), f);
  std::fclose(f);
}

// An agent of data centre `dc` that finds its proxy in the registry.
ChildProcess spawn_agent(const TempDir& dir, const TempRing& ring, const std::string& dc, const std::string& log) {
  const std::string socket = dir.file("agent.sock");
  auto agent = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", socket, "--output",
                                    "/dev/null", "--registry", "file:" + dir.file("registry"), "--dc", dc,
                                    "--spool-dir", dir.file("agent-spool"), "--no-self-metrics"},
                                   "", dir.file(log));
  struct stat st {};
  REQUIRE(wait_until([&] { return stat(socket.c_str(), &st) == 0; }, 10s));
  return agent;
}

void run_writer(const TempDir& dir, const TempRing& ring, int p) {
  auto writer = ChildProcess::spawn(
      {MONITOR_E2E_WRITER_PATH, "workload", std::to_string(p), dir.file("agent.sock"), std::to_string(kPerThread)}, "",
      "", {std::string(MONITOR_RING_ENV) + "=" + ring.name()});
  REQUIRE(writer.wait_for(60s) == 0);
}

void stop(ChildProcess& process, const std::string& what) {
  INFO(what);
  process.signal(SIGTERM);
  REQUIRE(process.wait_for(20s) == 0);
}

std::string hello_and_names(uint64_t sender, const std::vector<wire::DictEntry>& names) {
  std::string out;
  wire::encode(out, wire::Hello{sender, wire::Role::kAgent, "test-agent"});
  wire::encode(out, names);
  return out;
}

wire::BatchRecord sum_record(uint32_t name_id, int64_t second, int64_t value) {
  wire::BatchRecord r;
  r.second = second;
  r.name_id = name_id;
  r.server_id = 1;
  r.ops = 1;
  r.stats.add(value, second * 1'000'000'000);
  return r;
}

// Every report of the writer processes is served by the judger's query API
// exactly once, waiting (bounded) until every minute is final and every
// spool has been replayed.
void check_served_exactly_once(int query_port, const std::vector<int>& processes, int64_t start) {
  check_served_exactly(query_port, expected_workload(processes, kPerThread), start, now_s());
}

// True once the judger on `query_port` has stored a batch: reports are flowing.
bool judger_storing(int query_port) { return judger_health(query_port, "batches_stored") > 0; }

// True once the proxy closed the connection (frames it sent first, such as
// the HELLO_ACK to a good HELLO, are read and ignored).
bool closed_by_peer(WireClient& client) {
  while (client.read_frame(5s)) {
  }
  return client.peer_closed();
}

}  // namespace

TEST_CASE("agent -> Clyde -> Bonnie -> judger: every op's minute per server and in total equals what was sent",
          "[e2e][proxy][slow]") {
  TempDir dir;
  TempRing ring("proxy-exact");
  register_service(dir, kService, kAttrs);
  const int judger_port = free_port(), bonnie_port = free_port(), clyde_port = free_port(), query_port = free_port();
  auto judger = spawn_judger(dir, judger_port, dir.file("judger.log"), query_port);
  auto bonnie = spawn_proxy(dir, "bonnie", "bonnie-1", bonnie_port, "central");
  write_file(dir.file("bonnies.txt"), address(bonnie_port) + "\n");
  auto clyde = spawn_proxy(dir, "clyde", "clyde-1", clyde_port, "remote", dir.file("bonnies.txt"));
  auto agent = spawn_agent(dir, ring, "remote", "agent.log");

  const int64_t start = now_s();
  std::thread other([&] { run_writer(dir, ring, 1); });
  run_writer(dir, ring, 0);
  other.join();
  {
    INFO("agent:\n" << read_file(dir.file("agent.log")) << "\nclyde:\n" << read_file(dir.file("clyde-1.log"))
                    << "\nbonnie:\n" << read_file(dir.file("bonnie-1.log")) << "\njudger:\n"
                    << read_file(dir.file("judger.log")));
    check_served_exactly_once(query_port, {0, 1}, start);
  }
  stop(agent, "agent");
  stop(clyde, "clyde");
  stop(bonnie, "bonnie");
  stop(judger, "judger");
  CHECK_THAT(read_file(dir.file("agent.log")), Catch::Contains("forwarding to " + address(clyde_port)));
  CHECK_THAT(read_file(dir.file("agent.log")), Catch::Contains("0 waiting in the spool"));
  CHECK_THAT(read_file(dir.file("bonnie-1.log")),
             Catch::Contains("dropped 0 unknown service / 0 unknown attr / 0 unassigned"));
}

TEST_CASE("a Clyde whose Bonnie is killed fails over to the Bonnie it learned from heartbeats, and nothing is lost",
          "[e2e][proxy][crash][slow]") {
  TempDir dir;
  TempRing ring("proxy-failover");
  register_service(dir, kService, kAttrs);
  const int judger_port = free_port(), b1_port = free_port(), b2_port = free_port(), clyde_port = free_port();
  const int query_port = free_port();
  auto judger = spawn_judger(dir, judger_port, dir.file("judger.log"), query_port);
  auto b1 = spawn_proxy(dir, "bonnie", "bonnie-1", b1_port, "central");
  auto b2 = spawn_proxy(dir, "bonnie", "bonnie-2", b2_port, "central");
  // The Clyde is told only of the first; heartbeat replies carry both.
  const std::string list = dir.file("bonnies.txt");
  write_file(list, address(b1_port) + "\n");
  auto clyde = spawn_proxy(dir, "clyde", "clyde-1", clyde_port, "remote", list);
  REQUIRE(wait_until([&] { return read_file(list).find(address(b2_port)) != std::string::npos; }, 15s));
  CHECK_THAT(read_file(list), Catch::Contains(address(b1_port)));
  auto agent = spawn_agent(dir, ring, "remote", "agent.log");

  const int64_t start = now_s();
  run_writer(dir, ring, 0);
  // Killed while the agent's seconds flow through it to the judger.
  REQUIRE(wait_until([&] { return judger_storing(query_port); }, 15s));
  b1.signal(SIGKILL);
  REQUIRE(b1.wait_for(5s) == 128 + SIGKILL);
  run_writer(dir, ring, 1);
  {
    INFO("clyde:\n" << read_file(dir.file("clyde-1.log")) << "\nbonnie-2:\n" << read_file(dir.file("bonnie-2.log"))
                    << "\njudger:\n" << read_file(dir.file("judger.log")));
    check_served_exactly_once(query_port, {0, 1}, start);
  }
  stop(agent, "agent");
  stop(clyde, "clyde");
  stop(b2, "bonnie-2");
  stop(judger, "judger");
  const std::string clyde_log = read_file(dir.file("clyde-1.log"));
  INFO("clyde:\n" << clyde_log);
  CHECK_THAT(clyde_log, Catch::Contains("Bonnie list changed"));
  CHECK_THAT(clyde_log, Catch::Contains("lost " + address(b1_port)));
  CHECK_THAT(clyde_log, Catch::Contains("connected to " + address(b2_port)));
  CHECK_THAT(read_file(dir.file("agent.log")), Catch::Contains("0 waiting in the spool"));
}

TEST_CASE("an agent whose proxy is killed fails over to another live proxy of its data centre, and nothing is lost",
          "[e2e][proxy][crash][slow]") {
  TempDir dir;
  TempRing ring("proxy-agent-failover");
  register_service(dir, kService, kAttrs);
  const int judger_port = free_port(), b1_port = free_port(), b2_port = free_port(), query_port = free_port();
  auto judger = spawn_judger(dir, judger_port, dir.file("judger.log"), query_port);
  std::optional<ChildProcess> bonnies[2];
  bonnies[0].emplace(spawn_proxy(dir, "bonnie", "bonnie-1", b1_port, "central"));
  bonnies[1].emplace(spawn_proxy(dir, "bonnie", "bonnie-2", b2_port, "central"));
  auto other_dc = spawn_proxy(dir, "bonnie", "bonnie-far", free_port(), "elsewhere");  // never picked
  // All three registered before the agent looks.
  REQUIRE(wait_until([&] {
    for (const char* name : {"bonnie-1", "bonnie-2", "bonnie-far"}) {
      if (read_file(dir.file(std::string("registry/proxies/") + name + ".json")).empty()) return false;
    }
    return true;
  }, 10s));
  auto agent = spawn_agent(dir, ring, "central", "agent.log");
  const int64_t start = now_s();
  run_writer(dir, ring, 0);
  // The agent picked one at random, and its reports reach the judger through it: kill that one.
  REQUIRE(wait_until([&] { return judger_storing(query_port); }, 15s));
  const std::string first_log = read_file(dir.file("agent.log"));
  const bool on_first = first_log.find("forwarding to " + address(b1_port)) != std::string::npos;
  REQUIRE((on_first || first_log.find("forwarding to " + address(b2_port)) != std::string::npos));
  const int used = on_first ? 0 : 1;
  const int other_port = on_first ? b2_port : b1_port;
  bonnies[used]->signal(SIGKILL);
  REQUIRE(bonnies[used]->wait_for(5s) == 128 + SIGKILL);
  run_writer(dir, ring, 1);
  {
    INFO("agent:\n" << read_file(dir.file("agent.log")));
    check_served_exactly_once(query_port, {0, 1}, start);
  }
  stop(agent, "agent");
  stop(*bonnies[1 - used], "the other bonnie");
  stop(other_dc, "bonnie of another dc");
  stop(judger, "judger");
  const std::string agent_log = read_file(dir.file("agent.log"));
  INFO("agent:\n" << agent_log);
  CHECK_THAT(agent_log, Catch::Contains("forwarding to " + address(other_port)));
  CHECK_THAT(agent_log, Catch::Contains("0 waiting in the spool"));
  CHECK(read_file(dir.file("bonnie-far.log")).find(": agent ") == std::string::npos);  // no agent came
}

TEST_CASE("a judger killed with SIGKILL behind Bonnie: Bonnie spools, replays after its restart, nothing twice",
          "[e2e][proxy][crash][slow]") {
  TempDir dir;
  TempRing ring("proxy-judger-kill");
  register_service(dir, kService, kAttrs);
  const int judger_port = free_port(), bonnie_port = free_port(), query_port = free_port();
  std::optional<ChildProcess> judger;
  judger.emplace(spawn_judger(dir, judger_port, dir.file("judger1.log"), query_port));
  auto bonnie = spawn_proxy(dir, "bonnie", "bonnie-1", bonnie_port, "central");
  auto agent = spawn_agent(dir, ring, "central", "agent.log");
  const int64_t start = now_s();
  run_writer(dir, ring, 0);
  // Killed while seconds flow through Bonnie to it.
  REQUIRE(wait_until([&] { return judger_storing(query_port); }, 15s));
  judger->signal(SIGKILL);
  REQUIRE(judger->wait_for(5s) == 128 + SIGKILL);
  run_writer(dir, ring, 1);
  // Bonnie acknowledges the agent and spools for the dead judger.
  REQUIRE(wait_until([&] { return read_file(dir.file("bonnie-1.log")).find("link judger-1: lost") != std::string::npos; },
                     15s));
  // Restarted on another port: Bonnie finds it through the registry.
  judger.emplace(spawn_judger(dir, free_port(), dir.file("judger2.log"), query_port));
  {
    INFO("bonnie:\n" << read_file(dir.file("bonnie-1.log")) << "\njudger 2:\n" << read_file(dir.file("judger2.log")));
    check_served_exactly_once(query_port, {0, 1}, start);
  }
  stop(agent, "agent");
  stop(bonnie, "bonnie");
  stop(*judger, "judger");
  const std::string bonnie_log = read_file(dir.file("bonnie-1.log"));
  INFO("bonnie:\n" << bonnie_log);
  CHECK_THAT(bonnie_log, Catch::Contains("0 spooled now"));
}

TEST_CASE("an agent killed with batches in its spool replays them through Bonnie after its restart",
          "[e2e][proxy][crash][slow]") {
  TempDir dir;
  TempRing ring("proxy-spool");
  register_service(dir, kService, kAttrs);
  const int judger_port = free_port(), bonnie_port = free_port(), query_port = free_port();
  auto judger = spawn_judger(dir, judger_port, dir.file("judger.log"), query_port);
  const int64_t start = now_s();
  {
    // No proxy is live in data centre "central" yet: every batch is spooled.
    auto agent = spawn_agent(dir, ring, "central", "agent1.log");
    run_writer(dir, ring, 0);
    // Killed with batches in its spool (the next sequence is saved as each is
    // spooled); what it had not written out yet its crash journal keeps.
    REQUIRE(wait_until([&] { return !read_file(dir.file("agent-spool/next-sequence")).empty(); }, 15s));
    agent.signal(SIGKILL);
    REQUIRE(agent.wait_for(5s) == 128 + SIGKILL);
  }
  INFO("first agent:\n" << read_file(dir.file("agent1.log")));
  CHECK_THAT(read_file(dir.file("agent1.log")), Catch::Contains("none live in the registry"));
  auto bonnie = spawn_proxy(dir, "bonnie", "bonnie-1", bonnie_port, "central");
  auto agent = spawn_agent(dir, ring, "central", "agent2.log");
  {
    INFO("second agent:\n" << read_file(dir.file("agent2.log")) << "\nbonnie:\n" << read_file(dir.file("bonnie-1.log")));
    check_served_exactly_once(query_port, {0}, start);
  }
  stop(agent, "agent");
  stop(bonnie, "bonnie");
  stop(judger, "judger");
  CHECK_THAT(read_file(dir.file("agent2.log")),
             Catch::Contains("replaying them first") && Catch::Contains("0 waiting in the spool"));
}

TEST_CASE("Bonnie drops and counts reports of unregistered services and attrs, and routes the rest",
          "[e2e][proxy][validation]") {
  TempDir dir;
  register_service(dir, "Shop.Api", {"Orders.Placed"});
  const int judger_port = free_port(), bonnie_port = free_port(), query_port = free_port();
  auto judger = spawn_judger(dir, judger_port, dir.file("judger.log"), query_port);
  auto bonnie = spawn_proxy(dir, "bonnie", "bonnie-1", bonnie_port, "central");
  // In a minute that has ended, so it is final soon after it arrives.
  const int64_t minute = now_s() - now_s() % 60 - 60;
  const int64_t second = minute + 30;
  {
    WireClient client(bonnie_port, 10s);
    REQUIRE(client.send(hello_and_names(9, {{1, "Shop.Api", "Orders.Placed"},
                                            {2, "Shop.Api", "Orders.Unregistered"},
                                            {3, "Nobody.Knows", "Orders.Placed"}})));
    auto ack = client.read_frame(10s);
    REQUIRE(ack);
    REQUIRE(ack->type == wire::FrameType::kHelloAck);
    wire::Batch batch{9, 1, {sum_record(1, second, 5), sum_record(2, second, 6), sum_record(2, second + 1, 7),
                             sum_record(3, second, 8), sum_record(3, second + 1, 9), sum_record(3, second + 2, 10)}};
    std::string out;
    REQUIRE(wire::encode(out, batch) == wire::WireError::kOk);
    REQUIRE(client.send(out));
    auto reply = client.read_frame(10s);
    REQUIRE(reply);
    REQUIRE(reply->type == wire::FrameType::kAck);
    wire::Ack batch_ack;
    REQUIRE(wire::decode(reply->payload, batch_ack) == wire::WireError::kOk);
    CHECK(batch_ack.sequence == 1);
  }
  // Acknowledged means delivered or spooled: the judger serves the one
  // registered series once its minute is final, and stored nothing else.
  double sum = -1;
  CHECK(wait_until([&] { return (sum = query_sum(dir, "Shop.Api", "Orders.Placed", "SUM", "total", minute,
                                                  minute + 60)) == 5; },
                   30s));
  CHECK(sum == 5);
  CHECK(judger_health(query_port, "records") == 1);
  stop(bonnie, "bonnie");
  stop(judger, "judger");
  const std::string log = read_file(dir.file("bonnie-1.log"));
  INFO(log);
  CHECK_THAT(log, Catch::Contains("dropped 3 unknown service / 2 unknown attr / 0 unassigned"));
  CHECK_THAT(log, Catch::Contains("Nobody.Knows Orders.Placed: service not registered"));
  CHECK_THAT(log, Catch::Contains("Shop.Api Orders.Unregistered: attr not registered"));
}

TEST_CASE("corrupt frames sent to a proxy close that connection with a logged reason and the proxy stays up",
          "[e2e][proxy][failure]") {
  TempDir dir;
  const int bonnie_port = free_port();
  auto bonnie = spawn_proxy(dir, "bonnie", "bonnie-1", bonnie_port, "central");
  {
    WireClient junk(bonnie_port, 10s);
    REQUIRE(junk.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK_FALSE(junk.read_frame(5s));
    CHECK(junk.peer_closed());
  }
  {
    WireClient corrupt(bonnie_port, 10s);
    std::string frames = hello_and_names(1, {{1, "Shop.Api", "Orders.Placed"}});
    frames.back() ^= 0x40;  // the DICT's CRC no longer matches
    REQUIRE(corrupt.send(frames));
    CHECK(closed_by_peer(corrupt));
  }
  {
    WireClient early(bonnie_port, 10s);  // a batch before HELLO
    std::string frames;
    wire::encode(frames, std::vector<wire::DictEntry>{{1, "Shop.Api", "Orders.Placed"}});
    REQUIRE(wire::encode(frames, wire::Batch{1, 1, {sum_record(1, now_s(), 1)}}) == wire::WireError::kOk);
    REQUIRE(early.send(frames));
    CHECK(closed_by_peer(early));
  }
  {
    WireClient undefined(bonnie_port, 10s);  // a record naming an id no DICT defined
    std::string frames = hello_and_names(1, {{1, "Shop.Api", "Orders.Placed"}});
    REQUIRE(wire::encode(frames, wire::Batch{1, 1, {sum_record(7, now_s(), 1)}}) == wire::WireError::kOk);
    REQUIRE(undefined.send(frames));
    CHECK(closed_by_peer(undefined));
  }
  WireClient good(bonnie_port, 10s);
  REQUIRE(good.send(hello_and_names(5, {})));
  auto ack = good.read_frame(5s);
  REQUIRE(ack);  // still serving
  CHECK(ack->type == wire::FrameType::kHelloAck);
  stop(bonnie, "bonnie");
  const std::string log = read_file(dir.file("bonnie-1.log"));
  INFO(log);
  CHECK_THAT(log, Catch::Contains("bad_magic") && Catch::Contains("bad_checksum") && Catch::Contains("bad_payload") &&
                      Catch::Contains("unknown_name_id") && Catch::Contains("4 bad frames"));
}

TEST_CASE("monitor-proxy --help works and a bad config stops it with a clear message", "[e2e][proxy][failure]") {
  TempDir dir;
  auto help = ChildProcess::spawn({MONITOR_PROXY_PATH, "--help"}, dir.file("help.txt"));
  REQUIRE(help.wait_for(10s) == 0);
  CHECK_THAT(read_file(dir.file("help.txt")), Catch::Contains("--role") && Catch::Contains("--bonnies-file"));

  auto expect_refusal = [&](const std::vector<std::string>& args, const std::string& message) {
    std::vector<std::string> argv = {MONITOR_PROXY_PATH, "--registry", "file:" + dir.file("registry"), "--data-dir",
                                     dir.file("proxy")};
    argv.insert(argv.end(), args.begin(), args.end());
    auto run = ChildProcess::spawn(argv, "", dir.file("err.txt"));
    INFO(message);
    REQUIRE(run.wait_for(10s) == 2);
    CHECK_THAT(read_file(dir.file("err.txt")), Catch::Contains(message));
  };
  expect_refusal({}, "role must be clyde or bonnie");
  expect_refusal({"--role", "clyde"}, "a clyde needs bonnies_file");
  write_file(dir.file("empty.txt"), "# nobody\n");
  expect_refusal({"--role", "clyde", "--bonnies-file", dir.file("empty.txt")}, "lists no Bonnie");
  write_file(dir.file("bad.json"), "{\"role\": \"bonnie\", \"heartbeat_interval_ms\": \"soon\"}");
  expect_refusal({"--config", dir.file("bad.json")}, "\"heartbeat_interval_ms\" must be an integer");
  write_file(dir.file("broken.json"), "{\"role\": ");
  expect_refusal({"--config", dir.file("broken.json")}, "not valid JSON");
  expect_refusal({"--role", "bonnie", "--listen", "localhost"}, "listen must be a numeric host:port");
  // Plain TCP from the network only when asked for (issue 23).
  expect_refusal({"--role", "bonnie", "--listen", "0.0.0.0:1"}, "listen 0.0.0.0:1 is not a loopback address");
  expect_refusal({"--role", "bonnie", "--tls-ca", dir.file("none.pem")}, "TLS needs tls_ca, tls_cert and tls_key");
}

namespace {

// scripts/pki.sh, as an operator runs it.
void pki(const std::string& args) {
  const std::string command = std::string(MONITOR_SOURCE_DIR) + "/scripts/pki.sh --days 2 " + args + " >/dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
}

std::vector<std::string> tls_flags(const std::string& pki_dir, const std::string& part) {
  return {"--tls-ca", pki_dir + "/ca.pem", "--tls-cert", pki_dir + "/" + part + ".pem", "--tls-key",
          pki_dir + "/" + part + ".key"};
}

boost::json::object tls_config(const std::string& pki_dir, const std::string& part) {
  return {{"tls_ca", pki_dir + "/ca.pem"}, {"tls_cert", pki_dir + "/" + part + ".pem"},
          {"tls_key", pki_dir + "/" + part + ".key"}};
}

}  // namespace

TEST_CASE("issue 23: over TLS, agent -> Clyde -> Bonnie -> judger is exact, and a part without the deployment's "
          "certificate is refused and counted",
          "[e2e][proxy][tls][issue23][slow]") {
  TempDir dir;
  TempRing ring("proxy-tls");
  register_service(dir, kService, kAttrs);
  const std::string ca = dir.file("pki"), stranger = dir.file("stranger");
  pki("init " + ca);
  pki("init " + stranger);
  for (const auto* part : {"judger judger-1", "bonnie bonnie-1", "clyde clyde-1", "agent e2e-host"}) pki("issue " + ca + " " + part);
  pki("issue " + stranger + " agent e2e-host");
  const int judger_port = free_port(), bonnie_port = free_port(), clyde_port = free_port(), query_port = free_port();
  auto judger = spawn_judger(dir, judger_port, dir.file("judger.log"), query_port, tls_flags(ca, "judger-judger-1"));
  auto bonnie = spawn_proxy(dir, "bonnie", "bonnie-1", bonnie_port, "central", {}, tls_config(ca, "bonnie-bonnie-1"));
  write_file(dir.file("bonnies.txt"), address(bonnie_port) + "\n");
  auto clyde = spawn_proxy(dir, "clyde", "clyde-1", clyde_port, "remote", dir.file("bonnies.txt"),
                           tls_config(ca, "clyde-clyde-1"));
  const std::string socket = dir.file("agent.sock");
  std::vector<std::string> argv = {MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", socket,
                                   "--output", "/dev/null", "--registry", "file:" + dir.file("registry"), "--dc",
                                   "remote", "--spool-dir", dir.file("agent-spool"), "--no-self-metrics"};
  for (auto& flag : tls_flags(ca, "agent-e2e-host")) argv.push_back(flag);
  auto agent = ChildProcess::spawn(argv, "", dir.file("agent.log"));
  struct stat st {};
  REQUIRE(wait_until([&] { return stat(socket.c_str(), &st) == 0; }, 10s));

  // An agent of another CA, sending straight to the judger.
  TempRing rogue_ring("proxy-tls-rogue");
  std::vector<std::string> rogue_argv = {MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", rogue_ring.name(),
                                         "--socket", dir.file("rogue.sock"), "--output", "/dev/null", "--forward",
                                         address(judger_port), "--spool-dir", dir.file("rogue-spool"),
                                         "--no-self-metrics"};
  for (auto& flag : tls_flags(stranger, "agent-e2e-host")) rogue_argv.push_back(flag);
  auto rogue = ChildProcess::spawn(rogue_argv, "", dir.file("rogue.log"));
  // `systemctl reload`: the files are read again; nothing stops.
  // Both running with their handlers in place: the judger answers queries, the agent forwards.
  REQUIRE(wait_until([&] { return judger_health(query_port, "records") >= 0; }, 10s));
  REQUIRE(wait_until([&] { return read_file(dir.file("agent.log")).find("forwarding to") != std::string::npos; }, 10s));
  judger.signal(SIGHUP);
  agent.signal(SIGHUP);
  REQUIRE(wait_until([&] { return read_file(dir.file("judger.log")).find("SIGHUP: TLS files reloaded (judger:judger-1)") !=
                                  std::string::npos &&
                                  read_file(dir.file("agent.log")).find("SIGHUP: TLS files reloaded (agent:") !=
                                  std::string::npos; }, 10s));
  CHECK_FALSE(judger.wait_for(0ms).has_value());  // both still running
  CHECK_FALSE(agent.wait_for(0ms).has_value());

  const int64_t start = now_s();
  std::thread other([&] { run_writer(dir, ring, 1); });
  run_writer(dir, ring, 0);
  other.join();
  {
    INFO("agent:\n" << read_file(dir.file("agent.log")) << "\nclyde:\n" << read_file(dir.file("clyde-1.log"))
                    << "\nbonnie:\n" << read_file(dir.file("bonnie-1.log")) << "\njudger:\n"
                    << read_file(dir.file("judger.log")));
    check_served_exactly_once(query_port, {0, 1}, start);
    REQUIRE(wait_until([&] { return judger_health(query_port, "peers_refused") >= 1; }, 10s));
  }
  stop(rogue, "rogue agent");
  stop(agent, "agent");
  stop(clyde, "clyde");
  stop(bonnie, "bonnie");
  stop(judger, "judger");
  CHECK_THAT(read_file(dir.file("agent.log")), Catch::Contains("0 waiting in the spool"));
  CHECK_THAT(read_file(dir.file("judger.log")), Catch::Contains("alert unknown ca"));
  CHECK_THAT(read_file(dir.file("rogue.log")), Catch::Contains("refused " + address(judger_port)));
  CHECK_THAT(read_file(dir.file("clyde-1.log")), Catch::Contains("agent ") && Catch::Contains("connected"));
}
