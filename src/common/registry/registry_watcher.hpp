#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/registry/registry.hpp"

namespace monitor::registry {

/// Reports a kind's entries whenever they change: added, removed, expired or
/// a different value (a refresh alone is no change). Polls the registry, so a
/// change is seen within one interval; the etcd backend will push instead.
/// Not thread-safe: one owner calls poll() from its loop (or a timer).
class RegistryWatcher {
 public:
  using OnChange = std::function<void(const std::vector<Entry>& entries)>;

  RegistryWatcher(Registry& registry, std::string kind, OnChange on_change)
      : registry_(registry), kind_(std::move(kind)), on_change_(std::move(on_change)) {}

  /// Reads the kind now; calls on_change if it differs from the last read (the
  /// first successful read always counts). Returns false if the read failed
  /// (the last known entries stay in force).
  bool poll();

  /// Polls every `interval` until `keep_going()` is false: for a thread of its own.
  void run(std::chrono::milliseconds interval, const std::function<bool()>& keep_going);

 private:
  Registry& registry_;
  const std::string kind_;
  const OnChange on_change_;
  std::optional<std::vector<Entry>> last_;  // compared without expiry times
};

}  // namespace monitor::registry
