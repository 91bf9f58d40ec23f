// Groups of hosts (groups/<name>): host name globs and server id ranges, and
// the rule templates bound to them (docs/rules.md, "Templates and groups").
// And the durable record of each host's server id (hosts/<host name>), which
// a group's globs are matched against: written by the host's agent, kept when
// the agent stops, so a silent host stays in its groups (and its `nodata`
// alarms fire) until `monitorctl host rm` forgets it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include "registry/registry.hpp"

namespace monitor::registry {

inline constexpr std::string_view kGroupsKind = "groups";
inline constexpr std::string_view kTemplatesKind = "templates";  // templates/<name>: {"text", "extends"}
inline constexpr std::string_view kHostsKind = "hosts";          // hosts/<host>: {"server_id", "first_seen_s", "seen_s"}

struct Group {
  std::string name;
  std::vector<std::string> hosts;                      // fnmatch globs of host names
  std::vector<std::pair<int64_t, int64_t>> servers;    // inclusive id ranges
  std::vector<std::string> templates;                  // bound, in the order bound
};

/// "7" or "100-199" as an inclusive range; nullopt otherwise.
std::optional<std::pair<int64_t, int64_t>> parse_server_range(std::string_view text);

boost::json::object group_value(const Group& group);
/// Nullopt when `value` does not have a group's shape.
std::optional<Group> group_from_value(const std::string& name, const boost::json::value& value);

/// Host name -> server ids: every hosts/ record and every live agent's entry.
using HostServers = std::multimap<std::string, int64_t>;
HostServers host_servers(const std::vector<Entry>& hosts, const std::vector<Entry>& agents);

/// Server id -> its host names joined by ',' (one, almost always): what
/// messages and pages show beside a server id.
std::map<int64_t, std::string> host_names_by_server(const HostServers& hosts);

/// Which servers a group holds now: `contains()` for a server id.
class GroupMembers {
 public:
  GroupMembers() = default;
  GroupMembers(const Group& group, const HostServers& hosts);
  bool contains(int64_t server) const;
  const std::set<int64_t>& by_host() const noexcept { return by_host_; }
  const std::vector<std::pair<int64_t, int64_t>>& ranges() const noexcept { return ranges_; }

 private:
  std::set<int64_t> by_host_;
  std::vector<std::pair<int64_t, int64_t>> ranges_;
};

/// Writes hosts/<host> = server id unless it says so already (compare-and-set;
/// a host's agent calls it at start). False with the reason in `error`.
bool record_host(Registry& registry, const std::string& host, int64_t server_id, std::string& error);

}  // namespace monitor::registry
