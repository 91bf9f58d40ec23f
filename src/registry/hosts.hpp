// The hosts the registry knows, from their agents' live entries
// (agents/<host>-<sender>: host name, server id, addresses, last report) and
// the traces of agents that stopped (parts/agent.<name>): what `monitorctl
// host list/show` shows, and how a host name stands for its server id.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "registry/registry.hpp"

namespace monitor::registry {

struct HostInfo {
  std::string agent;  // the agent's entry name; empty for a recorded host with no live agent
  std::string host;   // empty for an agent gone (its entry left with it)
  int64_t server_id = -1;
  std::vector<std::string> ips;
  std::string dc;
  int64_t last_report_s = 0;
  int64_t batches_sent = 0, spooled = 0;
  bool live = false;
};

/// Live agents first (by host name), then hosts recorded (hosts/) with no live
/// agent (agent empty), then agents gone (host empty).
[[nodiscard]] boost::system::result<std::vector<HostInfo>> read_hosts(Registry& registry);

/// `text` as a server id (digits only, in int64 range), or nullopt.
std::optional<int64_t> parse_server_id(std::string_view text);

/// The server id `text` names: a number, or a host name: its live agents' id,
/// or with none live its record's (hosts/); kBadEntry if no host has the name,
/// or its live agents have different server ids.
[[nodiscard]] boost::system::result<int64_t> server_id_of(Registry& registry, const std::string& text);

}  // namespace monitor::registry
