// The judger's one POST client (net/http_post) against replies no target
// should send: it says what went wrong, and one reply's wreckage never
// reaches the next post.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "net/http_post.hpp"

namespace {

// Answers each connection with the next of `replies`, then closes it.
class CannedServer {
 public:
  explicit CannedServer(std::vector<std::string> replies) : replies_(std::move(replies)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener_, 8) == 0);
    socklen_t size = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size);
    url_ = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/write";
    thread_ = std::thread([this] {
      for (const std::string& reply : replies_) {
        const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        char buffer[4096];
        std::string request;
        while (request.find("\r\n\r\n") == std::string::npos) {
          pollfd pfd{fd, POLLIN, 0};
          if (::poll(&pfd, 1, 2000) <= 0) break;
          const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
          if (n <= 0) break;
          request.append(buffer, static_cast<size_t>(n));
        }
        (void)::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
        ::shutdown(fd, SHUT_WR);
        pollfd pfd{fd, POLLIN, 0};
        while (::poll(&pfd, 1, 200) > 0 && ::recv(fd, buffer, sizeof buffer, 0) > 0) {
        }
        ::close(fd);
      }
    });
  }
  ~CannedServer() {
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  const std::string& url() const { return url_; }

 private:
  std::vector<std::string> replies_;
  int listener_ = -1;
  std::string url_;
  std::thread thread_;
};

std::string regression_input(const std::string& name) {
  std::ifstream in(std::string(MONITOR_SOURCE_DIR) + "/fuzz/corpus/export_reply/" + name, std::ios::binary);
  REQUIRE(in);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace

// Found by export_reply_fuzz: libcurl 7.88 (Debian 12) read freed memory
// when one handle, reset between posts, took a malformed reply and then one
// with a folded header line. Under ASan (scripts/sanitize.sh) this aborted.
TEST_CASE("issue 23: a target's malformed replies are errors, and the next post is not harmed by the last",
          "[net][http][issue23][failure]") {
  // The fuzzer's two inputs, in the order that broke it.
  const std::string malformed = regression_input("regression-uaf-1-malformed");
  const std::string folded = regression_input("regression-uaf-2-folded");
  CannedServer server({malformed, folded, "HTTP/1.1 204 No Content\r\n\r\n"});
  monitor::net::HttpPoster poster;
  for (int i = 0; i < 2; ++i) {
    const auto reply = poster.post(server.url(), "x", {"Content-Type: text/plain"}, 5);
    CHECK_FALSE(reply.ok());
    CHECK_FALSE(reply.error.empty());
  }
  const auto fine = poster.post(server.url(), "x", {"Content-Type: text/plain"}, 5);
  CHECK(fine.ok());
  CHECK(fine.status == 204);
}
