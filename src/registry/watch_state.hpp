// What a watch of either backend knows and tells: the last entries of each
// kind it follows, reported only when names or values change (a refresh of a
// live entry is no change), and whether the registry answers.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "registry/registry.hpp"

namespace monitor::registry {

class WatchState {
 public:
  WatchState(std::vector<std::string> kinds, Registry::OnChange on_change, Registry::OnReachable on_reachable)
      : kinds_(std::move(kinds)), on_change_(std::move(on_change)), on_reachable_(std::move(on_reachable)) {}

  const std::vector<std::string>& kinds() const noexcept { return kinds_; }

  /// Takes a kind's entries (sorted by name); reports them if they differ.
  void replace(const std::string& kind, std::vector<Entry> entries) {
    std::vector<std::pair<std::string, boost::json::value>> seen;
    seen.reserve(entries.size());
    for (const auto& e : entries) seen.emplace_back(e.name, e.value);
    auto& last = last_[kind];
    if (last && *last == seen) return;
    last = std::move(seen);
    if (on_change_) on_change_(kind, entries);
  }

  /// Reports a change of reachability (the first unreachable too).
  void set_reachable(bool reachable) {
    if (reachable_ == reachable) return;
    const bool first = !reachable_.has_value();
    reachable_ = reachable;
    if (first && reachable) return;  // nothing to tell: it answered from the start
    if (on_reachable_) on_reachable_(reachable);
  }

 private:
  const std::vector<std::string> kinds_;
  const Registry::OnChange on_change_;
  const Registry::OnReachable on_reachable_;
  std::map<std::string, std::optional<std::vector<std::pair<std::string, boost::json::value>>>> last_;
  std::optional<bool> reachable_;
};

}  // namespace monitor::registry
