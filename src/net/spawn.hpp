// Starting detached coroutines whose failure is never silent.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

namespace monitor::net {

/// Exceptions that escaped a coroutine started by spawn() in this process.
/// Concurrency: any thread.
inline std::atomic<uint64_t>& escaped_exceptions() noexcept {
  static std::atomic<uint64_t> count{0};
  return count;
}

/// co_spawn with asio::detached's lifetime, except that an exception escaping
/// `task` is logged with `what` (naming the coroutine) and counted in
/// escaped_exceptions() instead of vanishing. The coroutine is over either
/// way: loops that must outlive a failing step catch per step (see guarded()).
template <class Executor>
void spawn(Executor&& executor, boost::asio::awaitable<void> task, std::string what) {
  boost::asio::co_spawn(std::forward<Executor>(executor), std::move(task),
                        [what = std::move(what)](std::exception_ptr failure) {
                          if (!failure) return;
                          escaped_exceptions().fetch_add(1, std::memory_order_relaxed);
                          try {
                            std::rethrow_exception(failure);
                          } catch (const std::exception& e) {
                            spdlog::error("{} ended by an exception: {}", what, e.what());
                          } catch (...) {
                            spdlog::error("{} ended by an exception of unknown type", what);
                          }
                        });
}

/// Runs one step of a long-lived loop (a tick, a refresh); an exception is
/// logged with `what`, counted in escaped_exceptions(), and the loop goes on.
/// Returns false when the step threw.
template <class Step>
bool guarded(const char* what, Step&& step) noexcept {
  try {
    std::forward<Step>(step)();
    return true;
  } catch (const std::exception& e) {
    escaped_exceptions().fetch_add(1, std::memory_order_relaxed);
    spdlog::error("{} failed: {}; going on", what, e.what());
  } catch (...) {
    escaped_exceptions().fetch_add(1, std::memory_order_relaxed);
    spdlog::error("{} failed with an exception of unknown type; going on", what);
  }
  return false;
}

}  // namespace monitor::net
