// The judger's (service, attr) names, interned once to dense ids: records,
// cells and pending rows carry the id, so ingest never hashes a string per
// record. The store persists the table (names first used by a batch are
// written in that batch's transaction), so ids are stable across restarts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace monitor::judger {

class NameTable {
 public:
  /// The pair's id, from 0 in order of first use.
  uint32_t intern(std::string_view service, std::string_view attr) {
    const auto [it, fresh] = ids_.try_emplace(key(service, attr), static_cast<uint32_t>(names_.size()));
    if (fresh) names_.emplace_back(service, attr);
    return it->second;
  }

  /// True when the pair was interned.
  bool contains(std::string_view service, std::string_view attr) { return ids_.contains(key(service, attr)); }

  /// Names of an id returned by intern().
  const std::string& service(uint32_t id) const { return names_.at(id).first; }
  const std::string& attr(uint32_t id) const { return names_.at(id).second; }
  size_t size() const noexcept { return names_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> names_;
  std::unordered_map<std::string, uint32_t> ids_;  // "service attr"
  std::string key_;

  // "service attr": a space cannot occur in a valid name.
  const std::string& key(std::string_view service, std::string_view attr) {
    return key_.assign(service).append(1, ' ').append(attr);
  }
};

}  // namespace monitor::judger
