// The one HTTP server (net/http_server) as every daemon's /metrics serves it:
// clients served at once, each bounded.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <catch2/catch.hpp>

#include "net/endpoint.hpp"
#include "net/http_get.hpp"
#include "net/http_server.hpp"
#include "support/child_process.hpp"
#include "support/test_pki.hpp"

using namespace std::chrono_literals;
namespace net = monitor::net;

namespace {

// A raw client that connects and then says nothing, or says what it is told.
int connect_raw(const std::string& address) {
  const auto endpoint = net::parse_endpoint(address);
  REQUIRE(endpoint);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(fd, endpoint->data(), static_cast<socklen_t>(endpoint->size())) == 0);
  return fd;
}

// An HttpServer on a thread of its own whose handler answers who the
// client's certificate says it is ("none" without one).
class WhoAmIServer {
 public:
  explicit WhoAmIServer(std::shared_ptr<net::TlsContext> tls) : acceptor_(io_) {
    net::listen_on(acceptor_, "127.0.0.1:0", "test");
    net::HttpServer::Options options;
    options.name = "test";
    options.read_timeout = 5s;
    options.tls = std::move(tls);
    server_ = std::make_unique<net::HttpServer>(
        acceptor_, options, [](net::HttpExchange& exchange) -> boost::asio::awaitable<net::HttpReply> {
          co_return net::HttpReply{200, "text/plain",
                                   exchange.peer_certificate ? exchange.peer_certificate->text() : "none", {}, false};
        });
    server_->start();
    address_ = net::format_endpoint(acceptor_.local_endpoint());
    thread_ = std::thread([this] { io_.run(); });
  }
  ~WhoAmIServer() {
    boost::asio::post(io_, [this] {
      server_->stop();
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    });
    io_.stop();
    thread_.join();
  }
  const std::string& address() const { return address_; }
  const net::HttpServerCounters& counters() const { return server_->counters(); }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<net::HttpServer> server_;
  std::string address_;
  std::thread thread_;
};

}  // namespace

// Issue 23: the judger's query API and the dashboard spoke plain HTTP only,
// so tokens and session cookies crossed the network in the clear.
TEST_CASE("issue 23: an HTTPS server answers a client that checks its certificate and address, and only such a one",
          "[net][http][tls][issue23]") {
  monitor::test::TestPki pki, stranger;
  const auto served = pki.issue("https", "localhost", "--ip 127.0.0.1 --dns localhost");
  WhoAmIServer server(net::make_https_server(served.cert, served.key, {}));
  const auto client = net::make_https_client(pki.ca());

  const auto answer = net::http_get(server.address(), "/", 5s, 1 << 20, {}, client.get());
  REQUIRE(answer.has_value());
  CHECK(answer->status == 200);
  CHECK(answer->body == "none");

  // Plain HTTP to it gets no answer, and the failed handshake is counted.
  CHECK_FALSE(net::http_get(server.address(), "/", 5s).has_value());
  // A client that trusts another CA does not take its certificate.
  CHECK_FALSE(net::http_get(server.address(), "/", 5s, 1 << 20, {}, net::make_https_client(stranger.ca()).get()).has_value());
  // The server counts the failed handshake on its own thread, a moment after the client gave up.
  CHECK(monitor::test::wait_until([&] { return server.counters().tls_failures >= 2; }, 5s));

  // A certificate of the CA that does not name the address connected to is refused too.
  const auto elsewhere = pki.issue("https", "elsewhere.example", "--dns elsewhere.example");
  WhoAmIServer misnamed(net::make_https_server(elsewhere.cert, elsewhere.key, {}));
  const auto refused = net::http_get(misnamed.address(), "/", 5s, 1 << 20, {}, client.get());
  REQUIRE_FALSE(refused.has_value());
  CHECK_THAT(refused.error().message(), Catch::Contains("certificate verify failed"));
}

TEST_CASE("issue 23: over HTTPS with a client CA, a part's verified certificate reaches the handler as who it is",
          "[net][http][tls][issue23]") {
  monitor::test::TestPki pki, stranger;
  const auto served = pki.issue("https", "localhost", "--ip 127.0.0.1");
  WhoAmIServer server(net::make_https_server(served.cert, served.key, pki.ca()));
  const auto judger = pki.issue("judger", "j1");
  const auto as_judger = net::make_https_client(pki.ca(), judger.cert, judger.key);
  const auto answer = net::http_get(server.address(), "/", 5s, 1 << 20, {}, as_judger.get());
  REQUIRE(answer.has_value());
  CHECK(answer->body == "judger:j1");

  // No certificate is asked for, not required: a user's token is the other credential.
  const auto anonymous = net::http_get(server.address(), "/", 5s, 1 << 20, {}, net::make_https_client(pki.ca()).get());
  REQUIRE(anonymous.has_value());
  CHECK(anonymous->body == "none");

  // A judger certificate of another deployment's CA ends the handshake.
  const auto forged = stranger.issue("judger", "j1");
  CHECK_FALSE(net::http_get(server.address(), "/", 5s, 1 << 20, {},
                            net::make_https_client(pki.ca(), forged.cert, forged.key).get()).has_value());
  CHECK(monitor::test::wait_until([&] { return server.counters().tls_failures == 1; }, 5s));
}

// Issue 22: the metrics server served one connection at a time, so idle
// connections delayed a scrape by their whole read timeout each.
TEST_CASE("issue 22: idle connections do not hold up a /metrics scrape", "[net][http][issue22]") {
  net::MetricsServer server("127.0.0.1:0", [] { return std::string("up 1\n"); });
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(connect_raw(server.address()));
  const auto start = std::chrono::steady_clock::now();
  const auto scraped = net::http_get(server.address(), "/metrics", 20s);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(scraped.has_value());
  CHECK(scraped->status == 200);
  CHECK(scraped->body == "up 1\n");
  // Not a timing assertion on speed: one idle connection alone held it 5 s.
  CHECK(took < 4s);
  for (const int fd : idle) ::close(fd);
}

TEST_CASE("issue 22: the HTTP server caps connections per address, limits bodies and answers unknown paths",
          "[net][http][issue22][failure]") {
  net::MetricsServer server("127.0.0.1:0", [] { return std::string("up 1\n"); });
  // max_per_address of /metrics is 8: the ninth is closed at accept.
  std::vector<int> held;
  for (int i = 0; i < 8; ++i) held.push_back(connect_raw(server.address()));
  const int ninth = connect_raw(server.address());
  char byte = 0;
  timeval tv{5, 0};
  ::setsockopt(ninth, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  CHECK(::recv(ninth, &byte, 1, 0) == 0);  // closed by the server, not timed out
  ::close(ninth);
  for (const int fd : held) ::close(fd);

  // Room again once they are gone (the server sees them go).
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    const auto again = net::http_get(server.address(), "/metrics", 5s);
    served = again.has_value() && again->status == 200;
    if (!served) std::this_thread::sleep_for(50ms);
  }
  CHECK(served);

  const auto other = net::http_get(server.address(), "/secret", 5s);
  REQUIRE(other.has_value());
  CHECK(other->status == 404);

  // A body past the limit (none for /metrics) is refused with 413, not read.
  const int fd = connect_raw(server.address());
  const std::string post = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + std::string(1000, 'x');
  REQUIRE(::send(fd, post.data(), post.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(post.size()));
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char reply[512] = {};
  const ssize_t n = ::recv(fd, reply, sizeof reply - 1, 0);
  REQUIRE(n > 0);
  CHECK(std::string(reply, static_cast<size_t>(n)).starts_with("HTTP/1.1 413"));
  ::close(fd);
}
