// Receives datagrams (statsd, native lines) on a thread of its own, handing them to the agent's thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/socket_receiver.hpp"
#include "common/clock.hpp"

namespace monitor::agent {

/// Reads a datagram socket on a thread of its own, so the kernel's share of
/// receiving (a system call and a copy per datagram, more than parsing a
/// datagram of short statsd lines) runs beside the agent's thread, which
/// parses and aggregates what it hands over. At most `batches` reads of up to
/// kMaxDatagrams datagrams wait; past that the thread waits, the
/// socket's buffer fills, and the kernel drops and counts what does not fit,
/// as it would for an agent that reads the socket itself.
///
/// fd() becomes readable when a read is waiting; drain() runs on the agent's
/// thread. What is waiting when the process is killed is lost, like what is
/// in the socket's buffer.
class DatagramPump {
 public:
  DatagramPump(SocketReceiver receiver, size_t batches = 8);
  ~DatagramPump();
  DatagramPump(const DatagramPump&) = delete;
  DatagramPump& operator=(const DatagramPump&) = delete;

  /// An eventfd: readable while reads wait to be drained.
  int fd() const noexcept { return event_fd_; }

  /// Calls on_datagram(bytes, truncated, received_ns) for every datagram
  /// read so far, in order; returns how many.
  template <class OnDatagram>
  size_t drain(OnDatagram&& on_datagram) {
    clear_event();
    size_t n = 0;
    while (Batch* batch = take_ready()) {
      for (const Datagram& d : batch->datagrams) {
        on_datagram(std::string_view(batch->bytes.data() + d.offset, d.size), d.truncated, batch->received_ns);
      }
      n += batch->datagrams.size();
      give_back(batch);
    }
    return n;
  }

  /// Stops the thread, then reads what is left in the socket on the
  /// caller's thread (a stopping agent takes everything it was sent).
  template <class OnDatagram>
  size_t stop_and_drain(OnDatagram&& on_datagram) {
    stop();
    size_t n = drain(on_datagram);
    const int64_t now = realtime_ns();
    while (const size_t got = receiver_.receive([&](std::string_view bytes, bool truncated) {
             on_datagram(bytes, truncated, now);
           })) {
      n += got;
    }
    return n;
  }

 private:
  struct Datagram {
    uint32_t offset;
    uint32_t size;
    bool truncated;
  };
  struct Batch {
    std::vector<char> bytes;
    std::vector<Datagram> datagrams;
    int64_t received_ns = 0;
  };
  // A read goes on while the socket has more, until it holds this many
  // datagrams or bytes (one more recvmmsg may pass the byte bound).
  static constexpr size_t kMaxDatagrams = 4 * SocketReceiver::kBatch;
  static constexpr size_t kMaxBytes = 256 * 1024;

  void run(std::stop_token stop);
  void stop();
  Batch* take_ready();
  void give_back(Batch* batch);
  void clear_event() noexcept;

  SocketReceiver receiver_;
  int event_fd_ = -1;
  std::vector<std::unique_ptr<Batch>> batches_;
  std::mutex mutex_;
  std::condition_variable_any free_cv_;  // woken at once by the stop token
  std::vector<Batch*> free_;
  std::deque<Batch*> ready_;
  std::jthread thread_;
};

}  // namespace monitor::agent
