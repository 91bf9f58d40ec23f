// Every part of the system the registry knows: live (its address and health
// in words), gone (its lease expired) or declared (never ran). What
// `monitorctl status`, the daily report and the dashboard's health page show.
#pragma once

#include <string>
#include <vector>

#include <boost/system/result.hpp>

#include "registry/registry.hpp"

namespace monitor::registry {

struct PartState {
  std::string role, name, state = "gone", address = "-", health = "-";
};

[[nodiscard]] boost::system::result<std::vector<PartState>> read_part_states(Registry& registry);

}  // namespace monitor::registry
