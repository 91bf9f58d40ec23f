// Issue 20, §6: reading never stalls the data path. A real monitor-judger
// over a store holding a day of 1 000 servers; the largest answer the API
// gives beside batches sent as an agent sends them.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "common/clock.hpp"
#include "e2e/batch_sender.hpp"
#include "e2e/judger_process.hpp"
#include "judger/minute_store.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"

using namespace std::chrono_literals;
using monitor::e2e::BatchSender;
using monitor::test::free_port;
using monitor::test::http_get;
using monitor::test::TempDir;
using monitor::test::wait_until;

namespace {

constexpr int kServers = 1000;
constexpr int64_t kMinutes = 1440;

// A store holding kMinutes finished minutes of E2e.Big Wide.Attr SUM for
// kServers servers, ending `end_s`: what a day of a big service leaves.
void fill_store(const std::string& data_dir, int64_t end_s) {
  std::filesystem::create_directories(data_dir);
  auto store = monitor::judger::MinuteStore::open(std::filesystem::path(data_dir) / "judger.db");
  REQUIRE(store.has_value());
  std::vector<monitor::judger::MinutePoint> points;
  points.reserve(100'000);
  const int64_t first = end_s - kMinutes * 60;
  for (int64_t minute = first; minute < end_s; minute += 60) {
    for (int server = 0; server < kServers; ++server) {
      points.push_back({"E2e.Big", "Wide.Attr", 1, server, minute, static_cast<double>(server)});
    }
    if (points.size() >= 100'000 || minute + 60 == end_s) {
      REQUIRE((*store)->put_minute_points(points).has_value());
      points.clear();
    }
  }
  for (int64_t minute = first; minute < end_s; minute += 60) {
    REQUIRE((*store)->complete_minute(minute, (*store)->last_pending_id()).has_value());
  }
}

boost::json::object health(int query_port) {
  const auto reply = http_get(query_port, "/api/health");
  if (reply.status != 200) return {};
  return boost::json::parse(reply.body).as_object();
}

int64_t figure(int query_port, const char* key) {
  const auto h = health(query_port);
  const auto* v = h.if_contains(key);
  return v != nullptr ? v->to_number<int64_t>() : -1;
}

// A socket that has sent GET `target`.
int send_get(int port, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  return fd;
}

// A GET whose client goes away once the request is sent.
void request_and_leave(int port, const std::string& target) {
  const int fd = send_get(port, target);
  wait_until([&] { return figure(port, "queries_running") == 1; }, 10s);
  ::close(fd);
}

// A GET whose client reads the head of the answer, then goes away.
void read_head_and_leave(int port, const std::string& target) {
  const int fd = send_get(port, target);
  std::string head;
  char byte = 0;
  const auto give_up = std::chrono::steady_clock::now() + 120s;
  while (head.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < give_up &&
         ::read(fd, &byte, 1) == 1) {
    head += byte;
  }
  ::close(fd);
  INFO(head);
  REQUIRE(head.rfind("HTTP/1.1 200", 0) == 0);
}

}  // namespace

// Regression (issue 20): every query ran on the judger's only thread, which
// also acknowledges batches: a dashboard's "top servers" over a day of 1 000
// servers stalled ingest for 17-26 s, past the proxies' heartbeat timeout.
TEST_CASE("issue 20: the largest query runs beside ingest: batches are acknowledged while it runs, its answer "
          "streams, a client that goes away before or during the answer stops its query, and one past "
          "query_timeout_s is stopped with 503",
          "[e2e][judger][issue20]") {
  TempDir dir;
  const int64_t end_s = monitor::realtime_ns() / 60'000'000'000 * 60 - 120;
  fill_store(dir.file("judger"), end_s);
  const std::string day = "/api/points?service=E2e.Big&attr=Wide.Attr&op=SUM&from=" +
                          std::to_string(end_s - kMinutes * 60) + "&to=" + std::to_string(end_s);
  const int port = free_port(), query_port = free_port();
  {
    auto judger = monitor::e2e::spawn_judger(dir, port, dir.file("judger.log"), query_port, {"--query-timeout", "600"});
    REQUIRE(wait_until([&] { return http_get(query_port, "/api/health").status == 200; }, 20s));

    // The day of every server, from a client thread; meanwhile an agent connects and sends.
    std::atomic<bool> answered{false};
    monitor::test::HttpReply reply;
    std::thread reader([&] {
      reply = http_get(query_port, day, 120s);  // the answer takes seconds to build
      answered = true;
    });
    REQUIRE(wait_until([&] { return figure(query_port, "queries_running") == 1; }, 20s));
    {
      BatchSender agent(port, 77, {{1, "E2e.Big", "Wide.Attr"}});
      const int64_t now_s = monitor::realtime_ns() / 1'000'000'000;
      agent.send({BatchSender::record(1, 5, now_s, 1, 1)});  // waits for the ACK
      CHECK_FALSE(answered.load());  // acknowledged while the query still ran
    }
    reader.join();
    REQUIRE(reply.status == 200);
    // Streamed as it is made (HTTP chunks), not built whole first.
    CHECK(reply.chunked);
    CHECK(reply.complete);
    const auto body = boost::json::parse(reply.body).as_object();
    const auto& servers = body.at("servers").as_object();
    CHECK(servers.size() == kServers);
    CHECK(servers.at("999").as_array().size() == kMinutes);
    CHECK(figure(query_port, "queries_served") >= 1);

    // A client that goes away: its query stops, counted, and its thread is free again.
    request_and_leave(query_port, day);
    REQUIRE(wait_until([&] { return figure(query_port, "queries_stopped") == 1; }, 60s));
    CHECK(figure(query_port, "queries_running") == 0);
    CHECK(http_get(query_port, "/api/services").status == 200);

    // A client that goes away once the answer began: the rest is not made,
    // counted, and the thread is free again.
    read_head_and_leave(query_port, day);
    REQUIRE(wait_until([&] { return figure(query_port, "queries_cut") == 1; }, 60s));
    REQUIRE(wait_until([&] { return figure(query_port, "queries_running") == 0; }, 10s));
    CHECK(http_get(query_port, "/api/services").status == 200);
    judger.signal(SIGTERM);
    CHECK(judger.wait_for(30s) == 0);
  }
  // With a short deadline the same query is stopped, with a reason.
  auto judger = monitor::e2e::spawn_judger(dir, port, dir.file("judger-2.log"), query_port, {"--query-timeout", "1"});
  REQUIRE(wait_until([&] { return http_get(query_port, "/api/health").status == 200; }, 20s));
  const auto stopped = http_get(query_port, day, 60s);
  CHECK(stopped.status == 503);
  CHECK_THAT(stopped.body, Catch::Contains("query_timeout_s"));
  CHECK(figure(query_port, "queries_stopped") == 1);
  judger.signal(SIGTERM);
  CHECK(judger.wait_for(30s) == 0);
}
