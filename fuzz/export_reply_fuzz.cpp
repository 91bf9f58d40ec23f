// libFuzzer target: what an export target (VictoriaMetrics, InfluxDB) or a
// webhook answers the judger, read by its one POST client (net/http_post,
// libcurl). The input is the reply's bytes on the wire, sent by a server on
// loopback that then closes. Nothing may crash or hang; the body kept is
// bounded; an answer is ok() only when it is whole and 2xx, and a reply
// that is not ok() says why.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "net/http_post.hpp"

namespace {

// One listening socket for the fuzzer's life; each connection gets the reply
// being tried.
class ReplyServer {
 public:
  ReplyServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(listener_, 16) != 0) {
      std::abort();
    }
    socklen_t size = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size);
    url_ = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/api/v1/import";
    std::thread([this] { serve(); }).detach();
  }
  const std::string& url() const { return url_; }
  void set_reply(std::string reply) {
    std::lock_guard lock(mutex_);
    reply_ = std::move(reply);
  }

 private:
  void serve() {
    for (;;) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      // The request: its head and the one-byte body the fuzzer posts.
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos || request.size() < request.find("\r\n\r\n") + 5) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 1000) <= 0) break;
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
      }
      std::string reply;
      {
        std::lock_guard lock(mutex_);
        reply = reply_;
      }
      (void)::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      ::shutdown(fd, SHUT_WR);
      pollfd pfd{fd, POLLIN, 0};
      while (::poll(&pfd, 1, 200) > 0 && ::recv(fd, buffer, sizeof buffer, 0) > 0) {
      }
      ::close(fd);
    }
  }

  int listener_ = -1;
  std::string url_;
  std::mutex mutex_;
  std::string reply_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ReplyServer server;
  static monitor::net::HttpPoster poster;
  server.set_reply(std::string(reinterpret_cast<const char*>(data), size));
  const auto reply = poster.post(server.url(), "x", {"Content-Type: text/plain"}, 2);
  if (reply.body.size() > monitor::net::HttpPoster::kMaxReplyBody) std::abort();
  if (reply.ok() && !(reply.answered && reply.status >= 200 && reply.status < 300)) std::abort();
  if (!reply.ok() && reply.error.empty()) std::abort();
  return 0;
}
