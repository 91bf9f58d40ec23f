// The agent's dense ids for (service, attr) pairs, whatever path they came by.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/hash.hpp"

namespace monitor::agent {

/// Where a name was first seen: lines (the sockets, statsd) have a budget of
/// their own, so a flood of line names never takes the room of the SDK's.
enum class NameSource { kRing, kLines };

/// The agent's own ids for (service, attr) pairs, whatever path they came by
/// (ring or socket). Ids are dense from 1 and never reused. Not thread-safe.
class NameRegistry {
 public:
  /// Holds at most `max_names` pairs: input decides what is interned, and
  /// names are never forgotten, so the table needs a bound. Of them, at
  /// most `max_line_names` first seen in lines (0: max_names / 2).
  explicit NameRegistry(size_t max_names = 1'000'000, size_t max_line_names = 0)
      : max_names_(max_names), max_line_names_(max_line_names != 0 ? max_line_names : max_names / 2) {}

  /// The id of the pair, added if new; 0 when it is new and the registry is
  /// full, or lines' share of it is (counted in refused()). A small
  /// direct-mapped cache in front of the map serves the pairs a host repeats
  /// on every line.
  uint32_t intern(std::string_view service, std::string_view attr, NameSource source = NameSource::kRing) {
    const uint64_t hash = hash_name_pair(service, attr);
    CacheEntry& cached = cache_[hash % kCacheSize];
    if (cached.hash == hash && cached.id != 0 && names_[cached.id - 1].first == service &&
        names_[cached.id - 1].second == attr) {
      return cached.id;
    }
    const uint32_t id = intern_slow(service, attr, source);
    cached = CacheEntry{hash, id};
    return id;
  }
  std::string_view service(uint32_t id) const noexcept { return names_[id - 1].first; }
  std::string_view attr(uint32_t id) const noexcept { return names_[id - 1].second; }
  size_t size() const noexcept { return names_.size(); }
  size_t max_names() const noexcept { return max_names_; }
  size_t max_line_names() const noexcept { return max_line_names_; }
  /// Interns refused because the registry was full, since start.
  uint64_t refused() const noexcept { return refused_; }
  /// Per name id, its service's index (dense from 1; [0] unused): what a
  /// per-service limit counts by.
  const std::vector<uint32_t>& service_of_names() const noexcept { return service_of_; }

  /// Called with each new pair, in id order (the crash journal keeps them).
  void on_new_name(std::function<void(std::string_view service, std::string_view attr)> callback) {
    on_new_ = std::move(callback);
  }

 private:
  struct CacheEntry {
    uint64_t hash = 0;
    uint32_t id = 0;
  };
  static constexpr size_t kCacheSize = 1024;

  uint32_t intern_slow(std::string_view service, std::string_view attr, NameSource source);

  std::vector<CacheEntry> cache_ = std::vector<CacheEntry>(kCacheSize);
  std::unordered_map<std::string, uint32_t> ids_;  // "service attr" -> id
  std::vector<std::pair<std::string, std::string>> names_;
  std::vector<uint32_t> service_of_ = std::vector<uint32_t>(1, 0);
  std::unordered_map<std::string, uint32_t> service_ids_;
  std::string scratch_;
  size_t max_names_;
  size_t max_line_names_;
  size_t line_names_ = 0;  // names first seen in lines
  uint64_t refused_ = 0;
  std::function<void(std::string_view, std::string_view)> on_new_;
};

}  // namespace monitor::agent
