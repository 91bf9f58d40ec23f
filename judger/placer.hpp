// Automatic placement, run by every judger, acted on by one: the live judger
// with the smallest name. It follows the registry by watching; when a judger's
// lease expires (it died, or stopped) its services go to the least-loaded live
// judgers, and a service without a judger gets one. Each move is a
// compare-and-set on the service's assignment, so two judgers that both
// believe they lead (for a moment) never move one service twice.
// `monitorctl placement manual` switches it off.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "registry/registry.hpp"

namespace monitor::judger {

class Placer {
 public:
  /// What the leader reports as Monitor.Registry (the system's own view of its parts).
  struct Figures {
    int64_t parts_live = 0, parts_gone = 0, judgers_live = 0, judgers_gone = 0, services_unassigned = 0;
    int64_t proxies_gone = 0, agents_gone = 0;
    uint64_t moves = 0;
    bool leader = false;
  };

  /// Starts watching. `grace`: how long after the start nothing is moved,
  /// so judgers restarted together all register before any is judged dead.
  Placer(registry::Registry& registry, std::string self, std::chrono::milliseconds grace);
  ~Placer();

  Figures figures() const;
  /// Whether the registry answered the watch last time.
  bool reachable() const noexcept { return reachable_.load(); }

 private:
  void on_change(const std::string& kind, const std::vector<registry::Entry>& entries);
  void place();  // the watch's thread

  registry::Registry& registry_;
  const std::string self_;
  const std::chrono::steady_clock::time_point act_after_;
  std::map<std::string, std::vector<registry::Entry>> known_;  // by kind; the watch's thread
  mutable std::mutex figures_mutex_;
  Figures figures_;  // GUARDED_BY(figures_mutex_)
  std::atomic<bool> reachable_{true};
  std::unique_ptr<registry::Watch> watch_;  // last: stopped first
};

}  // namespace monitor::judger
