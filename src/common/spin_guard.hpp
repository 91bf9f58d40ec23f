// A scope that holds a process-local spin flag.
#pragma once

#include <atomic>

namespace monitor {

/// Holds `flag` for the scope, spinning until it is free. For rare, short
/// critical sections that a forked child must be able to reset (store false):
/// a mutex held by a thread that did not survive fork() cannot be.
/// Concurrency: any thread; not reentrant.
class SpinGuard {
 public:
  explicit SpinGuard(std::atomic<bool>& flag) noexcept : flag_(flag) {
    while (flag_.exchange(true, std::memory_order_acquire)) {
    }
  }
  ~SpinGuard() { flag_.store(false, std::memory_order_release); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  std::atomic<bool>& flag_;
};

}  // namespace monitor
