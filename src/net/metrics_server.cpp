#include "net/metrics_server.hpp"

#include <chrono>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "net/endpoint.hpp"

namespace monitor::net {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::asio::ip::tcp;

// One request per connection, one connection at a time: a scraper asks once
// every few seconds, and a client that stalls is dropped after 5 s.
asio::awaitable<void> serve(tcp::acceptor& acceptor, const std::function<std::string()>& text) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (!acceptor.is_open()) co_return;
      continue;
    }
    boost::beast::tcp_stream stream(std::move(socket));
    boost::beast::flat_buffer buffer;
    http::request_parser<http::empty_body> parser;
    parser.header_limit(8192);
    stream.expires_after(std::chrono::seconds(5));
    auto [read_ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (read_ec) continue;
    const auto& request = parser.get();
    const bool found = request.method() == http::verb::get && request.target() == "/metrics";
    http::response<http::string_body> response{found ? http::status::ok : http::status::not_found, request.version()};
    response.set(http::field::content_type, found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
    response.keep_alive(false);
    response.body() = found ? text() : "only GET /metrics\n";
    response.prepare_payload();
    co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
}

}  // namespace

MetricsServer::MetricsServer(const std::string& address, std::function<std::string()> text)
    : acceptor_(io_), text_(std::move(text)) {
  const auto endpoint = parse_endpoint(address);
  if (!endpoint) throw std::runtime_error(fmt::format("metrics address {}: not a numeric host:port", address));
  boost::system::error_code ec;
  acceptor_.open(endpoint->protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(*endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("metrics: listen on {}: {}", address, ec.message()));
  asio::co_spawn(io_, serve(acceptor_, text_), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

MetricsServer::~MetricsServer() {
  asio::post(io_, [this] {
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
