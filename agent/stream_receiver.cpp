#include "agent/stream_receiver.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/socket_receiver.hpp"

namespace monitor::agent {

boost::system::result<StreamReceiver> StreamReceiver::bind(const std::string& path, gid_t group,
                                                           uint32_t max_connections) noexcept {
  const auto bound = bind_unix_socket(path, SOCK_STREAM, group);
  if (!bound) return bound.error();
  const int listen_fd = *bound;
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerTag;
  if (epoll_fd < 0 || ::listen(listen_fd, 128) != 0 || ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
    const int err = errno;
    if (epoll_fd >= 0) ::close(epoll_fd);
    ::close(listen_fd);
    ::unlink(path.c_str());
    return boost::system::error_code(err, boost::system::system_category());
  }
  try {
    return StreamReceiver(listen_fd, epoll_fd, path, max_connections);
  } catch (...) {
    ::close(epoll_fd);
    ::close(listen_fd);
    ::unlink(path.c_str());
    return boost::system::error_code(ENOMEM, boost::system::system_category());
  }
}

StreamReceiver::StreamReceiver(int listen_fd, int epoll_fd, std::string path, uint32_t max_connections)
    : listen_fd_(listen_fd), epoll_fd_(epoll_fd), path_(std::move(path)), max_connections_(max_connections),
      ready_tags_(64), buffer_(kMaxLineBytes + kReadBytes) {}

StreamReceiver::StreamReceiver(StreamReceiver&& other) noexcept
    : listen_fd_(other.listen_fd_), epoll_fd_(other.epoll_fd_), path_(std::move(other.path_)),
      max_connections_(other.max_connections_), connections_(std::move(other.connections_)), open_(other.open_),
      refused_(other.refused_), ready_tags_(std::move(other.ready_tags_)), buffer_(std::move(other.buffer_)) {
  other.listen_fd_ = -1;
  other.epoll_fd_ = -1;
  other.open_ = 0;
}

StreamReceiver::~StreamReceiver() {
  for (const Connection& c : connections_) {
    if (c.fd >= 0) ::close(c.fd);
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
}

int StreamReceiver::wait_ready() noexcept {
  epoll_event events[64];
  const int n = ::epoll_wait(epoll_fd_, events, 64, 0);
  for (int i = 0; i < n; ++i) ready_tags_[static_cast<size_t>(i)] = events[i].data.u64;
  return n < 0 ? 0 : n;
}

void StreamReceiver::accept_waiting() noexcept {
  while (true) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: none left; EMFILE and the like: tried again on the next wake
    if (open_ >= max_connections_) {
      // Every slot is taken: a client that cannot be served is told at once
      // (its next write fails) rather than left waiting.
      ::close(fd);
      ++refused_;
      continue;
    }
    size_t tag = 0;
    while (tag < connections_.size() && connections_[tag].fd >= 0) ++tag;
    try {
      if (tag == connections_.size()) connections_.emplace_back();
    } catch (...) {
      ::close(fd);
      ++refused_;
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = tag;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      ++refused_;
      continue;
    }
    connections_[tag] = Connection{fd, {}, false, now_ns_};
    ++open_;
  }
}

StreamReceiver::ReadResult StreamReceiver::read_some(Connection& c) {
  // The partial line goes first, so lines never straddle two callbacks.
  const size_t kept = c.partial.size();
  std::memcpy(buffer_.data(), c.partial.data(), kept);
  const ssize_t n = ::recv(c.fd, buffer_.data() + kept, kReadBytes, MSG_DONTWAIT);
  ReadResult result;
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    // Gone: what it sent last is a line even without its newline.
    result.closed = true;
    if (!c.skipping && kept != 0) result.lines = std::string_view(buffer_.data(), kept);
    c.partial.clear();
    return result;
  }
  if (n < 0) return result;
  result.more = static_cast<size_t>(n) == kReadBytes;
  std::string_view data(buffer_.data(), kept + static_cast<size_t>(n));
  if (c.skipping) {
    const size_t newline = data.find('\n');
    if (newline == std::string_view::npos) return result;
    data.remove_prefix(newline + 1);
    c.skipping = false;
  }
  const size_t last_newline = data.rfind('\n');
  std::string_view tail = last_newline == std::string_view::npos ? data : data.substr(last_newline + 1);
  if (last_newline != std::string_view::npos) result.lines = data.substr(0, last_newline + 1);
  if (tail.size() > kMaxLineBytes) {
    // Handed on cut, so it is refused as too long and counted; its rest is skipped.
    c.skipping = true;
    c.partial.clear();
    result.cut = tail.substr(0, kMaxLineBytes + 1);
    return result;
  }
  c.partial.assign(tail);
  return result;
}

void StreamReceiver::close_connection(uint64_t tag) noexcept {
  Connection& c = connections_[tag];
  if (c.fd < 0) return;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  c.fd = -1;
  c.partial.clear();
  c.skipping = false;
  --open_;
}

}  // namespace monitor::agent
