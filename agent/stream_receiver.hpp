// The agent's Unix stream socket for statsd clients, with a bound on clients.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

namespace monitor::agent {

/// A Unix stream socket taking newline-separated lines from up to
/// `max_connections` clients at once (statsd clients whose Unix socket is a
/// stream). fd() is an epoll descriptor, readable when a client connects or
/// sends. Move-only; closes everything and removes its path on destruction.
/// Not thread-safe.
class StreamReceiver {
 public:
  static constexpr size_t kReadBytes = 64 * 1024;
  /// A partial line longer than this is cut: its first bytes are handed on
  /// (so they are refused as too long and counted), the rest skipped.
  static constexpr size_t kMaxLineBytes = 1024;

  [[nodiscard]] static boost::system::result<StreamReceiver> bind(const std::string& path, gid_t group,
                                                                  uint32_t max_connections) noexcept;

  StreamReceiver(StreamReceiver&& other) noexcept;
  StreamReceiver& operator=(StreamReceiver&&) = delete;
  StreamReceiver(const StreamReceiver&) = delete;
  ~StreamReceiver();

  int fd() const noexcept { return epoll_fd_; }
  /// Connections closed at once because max_connections were open.
  uint64_t refused() const noexcept { return refused_; }
  /// Connections closed by close_idle().
  uint64_t idle_closed() const noexcept { return idle_closed_; }
  size_t connections() const noexcept { return open_; }

  /// Accepts waiting clients and reads what they sent, without blocking;
  /// calls on_lines(bytes) with whole lines only ('\n'-separated; a client's
  /// last line counts once it disconnects). Returns how many reads it did.
  /// `now_ns` (any clock close_idle() is given) marks the clients that sent.
  template <class OnLines>
  size_t receive(int64_t now_ns, OnLines&& on_lines) {
    now_ns_ = now_ns;
    size_t work = 0;
    int ready = 0;
    while ((ready = wait_ready()) > 0) {
      for (int i = 0; i < ready; ++i) {
        const uint64_t tag = ready_tags_[static_cast<size_t>(i)];
        if (tag == kListenerTag) {
          accept_waiting();
          ++work;
          continue;
        }
        Connection& c = connections_[tag];
        for (int reads = 0; reads < 4 && c.fd >= 0; ++reads, ++work) {
          const ReadResult r = read_some(c);
          c.last_active_ns = now_ns;
          if (!r.lines.empty()) on_lines(r.lines);
          if (!r.cut.empty()) on_lines(r.cut);
          if (r.closed) close_connection(tag);
          if (!r.more) break;
        }
      }
      if (static_cast<size_t>(ready) < ready_tags_.size()) break;
    }
    return work;
  }

  /// Closes the clients that sent nothing for `idle_ns` up to `now_ns`, so
  /// forgotten ones do not keep the max_connections slots from others; a
  /// partial last line is handed to on_lines, as when a client disconnects.
  /// Returns how many it closed.
  template <class OnLines>
  size_t close_idle(int64_t now_ns, int64_t idle_ns, OnLines&& on_lines) {
    size_t closed = 0;
    for (uint64_t tag = 0; tag < connections_.size(); ++tag) {
      Connection& c = connections_[tag];
      if (c.fd < 0 || now_ns - c.last_active_ns < idle_ns) continue;
      if (!c.skipping && !c.partial.empty()) on_lines(std::string_view(c.partial));
      close_connection(tag);
      ++idle_closed_;
      ++closed;
    }
    return closed;
  }

 private:
  static constexpr uint64_t kListenerTag = ~uint64_t{0};
  struct Connection {
    int fd = -1;
    std::string partial;  // bytes after the last newline, at most kMaxLineBytes
    bool skipping = false;  // inside a line that was cut: drop up to its newline
    int64_t last_active_ns = 0;  // accepted, or last read
  };
  struct ReadResult {
    std::string_view lines;
    std::string_view cut;  // the start of a line too long to keep
    bool closed = false;
    bool more = false;  // the read filled the buffer: there may be more
  };
  StreamReceiver(int listen_fd, int epoll_fd, std::string path, uint32_t max_connections);
  int wait_ready() noexcept;
  void accept_waiting() noexcept;
  ReadResult read_some(Connection& c);
  void close_connection(uint64_t tag) noexcept;

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  std::string path_;
  uint32_t max_connections_;
  std::vector<Connection> connections_;  // by tag; fd -1 when free
  size_t open_ = 0;
  uint64_t refused_ = 0;
  uint64_t idle_closed_ = 0;
  int64_t now_ns_ = 0;  // receive()'s, for the clients it accepts
  std::vector<uint64_t> ready_tags_;
  std::vector<char> buffer_;  // a partial line, then what one read brought
};

}  // namespace monitor::agent
