#include "agent/datagram_pump.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

namespace monitor::agent {

DatagramPump::DatagramPump(SocketReceiver receiver, size_t batches) : receiver_(std::move(receiver)) {
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::system_error(errno, std::system_category(), "eventfd");
  for (size_t i = 0; i < batches; ++i) {
    batches_.push_back(std::make_unique<Batch>());
    batches_.back()->datagrams.reserve(kMaxDatagrams);
    free_.push_back(batches_.back().get());
  }
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

DatagramPump::~DatagramPump() {
  stop();
  ::close(event_fd_);
}

void DatagramPump::stop() {
  thread_.request_stop();  // a wait for a free batch ends at once; a poll within 100 ms
  if (thread_.joinable()) thread_.join();
}

void DatagramPump::run(std::stop_token stop) {
  while (true) {
    Batch* batch = nullptr;
    {
      std::unique_lock lock(mutex_);
      // Every batch waits for the agent: let the socket's buffer take the load.
      free_cv_.wait(lock, stop, [&] { return !free_.empty(); });
      if (stop.stop_requested()) return;
      batch = free_.back();
      free_.pop_back();
    }
    batch->bytes.clear();
    batch->datagrams.clear();
    size_t got = 0;
    pollfd pfd{receiver_.fd(), POLLIN, 0};
    if (::poll(&pfd, 1, 100) > 0) {
      batch->received_ns = realtime_ns();
      // While the socket has more, the read goes on, up to a bound: fewer,
      // fuller hand-overs, each a wake-up of the agent's thread.
      while (true) {
        const size_t n = receiver_.receive([&](std::string_view bytes, bool truncated) {
          const auto offset = static_cast<uint32_t>(batch->bytes.size());
          batch->bytes.insert(batch->bytes.end(), bytes.begin(), bytes.end());
          batch->datagrams.push_back(Datagram{offset, static_cast<uint32_t>(bytes.size()), truncated});
        });
        got += n;
        if (n < SocketReceiver::kBatch || batch->datagrams.size() >= kMaxDatagrams ||
            batch->bytes.size() >= kMaxBytes) {
          break;
        }
      }
    }
    {
      std::lock_guard lock(mutex_);
      if (got == 0) {
        free_.push_back(batch);
      } else {
        ready_.push_back(batch);
      }
      if (stop.stop_requested()) return;
    }
    if (got != 0) {
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t w = ::write(event_fd_, &one, sizeof one);
    }
  }
}

DatagramPump::Batch* DatagramPump::take_ready() {
  std::lock_guard lock(mutex_);
  if (ready_.empty()) return nullptr;
  Batch* batch = ready_.front();
  ready_.pop_front();
  return batch;
}

void DatagramPump::give_back(Batch* batch) {
  {
    std::lock_guard lock(mutex_);
    free_.push_back(batch);
  }
  free_cv_.notify_one();
}

void DatagramPump::clear_event() noexcept {
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t r = ::read(event_fd_, &count, sizeof count);
}

}  // namespace monitor::agent
