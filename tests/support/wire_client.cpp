#include "support/wire_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <memory>
#include <thread>

#include <boost/asio/ssl/context.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

namespace monitor::test {
namespace {

// An HTTP/1.1 chunked body decoded; `complete` says whether its last chunk came.
std::string dechunk(const std::string& raw, bool& complete) {
  std::string body;
  size_t at = 0;
  complete = false;
  while (at < raw.size()) {
    const size_t line_end = raw.find("\r\n", at);
    if (line_end == std::string::npos) break;
    char* end = nullptr;
    const unsigned long size = std::strtoul(raw.c_str() + at, &end, 16);
    if (end == raw.c_str() + at) break;
    if (size == 0) {
      complete = true;
      break;
    }
    const size_t data = line_end + 2;
    if (data + size + 2 > raw.size()) {
      body.append(raw, data, std::string::npos);
      break;
    }
    body.append(raw, data, size);
    at = data + size + 2;
  }
  return body;
}

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}
}  // namespace

WireClient::WireClient(int port, std::chrono::milliseconds timeout, const std::string& source) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!source.empty()) {
      sockaddr_in from{};
      from.sin_family = AF_INET;
      if (::inet_pton(AF_INET, source.c_str(), &from.sin_addr) != 1 ||
          ::bind(fd_, reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0) {
        ::close(fd_);
        throw std::runtime_error("cannot bind a client socket to " + source);
      }
    }
    const sockaddr_in addr = loopback(port);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return;
    ::close(fd_);
    fd_ = -1;
    if (std::chrono::steady_clock::now() >= deadline) throw std::runtime_error("cannot connect to the judger");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

WireClient::~WireClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool WireClient::send(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::optional<WireClient::Received> WireClient::read_frame(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[65536];
  while (true) {
    wire::Frame frame{};
    const auto status = decoder_.next(frame);
    if (status == wire::FrameDecoder::Status::kFrame) return Received{frame.type, std::string(frame.payload)};
    if (status == wire::FrameDecoder::Status::kError) return std::nullopt;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) {
      peer_closed_ = true;
      return std::nullopt;
    }
    decoder_.feed(std::string_view(buffer, static_cast<size_t>(n)));
  }
}

HttpReply http_get(int port, const std::string& target, std::chrono::milliseconds patience) {
  return http_request(port, "GET", target, "", "", patience);
}

namespace {

std::string request_text(const std::string& method, const std::string& target, const std::string& body,
                         const std::string& extra_headers) {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

HttpReply parse_reply(const std::string& response) {
  HttpReply reply;
  if (response.rfind("HTTP/1.1 ", 0) != 0) return reply;
  reply.status = std::atoi(response.c_str() + 9);
  const size_t body_at = response.find("\r\n\r\n");
  if (body_at != std::string::npos) {
    reply.headers = response.substr(0, body_at);
    reply.body = response.substr(body_at + 4);
  }
  std::string lower = reply.headers;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    reply.chunked = true;
    reply.body = dechunk(reply.body, reply.complete);
  }
  return reply;
}

}  // namespace

HttpReply http_request(int port, const std::string& method, const std::string& target, const std::string& body,
                       const std::string& extra_headers, std::chrono::milliseconds patience, const std::string& source) {
  WireClient client(port, std::chrono::seconds(5), source);
  if (!client.send(request_text(method, target, body, extra_headers))) return {};
  std::string response;
  char buffer[65536];
  while (true) {
    pollfd pfd{client.fd(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(patience.count())) <= 0) break;
    const ssize_t n = ::recv(client.fd(), buffer, sizeof buffer, 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  return parse_reply(response);
}

HttpReply https_request(int port, boost::asio::ssl::context& context, const std::string& method,
                        const std::string& target, const std::string& body, const std::string& extra_headers,
                        std::chrono::milliseconds patience) {
  WireClient client(port, std::chrono::seconds(5));
  // Blocking reads with a timeout: OpenSSL reads the socket itself.
  const timeval tv{static_cast<time_t>(patience.count() / 1000), static_cast<suseconds_t>(patience.count() % 1000 * 1000)};
  ::setsockopt(client.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(context.native_handle()), SSL_free);
  SSL_set_fd(ssl.get(), client.fd());
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), "127.0.0.1");
  if (SSL_connect(ssl.get()) != 1) return {};
  const std::string request = request_text(method, target, body, extra_headers);
  if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) <= 0) return {};
  std::string response;
  char buffer[65536];
  int n = 0;
  while ((n = SSL_read(ssl.get(), buffer, sizeof buffer)) > 0) response.append(buffer, static_cast<size_t>(n));
  return parse_reply(response);
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace monitor::test
