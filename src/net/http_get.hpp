// One HTTP client for the judgers' query API: monitorctl's commands, and a
// judger reading another's minutes (a service that moved to it).
#pragma once

#include <chrono>
#include <string>

#include <boost/system/result.hpp>

namespace monitor::net {

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

/// GET http://<host:port><target> with a deadline on the whole exchange; a
/// body over `max_body` bytes is an error (message_too_big), not an allocation.
/// A `bearer` token goes in the Authorization header.
[[nodiscard]] boost::system::result<HttpResponse> http_get(const std::string& address, const std::string& target,
                                                           std::chrono::milliseconds timeout,
                                                           size_t max_body = size_t{256} << 20,
                                                           const std::string& bearer = {});

}  // namespace monitor::net
