#include "agent/socket_receiver.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace monitor::agent {
namespace {
boost::system::error_code errno_code(int err) { return {err, boost::system::system_category()}; }


// mkdir -p of the socket's directory; an existing one is left as it is.
void make_parent_dirs(const std::string& path) noexcept {
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    ::mkdir(path.substr(0, slash).c_str(), 0755);
  }
}

// True when a process still receives on the socket at `addr`: connecting to a
// socket file whose agent died fails with ECONNREFUSED.
bool socket_is_served(const sockaddr_un& addr, int type) noexcept {
  const int probe = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  const bool served = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(probe);
  return served;
}
}  // namespace

boost::system::result<int> bind_unix_socket(const std::string& path, int type, gid_t group) noexcept {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) return errno_code(ENAMETOOLONG);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  try {
    make_parent_dirs(path);
  } catch (...) {
    return errno_code(ENOMEM);
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return errno_code(EEXIST);
    if (socket_is_served(addr, type)) return errno_code(EADDRINUSE);
    ::unlink(path.c_str());  // a socket file outlives its agent; the new agent takes the path
  }
  const int fd = ::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_code(errno);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_code(err);
  }
  // Clients of the ring's group may write; nobody else (same rule as the ring).
  if (group != static_cast<gid_t>(-1)) ::chown(path.c_str(), static_cast<uid_t>(-1), group);
  ::chmod(path.c_str(), 0660);
  return fd;
}

boost::system::result<SocketReceiver> SocketReceiver::bind(const std::string& path, int rcvbuf_bytes,
                                                           gid_t group) noexcept {
  const auto bound = bind_unix_socket(path, SOCK_DGRAM, group);
  if (!bound) return bound.error();
  const int fd = *bound;
  // FORCE works as root beyond rmem_max; otherwise fall back to what is allowed.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_bytes, sizeof rcvbuf_bytes) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof rcvbuf_bytes);
  }
  try {
    return SocketReceiver(fd, path);
  } catch (...) {
    ::close(fd);
    ::unlink(path.c_str());
    return errno_code(ENOMEM);
  }
}

boost::system::result<SocketReceiver> SocketReceiver::bind_udp(const std::string& address, int rcvbuf_bytes) noexcept {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) return errno_code(EINVAL);
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  const unsigned long port = std::strtoul(address.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port > 65535) return errno_code(EINVAL);
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof *v6;
  } else {
    return errno_code(EINVAL);
  }
  const int fd = ::socket(storage.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_code(errno);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_code(err);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_bytes, sizeof rcvbuf_bytes) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof rcvbuf_bytes);
  }
  try {
    return SocketReceiver(fd, "");
  } catch (...) {
    ::close(fd);
    return errno_code(ENOMEM);
  }
}

SocketReceiver::SocketReceiver(int fd, std::string path)
    : fd_(fd), path_(std::move(path)), buffers_(kBatch * kDatagramBytes), iovecs_(kBatch), msgs_(kBatch) {
  for (size_t i = 0; i < kBatch; ++i) {
    iovecs_[i] = iovec{buffers_.data() + i * kDatagramBytes, kDatagramBytes};
    msgs_[i] = mmsghdr{};
    msgs_[i].msg_hdr.msg_iov = &iovecs_[i];
    msgs_[i].msg_hdr.msg_iovlen = 1;
  }
}

SocketReceiver::SocketReceiver(SocketReceiver&& other) noexcept
    : fd_(other.fd_), path_(std::move(other.path_)), buffers_(std::move(other.buffers_)),
      iovecs_(std::move(other.iovecs_)), msgs_(std::move(other.msgs_)) {
  other.fd_ = -1;
  // iovecs point into buffers_, whose heap block moved with it; msgs point into iovecs_, likewise.
}

SocketReceiver::~SocketReceiver() {
  if (fd_ >= 0) {
    ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
}

int SocketReceiver::receive_batch() noexcept {
  for (auto& m : msgs_) m.msg_hdr.msg_flags = 0;
  const int n = ::recvmmsg(fd_, msgs_.data(), static_cast<unsigned>(kBatch), MSG_DONTWAIT, nullptr);
  return n < 0 ? 0 : n;
}

}  // namespace monitor::agent
