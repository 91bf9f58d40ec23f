// A Bonnie's registrations of new attrs of services that take them
// (auto_attrs): the first report of such an attr is routed at once and its
// registration queued; a thread of its own writes it to the registry (which
// may be slow or away) by compare-and-set, and the registry's watch then
// brings it back as a known attr. Past a service's bound, new attrs are
// refused and counted.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <stop_token>
#include <thread>
#include <utility>

#include "registry/registry.hpp"

namespace monitor::proxy {

class AttrRegistrar {
 public:
  explicit AttrRegistrar(registry::Registry& registry);
  ~AttrRegistrar();
  AttrRegistrar(const AttrRegistrar&) = delete;
  AttrRegistrar& operator=(const AttrRegistrar&) = delete;

  /// Whether a report of the new `attr` may be routed: it is queued already,
  /// or the service's `registered` attrs and those queued leave room under
  /// `bound` (then it is queued). False: refused, and counted.
  bool admit(const std::string& service, const std::string& attr, size_t registered, int64_t bound);

  /// Forgets the admitted attrs the registry now has (its watch says so).
  void drop_registered(const std::function<bool(const std::string& service, const std::string& attr)>& registered);

  uint64_t registered() const noexcept { return registered_.load(std::memory_order_relaxed); }
  uint64_t refused() const noexcept { return refused_.load(std::memory_order_relaxed); }
  size_t waiting() const;

 private:
  void run(std::stop_token stop);

  registry::Registry& registry_;
  mutable std::mutex mutex_;
  std::condition_variable_any wake_;  // woken at once by the stop token
  std::map<std::string, std::set<std::string>> pending_;  // service -> attrs admitted, not yet known
  std::deque<std::pair<std::string, std::string>> queue_;  // still to write
  std::set<std::pair<std::string, std::string>> full_;     // the registry refused them: at the bound
  std::atomic<uint64_t> registered_{0}, refused_{0};
  std::jthread thread_;  // last
};

}  // namespace monitor::proxy
