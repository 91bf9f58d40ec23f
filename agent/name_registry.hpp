#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace monitor::agent {

/// The agent's own ids for (service, attr) pairs, whatever path they came by
/// (ring or socket). Ids are dense from 1 and never reused. Not thread-safe.
class NameRegistry {
 public:
  uint32_t intern(std::string_view service, std::string_view attr);
  std::string_view service(uint32_t id) const noexcept { return names_[id - 1].first; }
  std::string_view attr(uint32_t id) const noexcept { return names_[id - 1].second; }
  size_t size() const noexcept { return names_.size(); }

 private:
  std::unordered_map<std::string, uint32_t> ids_;  // "service attr" -> id
  std::vector<std::pair<std::string, std::string>> names_;
  std::string scratch_;
};

}  // namespace monitor::agent
