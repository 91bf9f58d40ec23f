// Binding the agent's Unix sockets, with their modes and groups.
#pragma once

#include <sys/types.h>

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

namespace monitor::agent {

/// Binds a Unix socket of `type` (SOCK_DGRAM, SOCK_STREAM) at `path`,
/// non-blocking, mode 0660 and group `group` (-1: the process's own),
/// creating its directory (0755) if missing. A socket file left by a dead
/// agent is replaced; a socket that a live process still serves gives
/// EADDRINUSE; any other file, EEXIST. Returns the descriptor.
[[nodiscard]] boost::system::result<int> bind_unix_socket(const std::string& path, int type, gid_t group) noexcept;

/// A bound Unix datagram (or UDP) socket read in batches with recvmmsg. Move-only;
/// closes the socket and removes its path on destruction. Not thread-safe.
class SocketReceiver {
 public:
  static constexpr size_t kBatch = 64;
  static constexpr size_t kDatagramBytes = 64 * 1024;

  /// Binds `path` with a receive buffer of `rcvbuf_bytes`, mode 0660 and
  /// group `group` (-1: the process's own), creating its directory (0755) if
  /// missing. A socket file left by a dead agent is replaced; a socket that a
  /// live process still serves gives EADDRINUSE; any other file, EEXIST.
  [[nodiscard]] static boost::system::result<SocketReceiver> bind(const std::string& path, int rcvbuf_bytes,
                                                                  gid_t group = static_cast<gid_t>(-1)) noexcept;

  /// Binds a UDP socket on `address` ("127.0.0.1:8125", "[::1]:8125"): the
  /// same lines, for clients that cannot open a Unix datagram socket (Node's
  /// dgram, statsd clients). EINVAL for an address that is not numeric host:port.
  [[nodiscard]] static boost::system::result<SocketReceiver> bind_udp(const std::string& address,
                                                                      int rcvbuf_bytes) noexcept;

  SocketReceiver(SocketReceiver&& other) noexcept;
  SocketReceiver& operator=(SocketReceiver&&) = delete;
  SocketReceiver(const SocketReceiver&) = delete;
  ~SocketReceiver();

  int fd() const noexcept { return fd_; }

  /// Reads up to kBatch waiting datagrams without blocking and calls
  /// on_datagram(std::string_view bytes, bool truncated) for each. Returns how
  /// many it read.
  template <class OnDatagram>
  size_t receive(OnDatagram&& on_datagram) {
    const int n = receive_batch();
    for (int i = 0; i < n; ++i) {
      const bool truncated = (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
      on_datagram(std::string_view(buffers_.data() + i * kDatagramBytes,
                                   std::min<size_t>(msgs_[i].msg_len, kDatagramBytes)),
                  truncated);
    }
    return n > 0 ? static_cast<size_t>(n) : 0;
  }

 private:
  SocketReceiver(int fd, std::string path);
  int receive_batch() noexcept;

  int fd_ = -1;
  std::string path_;
  std::vector<char> buffers_;
  std::vector<iovec> iovecs_;
  std::vector<mmsghdr> msgs_;
};

}  // namespace monitor::agent
