// The one judger client (query/judger_client): the targets it asks for, as
// docs/judger.md names them, against a real HTTP server that records them.
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <catch2/catch.hpp>

#include "net/http_server.hpp"
#include "query/judger_client.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST_CASE("issue 22: the judger client builds each query API target once, escaped", "[query][issue22]") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io);
  monitor::net::listen_on(acceptor, "127.0.0.1:0", "test");
  std::mutex mutex;
  std::vector<std::string> targets;
  monitor::net::HttpServer server(acceptor, {}, [&](monitor::net::HttpExchange& exchange)
                                                    -> asio::awaitable<monitor::net::HttpReply> {
    std::lock_guard lock(mutex);
    targets.emplace_back(exchange.request.target());
    co_return monitor::net::HttpReply{200, "application/json", "{}", {}, false};
  });
  server.start();
  std::thread loop([&] { io.run(); });
  const std::string address = "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());

  const monitor::query::JudgerClient client(address, 5s);
  const monitor::query::SeriesRef series{"Shop.Api", "Request.Count", "SUM"};
  CHECK(client.series(series, "total", 60, 180, 120)->status == 200);
  CHECK(client.series(series, "7", 60, 180)->status == 200);
  CHECK(client.cells(series, "all", 60, 120)->status == 200);
  CHECK(client.points(series, 0, 60)->status == 200);
  CHECK(client.reports(0, 86400)->status == 200);
  CHECK(client.alarm_history(0, 60, "Shop.Api.Down")->status == 200);
  CHECK(client.services("Shop.Api")->status == 200);
  CHECK(client.health()->status == 200);
  CHECK(monitor::query::JudgerClient::escape("a b&c=d/é") == "a%20b%26c%3Dd%2F%C3%A9");

  io.stop();
  loop.join();
  CHECK(targets == std::vector<std::string>{
                       "/api/series?service=Shop.Api&attr=Request.Count&op=SUM&server=total&from=60&to=180&step=120",
                       "/api/series?service=Shop.Api&attr=Request.Count&op=SUM&server=7&from=60&to=180",
                       "/api/cells?service=Shop.Api&attr=Request.Count&op=SUM&server=all&from=60&to=120",
                       "/api/points?service=Shop.Api&attr=Request.Count&op=SUM&from=0&to=60",
                       "/api/reports?from=0&to=86400",
                       "/api/alarms/history?from=0&to=60&rule=Shop.Api.Down",
                       "/api/services?service=Shop.Api",
                       "/api/health"});

  // A judger that is not there is an error, not an answer.
  const monitor::query::JudgerClient gone("127.0.0.1:1", 2s);
  CHECK_FALSE(gone.health().has_value());
}
