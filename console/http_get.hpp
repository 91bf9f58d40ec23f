#pragma once

#include <chrono>
#include <string>

#include <boost/system/result.hpp>

namespace monitor::console {

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

/// GET http://<host:port><target> with a deadline on the whole exchange.
[[nodiscard]] boost::system::result<HttpResponse> http_get(const std::string& address, const std::string& target,
                                                           std::chrono::seconds timeout);

}  // namespace monitor::console
