// The judger's per-service series limit: at most N series (attr, server) of
// one service in one minute. A record that would open one more is refused
// before it is stored, so a server_id loop in one service, spread over many
// agents that each stay under their own limit, cannot exhaust a judger.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/hash.hpp"
#include "judger/name_table.hpp"

namespace monitor::judger {

class SeriesLimiter {
 public:
  /// `per_service` 0: no limit. `names` must outlive the limiter.
  SeriesLimiter(uint32_t per_service, const NameTable& names) : per_service_(per_service), names_(names) {}

  /// True when the series of (name, server) in `minute` is already open, or
  /// its service has room for one more (which it then counts).
  bool admit(uint32_t name, int64_t server, int64_t minute) {
    if (per_service_ == 0) return true;
    Minute& m = minutes_[minute];
    const uint64_t key =
        mix64(uint64_t{name} ^ 0x9E3779B97F4A7C15ULL, static_cast<uint64_t>(server) ^ 0xD6E8FEB86659FD93ULL);
    if (m.series.contains(key)) return true;
    const uint32_t service = service_of(name);
    if (m.per_service.size() <= service) m.per_service.resize(service + 1, 0);
    if (m.per_service[service] >= per_service_) return false;
    ++m.per_service[service];
    m.series.insert(key);
    return true;
  }

  /// Forgets minutes before `minute`: they are no longer open.
  void forget_before(int64_t minute) { minutes_.erase(minutes_.begin(), minutes_.lower_bound(minute)); }

  size_t open_minutes() const noexcept { return minutes_.size(); }

  /// Series of the busiest open minute (0 when there is no limit: then none are counted).
  size_t open_series() const noexcept {
    size_t most = 0;
    for (const auto& [minute, m] : minutes_) most = std::max(most, m.series.size());
    return most;
  }

 private:
  struct Minute {
    std::unordered_set<uint64_t> series;  // a hash of (name, server): a collision admits one series more, harmlessly
    std::vector<uint32_t> per_service;    // open series per service index
  };

  uint32_t service_of(uint32_t name) {
    while (service_of_name_.size() <= name) {
      const auto id = static_cast<uint32_t>(service_of_name_.size());
      const auto [it, fresh] = service_ids_.try_emplace(names_.service(id), static_cast<uint32_t>(service_ids_.size()));
      service_of_name_.push_back(it->second);
    }
    return service_of_name_[name];
  }

  const uint32_t per_service_;
  const NameTable& names_;
  std::map<int64_t, Minute> minutes_;
  std::vector<uint32_t> service_of_name_;  // name id -> service index
  std::unordered_map<std::string, uint32_t> service_ids_;
};

}  // namespace monitor::judger
