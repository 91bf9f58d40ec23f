// Loopback TCP helpers for the benches that drive a real daemon: a sink that
// discards (the limit of one TCP hop) or plays a judger that only answers, a
// client connect, and the CPU time a process used.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "wire/byte_io.hpp"
#include "wire/frame.hpp"
#include "wire/messages.hpp"

extern char** environ;

namespace monitor::bench {

using namespace std::chrono_literals;
namespace wire = monitor::wire;

inline int listen_any(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
    throw std::runtime_error("bind");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

inline int connect_to(int port, std::chrono::seconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (true) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    ::close(fd);
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("connect");
    std::this_thread::sleep_for(50ms);
  }
}

inline bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// What a judger that stores nothing answers to `bytes` (the next of a
// connection's): HELLO_ACK, an ACK per BATCH, heartbeats; appended to `out`.
inline void answer_as_judger(wire::FrameDecoder& decoder, std::string_view bytes, std::string& out) {
  decoder.feed(bytes);
  wire::Frame frame{};
  while (decoder.next(frame) == wire::FrameDecoder::Status::kFrame) {
    if (frame.type == wire::FrameType::kHello) {
      wire::encode(out, wire::HelloAck{1, wire::Role::kJudger, "sink", 0});
    } else if (frame.type == wire::FrameType::kBatch) {
      wire::ByteReader r(frame.payload);  // sender and sequence lead the payload
      const uint64_t sender = r.u64le();
      const uint64_t sequence = r.u64le();
      wire::encode(out, wire::Ack{sender, sequence});
    } else if (frame.type == wire::FrameType::kHeartbeat) {
      wire::encode(out, wire::Heartbeat{1, 0, {}});
    }
  }
}

// A TCP server on its own thread: discards everything, or plays a judger that
// stores nothing and acknowledges every batch.
class Sink {
 public:
  enum class Mode { kDiscard, kJudger };
  explicit Sink(Mode mode) : mode_(mode), listen_fd_(listen_any(port_)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~Sink() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    if (conn_fd_ >= 0) ::shutdown(conn_fd_, SHUT_RDWR);
    thread_.join();
  }
  int port() const { return port_; }
  uint64_t bytes() const { return bytes_.load(); }

 private:
  void serve() {
    std::vector<char> buffer(1 << 20);
    while (!stop_) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      conn_fd_ = fd;
      wire::FrameDecoder decoder;
      std::string out;
      while (true) {
        const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n <= 0) break;
        bytes_ += static_cast<uint64_t>(n);
        if (mode_ == Mode::kDiscard) continue;
        out.clear();
        answer_as_judger(decoder, std::string_view(buffer.data(), static_cast<size_t>(n)), out);
        if (!out.empty() && !write_all(fd, out.data(), out.size())) break;
      }
      conn_fd_ = -1;
      ::close(fd);
    }
  }

  const Mode mode_;
  int port_ = 0;
  const int listen_fd_;
  std::atomic<int> conn_fd_{-1};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> bytes_{0};
  std::thread thread_;
};

/// Counts the ACK frames arriving on `fd`, on a thread of its own (when
/// `enabled`) that ends when the connection does.
class AckCounter {
 public:
  AckCounter(int fd, bool enabled) {
    if (!enabled) return;
    thread_ = std::thread([this, fd] {
      wire::FrameDecoder decoder;
      std::vector<char> buffer(1 << 16);
      while (true) {
        const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n <= 0) return;
        decoder.feed(std::string_view(buffer.data(), static_cast<size_t>(n)));
        wire::Frame frame{};
        while (decoder.next(frame) == wire::FrameDecoder::Status::kFrame) {
          if (frame.type != wire::FrameType::kAck) continue;
          const auto now = std::chrono::steady_clock::now();
          if (count_.load() > 0) {
            const auto gap = std::chrono::duration_cast<std::chrono::microseconds>(now - last_).count();
            if (gap > longest_gap_us_.load()) {
              longest_gap_us_ = gap;
              longest_gap_end_ns_ = monitor::realtime_ns();
            }
            gaps_us_.push_back(gap);
          }
          last_ = now;
          count_.fetch_add(1);
        }
      }
    });
  }
  ~AckCounter() { join(); }
  AckCounter(const AckCounter&) = delete;
  int64_t count() const noexcept { return count_.load(); }
  /// The longest time between two ACKs: how long the receiver stalled.
  int64_t longest_gap_us() const noexcept { return longest_gap_us_.load(); }
  /// When the longest gap ended (wall clock, ns): a pause at a minute's end is the roll-up's.
  int64_t longest_gap_end_ns() const noexcept { return longest_gap_end_ns_.load(); }
  /// The `q` quantile of the times between ACKs (0 if none); after join().
  int64_t gap_quantile_us(double q) const {
    if (gaps_us_.empty()) return 0;
    std::vector<int64_t> sorted = gaps_us_;
    std::sort(sorted.begin(), sorted.end());
    return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())))];
  }
  /// Waits for the thread; shut the connection down first.
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> longest_gap_us_{0};
  std::atomic<int64_t> longest_gap_end_ns_{0};
  std::chrono::steady_clock::time_point last_;  // the counter's thread only
  std::vector<int64_t> gaps_us_;                 // the counter's thread, then after join()
  std::thread thread_;
};

/// A daemon started with posix_spawn, stopped with SIGTERM when destroyed.
class DaemonProcess {
 public:
  explicit DaemonProcess(std::vector<std::string> argv) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) != 0) {
      throw std::runtime_error("cannot start " + argv[0]);
    }
  }
  ~DaemonProcess() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  DaemonProcess(const DaemonProcess&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

inline double cpu_seconds(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return 0;
  char buf[1024] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || n == 0) return 0;
  unsigned long utime = 0, stime = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace monitor::bench
