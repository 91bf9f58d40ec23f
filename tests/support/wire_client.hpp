// A blocking client speaking the wire protocol, for end-to-end tests.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "wire/frame.hpp"

namespace boost::asio::ssl {
class context;
}

namespace monitor::test {

class WireClient {
 public:
  /// Connects to 127.0.0.1:port, retrying for up to `timeout`, from
  /// `source` (another loopback address, "127.0.0.2", to be another client
  /// address; empty: the kernel's choice). Throws on failure.
  WireClient(int port, std::chrono::milliseconds timeout, const std::string& source = "");
  ~WireClient();
  WireClient(const WireClient&) = delete;

  /// Writes all bytes; false if the peer is gone.
  bool send(const std::string& bytes);

  struct Received {
    wire::FrameType type;
    std::string payload;
  };
  /// The next frame, or nullopt on timeout, a closed connection or a bad frame.
  std::optional<Received> read_frame(std::chrono::milliseconds timeout);

  /// True once the peer closed the connection (a read returned 0).
  bool peer_closed() const noexcept { return peer_closed_; }
  int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
  wire::FrameDecoder decoder_;
  bool peer_closed_ = false;
};

/// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

/// GET http://127.0.0.1:port/target; the status and body, or status 0 if no
/// answer (nothing received for `patience`).
struct HttpReply {
  int status = 0;
  std::string body;     // decoded when it came chunked
  std::string headers;  // the status line and headers, as received
  bool chunked = false;
  bool complete = true;  // false: a chunked body that ended before its last chunk
};
HttpReply http_get(int port, const std::string& target,
                   std::chrono::milliseconds patience = std::chrono::seconds(5));
/// Any method, with a body and extra header lines ("Cookie: a=b\r\n").
HttpReply http_request(int port, const std::string& method, const std::string& target, const std::string& body = "",
                       const std::string& extra_headers = "",
                       std::chrono::milliseconds patience = std::chrono::seconds(5), const std::string& source = "");
/// The same over HTTPS: the server's certificate checked against `context`'s
/// CA (net::make_https_client, with a client certificate if it has one) and
/// against 127.0.0.1. Status 0 when the handshake fails.
HttpReply https_request(int port, boost::asio::ssl::context& context, const std::string& method,
                        const std::string& target, const std::string& body = "", const std::string& extra_headers = "",
                        std::chrono::milliseconds patience = std::chrono::seconds(5));

}  // namespace monitor::test
