// One HTTP client for the judgers' query API: monitorctl's commands, the
// dashboard, and a judger reading another's minutes (a service that moved to
// it). Plain HTTP, or HTTPS with the server's certificate checked against a
// given CA and its address.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/system/result.hpp>

namespace boost::asio::ssl {
class context;
}

namespace monitor::net {

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

/// How this process reaches HTTPS servers: `ca` (PEM) is the only issuer
/// trusted for their certificates, which must name the host or address
/// connected to; `cert` and `key`, when given, are shown as a client
/// certificate. Throws std::runtime_error naming the file that does not load.
std::shared_ptr<boost::asio::ssl::context> make_https_client(const std::string& ca, const std::string& cert = {},
                                                             const std::string& key = {});

/// GET <host:port><target> with a deadline on the whole exchange, over HTTPS
/// when `https` is given; a body over `max_body` bytes is an error
/// (message_too_big), not an allocation. A `bearer` token goes in the
/// Authorization header.
[[nodiscard]] boost::system::result<HttpResponse> http_get(const std::string& address, const std::string& target,
                                                           std::chrono::milliseconds timeout,
                                                           size_t max_body = size_t{256} << 20,
                                                           const std::string& bearer = {},
                                                           boost::asio::ssl::context* https = nullptr);

}  // namespace monitor::net
