// The project's one HTTP server (Beast, coroutines): one listen loop, one
// session per connection, a deadline on every read and write, a cap on
// connections in all and per client address, a body limit; HTTPS when given a
// TLS context. Each daemon gives it a handler: the judger's query API, the
// dashboard, every `/metrics`.
// Connections are served concurrently, so a client that idles or stalls costs
// its own connection, never another client's answer.
//
// The io_context may run on several threads (the dashboard's): the server's
// own state is guarded; a handler runs on the connection's coroutine.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/log_throttle.hpp"
#include "net/tls.hpp"

namespace monitor::net {

/// What a handler answers. `written`: it wrote the response itself (a
/// streamed answer) and the connection closes after it.
struct HttpReply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool written = false;
};

/// The connection under a request, HTTP or HTTPS alike: for a handler that
/// writes its answer itself (a streamed one).
class HttpConnection {
 public:
  virtual ~HttpConnection() = default;
  /// Writes all of `bytes` within `timeout`; false when it could not (the
  /// client went away or does not read).
  virtual boost::asio::awaitable<bool> write(std::string_view bytes, std::chrono::milliseconds timeout) = 0;
  /// The TCP socket under it, to notice a client that goes away.
  virtual boost::asio::ip::tcp::socket& socket() = 0;
};

/// One request as a handler sees it.
struct HttpExchange {
  boost::beast::http::request<boost::beast::http::string_body>& request;
  HttpConnection& connection;
  const std::string& peer_address;  // the client's IP address
  // Over HTTPS with a client CA: who the client's verified certificate says it is.
  const std::optional<PeerIdentity>& peer_certificate;
};

struct HttpServerCounters {
  std::atomic<uint64_t> connections{0};          // accepted
  std::atomic<uint64_t> connections_refused{0};  // at max_connections or max_per_address, closed at accept
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bad_requests{0};  // malformed, over the body limit, or not sent within read_timeout
  std::atomic<uint64_t> tls_failures{0};  // HTTPS handshakes that failed (plain HTTP, a bad client certificate)
  std::atomic<int64_t> live{0};
};

class HttpServer {
 public:
  struct Options {
    std::string name = "HTTP";  // for logs: "refused a <name> connection ..."
    size_t max_connections = 256;
    size_t max_per_address = 64;
    std::chrono::milliseconds read_timeout{10'000};   // a request (or the next one, kept alive) within it
    std::chrono::milliseconds write_timeout{30'000};  // each answer written within it
    size_t max_body = 64 * 1024;
    size_t max_header = 16 * 1024;
    bool keep_alive = true;  // false: one request per connection
    std::shared_ptr<TlsContext> tls;  // HTTPS (TlsUse::kHttpsServer); null: plain HTTP
  };
  using Handler = std::function<boost::asio::awaitable<HttpReply>(HttpExchange&)>;

  /// Serves on `acceptor` (bound and listening) of the io_context that runs it.
  HttpServer(boost::asio::ip::tcp::acceptor& acceptor, Options options, Handler handler);
  void start();
  /// Stops accepting and ends kept-alive connections after their request.
  void stop();

  const HttpServerCounters& counters() const noexcept { return shared_->counters; }

 private:
  // What sessions share with the server: held by each session too, so one
  // whose coroutine is destroyed after the server (at exit) still counts
  // itself out of something alive.
  struct Shared {
    explicit Shared(Options o) : options(std::move(o)) {}
    bool admit(const std::string& address);
    void release(const std::string& address);
    const Options options;
    HttpServerCounters counters;
    std::mutex mutex;  // guards the two below
    std::map<std::string, size_t> by_address;
    LogThrottle refusal_log;
    LogThrottle tls_log;
    std::atomic<bool> stopping{false};
  };

  boost::asio::awaitable<void> accept_loop();
  static boost::asio::awaitable<void> session(std::shared_ptr<Shared> shared, Handler handler,
                                              boost::asio::ip::tcp::socket socket, std::string address);
  template <class Stream>
  static boost::asio::awaitable<void> serve(Shared& shared, const Handler& handler, Stream& stream,
                                            HttpConnection& connection, const std::string& address,
                                            const std::optional<PeerIdentity>& peer_certificate);

  boost::asio::ip::tcp::acceptor& acceptor_;
  std::shared_ptr<Shared> shared_;
  Handler handler_;
};

/// Binds `address` (numeric host:port; port 0 picks one) and listens; throws
/// std::runtime_error "<what>: listen on <address>: <reason>" when it cannot.
void listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address, const std::string& what);

/// `GET /metrics` for a daemon whose own loop serves no HTTP (the agent, the
/// proxies): the one HTTP server on a thread of its own, so the system can be
/// scraped whatever that loop is doing, by several scrapers at once.
class MetricsServer {
 public:
  /// Throws std::runtime_error with the reason when it cannot listen.
  MetricsServer(const std::string& address, std::function<std::string()> text);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// The bound address (for port 0).
  std::string address() const;

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  const std::function<std::string()> text_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

}  // namespace monitor::net
