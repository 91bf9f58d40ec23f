// A part's own live entry (a judger, a proxy, an agent), kept fresh from a
// thread of its own so that a registry that is slow or away never stalls the
// part's event loop: the part hands it the latest value; the thread refreshes
// the entry every TTL/3, retries with back-off while the registry is away,
// logs when it goes and comes back, and registers again when it returns (also
// after etcd lost its data). It also leaves a static trace, parts/<role>.<name>,
// so `monitorctl status` can tell a part that is gone from one never seen.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <stop_token>
#include <thread>

#include <boost/json/value.hpp>

#include "registry/registry.hpp"

namespace monitor::registry {

class LiveRegistration {
 public:
  LiveRegistration(Registry& registry, std::string role, std::string kind, std::string name,
                   std::chrono::milliseconds ttl);
  /// Removes the live entry (a graceful stop: it vanishes at once).
  ~LiveRegistration();
  LiveRegistration(const LiveRegistration&) = delete;
  LiveRegistration& operator=(const LiveRegistration&) = delete;

  /// The value to publish from now on; the first call starts registering.
  void update(boost::json::value value);

  /// Whether the last attempt reached the registry.
  bool reachable() const noexcept { return reachable_.load(std::memory_order_relaxed); }
  /// Attempts that failed so far.
  uint64_t failures() const noexcept { return failures_.load(std::memory_order_relaxed); }

 private:
  void run(std::stop_token stop);
  bool refresh(const boost::json::value& value);

  Registry& registry_;
  const std::string role_, kind_, name_;
  const std::chrono::milliseconds ttl_;
  std::atomic<bool> reachable_{true};
  std::atomic<uint64_t> failures_{0};
  bool traced_ = false;  // parts/<role>.<name> written since the registry last answered; thread only
  std::mutex mutex_;
  std::condition_variable_any wake_;         // woken at once by the stop token
  std::optional<boost::json::value> value_;  // GUARDED_BY(mutex_)
  std::jthread thread_;                      // last: started once the rest is built
};

}  // namespace monitor::registry
