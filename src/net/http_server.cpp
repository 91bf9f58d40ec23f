#include "net/http_server.hpp"

#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "net/endpoint.hpp"
#include "net/spawn.hpp"

namespace monitor::net {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

namespace {

template <class Stream>
class Connection final : public HttpConnection {
 public:
  explicit Connection(Stream& stream) : stream_(stream) {}
  asio::awaitable<bool> write(std::string_view bytes, std::chrono::milliseconds timeout) override {
    boost::beast::get_lowest_layer(stream_).expires_after(timeout);
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()), kNoThrow);
    co_return !ec;
  }
  tcp::socket& socket() override { return boost::beast::get_lowest_layer(stream_).socket(); }

 private:
  Stream& stream_;
};

}  // namespace

void listen_on(tcp::acceptor& acceptor, const std::string& address, const std::string& what) {
  const auto endpoint = parse_endpoint(address);
  if (!endpoint) throw std::runtime_error(fmt::format("{}: address {} is not a numeric host:port", what, address));
  boost::system::error_code ec;
  acceptor.open(endpoint->protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(*endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: listen on {}: {}", what, address, ec.message()));
}

HttpServer::HttpServer(tcp::acceptor& acceptor, Options options, Handler handler)
    : acceptor_(acceptor), shared_(std::make_shared<Shared>(std::move(options))), handler_(std::move(handler)) {}

void HttpServer::start() {
  spawn(acceptor_.get_executor(), accept_loop(), "the " + shared_->options.name + " listener");
}

void HttpServer::stop() { shared_->stopping = true; }

bool HttpServer::Shared::admit(const std::string& address) {
  std::lock_guard lock(mutex);
  size_t& mine = by_address[address];
  // Each connection holds a coroutine and buffers: one client opening them
  // without end must not take the server from everybody else.
  if (static_cast<size_t>(counters.live.load()) < options.max_connections && mine < options.max_per_address) {
    ++mine;
    ++counters.live;
    return true;
  }
  const size_t from_there = mine;
  if (mine == 0) by_address.erase(address);
  ++counters.connections_refused;
  uint64_t suppressed = 0;
  if (refusal_log.allow(realtime_ns(), suppressed)) {
    spdlog::warn("refused a {} connection from {}: {} are open, {} of them from there (max_connections {}, {} per "
                 "address; {} refused so far)",
                 options.name, address, counters.live.load(), from_there, options.max_connections,
                 options.max_per_address, counters.connections_refused.load());
  }
  return false;
}

void HttpServer::Shared::release(const std::string& address) {
  std::lock_guard lock(mutex);
  if (auto it = by_address.find(address); it != by_address.end() && --it->second == 0) by_address.erase(it);
  --counters.live;
}

asio::awaitable<void> HttpServer::accept_loop() {
  auto shared = shared_;
  while (!shared->stopping) {
    auto [ec, socket] = co_await acceptor_.async_accept(kNoThrow);
    if (ec) {
      if (shared->stopping || !acceptor_.is_open()) co_return;
      continue;
    }
    boost::system::error_code address_ec;
    std::string address = socket.remote_endpoint(address_ec).address().to_string();
    if (!shared->admit(address)) {
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    ++shared->counters.connections;
    spawn(acceptor_.get_executor(), session(shared, handler_, std::move(socket), std::move(address)),
          "an " + shared->options.name + " session");
  }
}

asio::awaitable<void> HttpServer::session(std::shared_ptr<Shared> shared, Handler handler, tcp::socket socket,
                                          std::string address) {
  // Released however the session ends.
  struct Admitted {
    Shared& shared;
    const std::string& address;
    ~Admitted() { shared.release(address); }
  } admitted{*shared, address};
  boost::beast::tcp_stream tcp(std::move(socket));
  if (!shared->options.tls) {
    Connection<boost::beast::tcp_stream> connection(tcp);
    co_await serve(*shared, handler, tcp, connection, address, std::nullopt);
    boost::system::error_code ignored;
    tcp.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  // The context as it is now: a SIGHUP's new certificate is for later connections.
  const auto context = shared->options.tls->current();
  boost::beast::ssl_stream<boost::beast::tcp_stream> stream(std::move(tcp), *context);
  stream.next_layer().expires_after(shared->options.read_timeout);
  if (auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kNoThrow); ec) {
    // Plain HTTP sent to an HTTPS port, a client certificate that does not
    // verify, a client that never finishes: its connection, nobody else's.
    ++shared->counters.tls_failures;
    std::unique_lock lock(shared->mutex);
    uint64_t suppressed = 0;
    if (shared->tls_log.allow(realtime_ns(), suppressed)) {
      lock.unlock();
      spdlog::warn("{}: TLS handshake with {} failed: {} ({} so far)", shared->options.name, address, ec.message(),
                   shared->counters.tls_failures.load());
    }
    co_return;
  }
  const std::optional<PeerIdentity> peer = certificate_identity(SSL_get0_peer_certificate(stream.native_handle()));
  Connection<decltype(stream)> connection(stream);
  co_await serve(*shared, handler, stream, connection, address, peer);
  boost::system::error_code ignored;
  stream.next_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
}

template <class Stream>
asio::awaitable<void> HttpServer::serve(Shared& shared, const Handler& handler, Stream& stream,
                                        HttpConnection& connection, const std::string& address,
                                        const std::optional<PeerIdentity>& peer_certificate) {
  const Options& options = shared.options;
  HttpServerCounters& counters = shared.counters;
  auto& tcp = boost::beast::get_lowest_layer(stream);
  boost::beast::flat_buffer buffer;
  while (!shared.stopping) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.max_body);
    parser.header_limit(static_cast<uint32_t>(options.max_header));
    // An idle kept-alive connection, or a client that does not finish its request in time, is dropped.
    tcp.expires_after(options.read_timeout);
    auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    if (read_ec) {
      // A client that closed between requests is not a bad request.
      if (read_ec != http::error::end_of_stream && read_ec != asio::error::eof &&
          read_ec != asio::ssl::error::stream_truncated) {
        ++counters.bad_requests;
        if (read_ec == http::error::body_limit) {
          http::response<http::string_body> refusal{http::status::payload_too_large, 11};
          refusal.set(http::field::content_type, "application/json");
          refusal.body() = fmt::format(R"({{"error":"the body is over {} bytes"}})", options.max_body);
          refusal.keep_alive(false);
          refusal.prepare_payload();
          tcp.expires_after(options.write_timeout);
          co_await http::async_write(stream, refusal, kNoThrow);
        }
      }
      co_return;
    }
    ++counters.requests;
    auto& request = parser.get();
    HttpExchange exchange{request, connection, address, peer_certificate};
    HttpReply reply = co_await handler(exchange);
    if (reply.written) co_return;
    http::response<http::string_body> response{static_cast<http::status>(reply.status), request.version()};
    response.set(http::field::content_type, reply.content_type);
    for (const auto& [name, value] : reply.headers) response.set(name, value);
    response.keep_alive(options.keep_alive && request.keep_alive() && !shared.stopping);
    response.body() = std::move(reply.body);
    response.prepare_payload();
    tcp.expires_after(options.write_timeout);
    auto [write_ec, write_n] = co_await http::async_write(stream, response, kNoThrow);
    if (write_ec || !response.keep_alive()) co_return;
  }
}

MetricsServer::MetricsServer(const std::string& address, std::function<std::string()> text)
    : acceptor_(io_), text_(std::move(text)) {
  listen_on(acceptor_, address, "metrics");
  HttpServer::Options options;
  options.name = "metrics";
  options.max_connections = 32;
  options.max_per_address = 8;
  options.read_timeout = std::chrono::seconds(5);
  options.write_timeout = std::chrono::seconds(10);
  options.max_body = 0;
  server_ = std::make_unique<HttpServer>(acceptor_, options, [this](HttpExchange& exchange) -> asio::awaitable<HttpReply> {
    const auto& request = exchange.request;
    if (request.method() != http::verb::get || request.target() != "/metrics") {
      co_return HttpReply{404, "text/plain", "only GET /metrics\n", {}, false};
    }
    co_return HttpReply{200, "text/plain; version=0.0.4; charset=utf-8", text_(), {}, false};
  });
  server_->start();
  thread_ = std::thread([this] { io_.run(); });
}

MetricsServer::~MetricsServer() {
  asio::post(io_, [this] {
    server_->stop();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

std::string MetricsServer::address() const {
  boost::system::error_code ec;
  const auto endpoint = acceptor_.local_endpoint(ec);
  return ec ? std::string() : format_endpoint(endpoint);
}

}  // namespace monitor::net
