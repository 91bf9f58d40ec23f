#include "net/http_get.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace monitor::net {

boost::system::result<HttpResponse> http_get(const std::string& address, const std::string& target,
                                             std::chrono::milliseconds timeout, size_t max_body,
                                             const std::string& bearer) {
  namespace asio = boost::asio;
  namespace http = boost::beast::http;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return boost::system::error_code(EINVAL, boost::system::system_category());
  asio::io_context io;
  boost::beast::tcp_stream stream(io);
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  HttpResponse out;
  // Async operations run under one deadline: a judger that hangs cannot hang us.
  stream.expires_after(timeout);
  resolver.async_resolve(address.substr(0, colon), address.substr(colon + 1), [&](auto rec, auto results) {
    if (rec) {
      ec = rec;
      return;
    }
    stream.async_connect(results, [&](auto cec, auto) {
      if (cec) {
        ec = cec;
        return;
      }
      auto request = std::make_shared<http::request<http::empty_body>>(http::verb::get, target, 11);
      request->set(http::field::host, address);
      if (!bearer.empty()) request->set(http::field::authorization, "Bearer " + bearer);
      http::async_write(stream, *request, [&, request](auto wec, size_t) {
        if (wec) {
          ec = wec;
          return;
        }
        auto buffer = std::make_shared<boost::beast::flat_buffer>();
        auto parser = std::make_shared<http::response_parser<http::string_body>>();
        parser->body_limit(max_body);
        http::async_read(stream, *buffer, *parser, [&, buffer, parser](auto rec2, size_t) {
          if (rec2) {
            ec = rec2;
            return;
          }
          out.status = parser->get().result_int();
          out.body = std::move(parser->get().body());
        });
      });
    });
  });
  io.run();
  if (ec) return ec;
  return out;
}

}  // namespace monitor::net
