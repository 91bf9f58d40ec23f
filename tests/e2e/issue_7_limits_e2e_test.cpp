// Issue 7, item 5: what a peer can make a daemon hold is bounded. Past each
// bound the daemon refuses, logs the reason and counts, and goes on serving.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "e2e/agent_process.hpp"
#include "e2e/judger_process.hpp"
#include "e2e/proxy_process.hpp"
#include "e2e/query_oracle.hpp"
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

bool hello(WireClient& client, uint64_t sender) {
  std::string out;
  wire::encode(out, wire::Hello{sender, wire::Role::kAgent, "limits-test"});
  if (!client.send(out)) return false;
  const auto reply = client.read_frame(5s);
  return reply && reply->type == wire::FrameType::kHelloAck;
}

bool acked(WireClient& client, uint64_t sequence) {
  const auto reply = client.read_frame(10s);
  wire::Ack ack;
  return reply && reply->type == wire::FrameType::kAck &&
         wire::decode(reply->payload, ack) == wire::WireError::kOk && ack.sequence == sequence;
}

// One record of SUM 1 per (name id, server) given, all in `second`.
std::string batch(uint64_t sender, uint64_t sequence, int64_t second,
                  const std::vector<std::pair<uint32_t, int64_t>>& series) {
  wire::Batch b{sender, sequence, {}};
  for (const auto& [name, server] : series) {
    wire::BatchRecord r;
    r.second = second;
    r.name_id = name;
    r.server_id = server;
    r.ops = 1;  // SUM
    r.stats.add(1, second * 1'000'000'000);
    b.records.push_back(r);
  }
  std::string out;
  REQUIRE(wire::encode(out, b) == wire::WireError::kOk);
  return out;
}

}  // namespace

TEST_CASE("issue 7: a judger at max_connections closes a further connection at accept, counts it, and serves again "
          "once one closes",
          "[e2e][judger][issue7][failure]") {
  TempDir dir;
  const int port = free_port(), query_port = free_port();
  auto judger = spawn_judger(dir, port, dir.file("judger.log"), query_port, {"--max-connections", "2"});
  std::optional<WireClient> first(std::in_place, port, 10s);
  WireClient second(port, 10s);
  REQUIRE(hello(*first, 1));
  REQUIRE(hello(second, 2));
  {
    WireClient third(port, 10s);  // the kernel accepts it; the judger closes it
    CHECK_FALSE(hello(third, 3));
    CHECK(third.peer_closed());
  }
  CHECK(judger_health(query_port, "connections_refused") == 1);
  CHECK_THAT(read_file(dir.file("judger.log")), Catch::Contains("refused a batch connection from 127.0.0.1"));
  first.reset();
  // Once the judger has seen the first one go, a new one is served.
  CHECK(wait_until([&] { WireClient again(port, 10s); return hello(again, 4); }, 10s));
  stop(judger, "judger");
}

TEST_CASE("issue 7: a judger at max_names interns no more names and refuses their records, counted",
          "[e2e][judger][issue7][failure]") {
  TempDir dir;
  const int port = free_port(), query_port = free_port();
  auto judger = spawn_judger(dir, port, dir.file("judger.log"), query_port, {"--max-names", "64"});
  WireClient client(port, 10s);
  REQUIRE(hello(client, 1));
  std::vector<wire::DictEntry> names;
  std::vector<std::pair<uint32_t, int64_t>> series;
  for (uint32_t id = 1; id <= 100; ++id) {
    names.push_back({id, "E2e.Test", "Attr.N" + std::to_string(id)});
    series.emplace_back(id, 1);
  }
  std::string out;
  wire::encode(out, names);
  const int64_t now = unix_now_s();
  out += batch(1, 1, now, series);
  REQUIRE(client.send(out));
  REQUIRE(acked(client, 1));
  CHECK(judger_health(query_port, "names_refused") == 36);
  CHECK(judger_health(query_port, "records_name_refused") == 36);
  CHECK(judger_health(query_port, "records") == 64);
  CHECK_THAT(read_file(dir.file("judger.log")), Catch::Contains("max_names (64)"));
  stop(judger, "judger");
}

TEST_CASE("issue 7: a judger refuses records that would open more series of a service in a minute than "
          "series_per_service, and keeps those of open series",
          "[e2e][judger][issue7][failure][slow]") {
  TempDir dir;
  const int port = free_port(), query_port = free_port();
  auto judger = spawn_judger(dir, port, dir.file("judger.log"), query_port, {"--series-per-service", "100"});
  register_service(dir, "E2e.Test", {"Loop.Count"});  // monitorctl query asks the owner
  register_service(dir, "E2e.Other", {"Loop.Count"});
  WireClient client(port, 10s);
  REQUIRE(hello(client, 1));
  std::string out;
  wire::encode(out, std::vector<wire::DictEntry>{{1, "E2e.Test", "Loop.Count"}, {2, "E2e.Other", "Loop.Count"}});
  // A minute that has ended: final at the judger's next tick after its grace.
  const int64_t now = unix_now_s();
  const int64_t minute = now - now % 60 - 60;
  std::vector<std::pair<uint32_t, int64_t>> looping, again, other;
  for (int64_t server = 0; server < 150; ++server) looping.emplace_back(1, server);
  for (int64_t server = 0; server < 100; ++server) again.emplace_back(1, server);
  for (int64_t server = 0; server < 100; ++server) other.emplace_back(2, server);
  out += batch(1, 1, minute + 10, looping);
  out += batch(1, 2, minute + 20, again);  // series already open: kept
  out += batch(1, 3, minute + 30, other);  // another service has its own limit
  REQUIRE(client.send(out));
  REQUIRE(acked(client, 1));
  REQUIRE(acked(client, 2));
  REQUIRE(acked(client, 3));
  CHECK(judger_health(query_port, "series_over_limit") == 50);
  CHECK_THAT(read_file(dir.file("judger.log")), Catch::Contains("service E2e.Test has more series"));
  // The minute ended before the records came: final at the judger's next ticks.
  double total = -1;
  CHECK(wait_until([&] { return (total = query_sum(dir, "E2e.Test", "Loop.Count", "SUM", "total", minute,
                                                    minute + 60)) == 200; },
                   30s));
  CHECK(total == 200);
  CHECK(query_sum(dir, "E2e.Other", "Loop.Count", "SUM", "total", minute, minute + 60) == 100);
  CHECK(query_sum(dir, "E2e.Test", "Loop.Count", "SUM", "99", minute, minute + 60) == 2);
  CHECK(query_sum(dir, "E2e.Test", "Loop.Count", "SUM", "100", minute, minute + 60) == 0);
  stop(judger, "judger");
}

TEST_CASE("issue 7: a proxy at max_connections closes a further connection at accept and counts it",
          "[e2e][proxy][issue7][failure]") {
  TempDir dir;
  const int port = free_port();
  auto bonnie = spawn_proxy(dir, "bonnie", "bonnie-1", port, "central", "", boost::json::object{{"max_connections", 1}});
  WireClient first(port, 10s);
  REQUIRE(hello(first, 1));
  WireClient second(port, 10s);
  CHECK_FALSE(hello(second, 2));
  CHECK(second.peer_closed());
  CHECK(wait_until([&] {
    return read_file(dir.file("bonnie-1.log")).find("refused a batch connection from 127.0.0.1") != std::string::npos;
  }, 5s));
  stop(bonnie, "bonnie");
}

TEST_CASE("issue 7: an agent drops the series of a service past series_per_service in a second, counted and named",
          "[e2e][agent][issue7][failure]") {
  TempDir dir;
  TempRing ring("series-limit");
  auto agent = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", "", "--output",
                                    dir.file("out.jsonl"), "--series-per-service", "100", "--no-self-metrics"},
                                   "", dir.file("agent.log"));
  REQUIRE(wait_until([&] { return read_file(dir.file("agent.log")).find("late window") != std::string::npos; }, 10s));
  auto wide = ChildProcess::spawn({MONITOR_E2E_WRITER_PATH, "wide", "150"}, dir.file("wide.out"), "",
                                  {std::string(MONITOR_RING_ENV) + "=" + ring.name()});
  REQUIRE(wide.wait_for(30s) == 0);
  // Written out once the late window has passed.
  std::set<std::string> servers;
  const auto count_servers = [&] {
    servers.clear();
    const std::string out = read_file(dir.file("out.jsonl"));
    for (size_t at = 0; (at = out.find("\"attr\":\"Wide.Count\"", at)) != std::string::npos; ++at) {
      const size_t s = out.find("\"server_id\":", at) + 12;
      servers.insert(out.substr(s, out.find(',', s) - s));
    }
    return servers.size() >= 100;
  };
  CHECK(wait_until(count_servers, 15s));
  stop(agent, "agent");
  count_servers();
  CHECK(servers.size() == 100);
  CHECK_THAT(read_file(dir.file("agent.log")), Catch::Contains("service E2e.Test has more series in one second"));
}

TEST_CASE("issue 7: an agent at max_names drops reports of new names, counted and logged, and keeps the known ones",
          "[e2e][agent][issue7][failure]") {
  TempDir dir;
  TempRing ring("max-names");
  {
    std::FILE* f = std::fopen(dir.file("agent.json").c_str(), "w");
    REQUIRE(f != nullptr);
    // Lines take at most their budget of max_names (issue 23), and what that
    // leaves must hold the ring's name table: the smallest that can be is 64.
    std::fputs("{\"max_names\": 128, \"max_line_names\": 64, \"ring_name_capacity\": 64}", f);
    std::fclose(f);
  }
  const std::string socket = dir.file("agent.sock");
  auto agent = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--config", dir.file("agent.json"), "--ring", ring.name(),
                                    "--socket", socket, "--output", dir.file("out.jsonl"), "--no-self-metrics"},
                                   "", dir.file("agent.log"));
  REQUIRE(wait_until([&] { return read_file(dir.file("agent.log")).find("late window") != std::string::npos; }, 10s));
  std::string lines;
  for (int i = 0; i < 100; ++i) lines += "E2e.Test Attr.N" + std::to_string(i) + " 1 1 SUM 0\n";
  lines += "E2e.Test Attr.N3 1 1 SUM 0\n";  // known: kept
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket.c_str());
  REQUIRE(::sendto(fd, lines.data(), lines.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) ==
          static_cast<ssize_t>(lines.size()));
  ::close(fd);
  stop(agent, "agent");  // drains the socket and writes every second out
  const std::string out = read_file(dir.file("out.jsonl"));
  std::set<std::string> attrs;
  for (size_t at = 0; (at = out.find("\"attr\":\"", at)) != std::string::npos; ++at) {
    attrs.insert(out.substr(at + 8, out.find('"', at + 8) - at - 8));
  }
  CHECK(attrs.size() == 64);
  CHECK(out.find("\"attr\":\"Attr.N64\"") == std::string::npos);
  CHECK(out.find("\"attr\":\"Attr.N3\",\"server_id\":1,\"op\":\"SUM\",\"value\":2") != std::string::npos);
  CHECK_THAT(read_file(dir.file("agent.log")), Catch::Contains("max_names (128) names already, or max_line_names (64)"));
}
