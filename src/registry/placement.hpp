// Which judger takes a service: the live judgers with their load, and the
// least loaded of them. Shared by monitorctl (a service added without a
// judger) and the judgers' automatic placement (a dead judger's services).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "registry/registry.hpp"

namespace monitor::registry {

struct JudgerInfo {
  std::string name;
  bool live = false;      // its lease is current
  bool declared = false;  // known in parts/: added with `monitorctl judger add`, or registered once
  bool ran = false;       // registered itself at least once
  std::string address, query;
  double cpu_percent = 0, reports_per_s = 0;
  int64_t rss_bytes = 0, series = 0, open_minutes = 0;
  size_t services = 0;  // assigned to it in the registry
};

/// Every judger that is live, declared, or owns a service; by name.
[[nodiscard]] boost::system::result<std::vector<JudgerInfo>> read_judgers(Registry& registry);

/// The live judger with the fewest assigned services (then the fewest
/// reports/s, then by name); nullopt if none is live.
std::optional<std::string> least_loaded(const std::vector<JudgerInfo>& judgers);

/// The registry's placement mode: true (auto, the default) unless
/// settings/placement says {"mode": "manual"}.
bool auto_placement(Registry& registry);

/// The assignment value after moving a service to `to`: the judger it leaves
/// joins the history ({"judger", "until_s"}, the last 16 moves), so a query
/// knows which judgers hold minutes of the service from before a move.
boost::json::object moved_assignment(const boost::json::value& old, const std::string& to, int64_t now_s);

/// The judger an assignment value names; "" when it names none.
std::string assigned_judger(const boost::json::value& assignment);

/// The query address (host:port) of a judger, from its live entry; "" when
/// it is not live (or registered none).
[[nodiscard]] boost::system::result<std::string> judger_query(Registry& registry, const std::string& judger);

/// The judgers that may hold reports of a service timed in [from_s, to_s],
/// from its assignment's history of moves: the current one first (when it
/// held it by `to_s`), then those it left at or after `from_s`, most recent
/// first. For the queries of a range and for the alarm engine's minute split
/// by a move alike.
std::vector<std::string> judgers_holding(const boost::json::value& assignment, int64_t from_s,
                                         int64_t to_s = INT64_MAX);

/// The kind where parts leave a static trace of themselves, so one that is
/// gone (lease expired) is still known: "<role>.<name>" -> {"role", "name", ...}.
inline constexpr std::string_view kPartsKind = "parts";

}  // namespace monitor::registry
