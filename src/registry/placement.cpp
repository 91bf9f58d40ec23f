#include "registry/placement.hpp"

#include <algorithm>
#include <cstdint>
#include <tuple>

namespace monitor::registry {
namespace {

double number(const boost::json::object& obj, std::string_view key) {
  const auto* v = obj.if_contains(key);
  return v != nullptr && v->is_number() ? v->to_number<double>() : 0;
}

std::string text(const boost::json::object& obj, std::string_view key) {
  const auto* v = obj.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

boost::system::result<std::vector<JudgerInfo>> read_judgers(Registry& registry) {
  std::map<std::string, JudgerInfo> by_name;
  auto parts = registry.list(kPartsKind);
  if (!parts) return parts.error();
  for (const auto& entry : *parts) {
    if (!entry.name.starts_with("judger.")) continue;
    JudgerInfo& j = by_name[entry.name.substr(7)];
    j.name = entry.name.substr(7);
    j.declared = true;
    const auto* obj = entry.value.if_object();
    j.ran = obj != nullptr && obj->contains("registered");
  }
  auto live = registry.list("judgers");
  if (!live) return live.error();
  for (const auto& entry : *live) {
    JudgerInfo& j = by_name[entry.name];
    j.name = entry.name;
    j.live = true;
    if (const auto* obj = entry.value.if_object()) {
      j.address = text(*obj, "address");
      j.query = text(*obj, "query");
      if (const auto* load = obj->if_contains("load"); load != nullptr && load->is_object()) {
        const auto& l = load->as_object();
        j.cpu_percent = number(l, "cpu_percent");
        j.reports_per_s = number(l, "reports_per_s");
        j.rss_bytes = static_cast<int64_t>(number(l, "rss_bytes"));
        j.series = static_cast<int64_t>(number(l, "series"));
        j.open_minutes = static_cast<int64_t>(number(l, "open_minutes"));
      }
    }
  }
  auto assignments = registry.list("assignments");
  if (!assignments) return assignments.error();
  for (const auto& entry : *assignments) {
    const auto* obj = entry.value.if_object();
    const std::string judger = obj != nullptr ? text(*obj, "judger") : "";
    if (judger.empty() || !is_valid_key(judger)) continue;
    JudgerInfo& j = by_name[judger];
    j.name = judger;
    ++j.services;
  }
  std::vector<JudgerInfo> out;
  for (auto& [name, j] : by_name) out.push_back(std::move(j));
  return out;
}

std::optional<std::string> least_loaded(const std::vector<JudgerInfo>& judgers) {
  const JudgerInfo* best = nullptr;
  for (const auto& j : judgers) {
    if (!j.live) continue;
    if (best == nullptr || std::tie(j.services, j.reports_per_s, j.name) <
                               std::tie(best->services, best->reports_per_s, best->name)) {
      best = &j;
    }
  }
  return best != nullptr ? std::optional<std::string>(best->name) : std::nullopt;
}

bool auto_placement(Registry& registry) {
  auto setting = registry.get("settings", "placement");
  if (!setting || !*setting) return true;
  const auto* obj = (*setting)->value.if_object();
  return obj == nullptr || text(*obj, "mode") != "manual";
}

boost::json::object moved_assignment(const boost::json::value& old, const std::string& to, int64_t now_s) {
  constexpr size_t kHistory = 16;
  boost::json::array history;
  std::string from;
  if (const auto* obj = old.if_object()) {
    from = text(*obj, "judger");
    if (const auto* h = obj->if_contains("history"); h != nullptr && h->is_array()) history = h->as_array();
  }
  if (!from.empty() && from != to) history.push_back(boost::json::object{{"judger", from}, {"until_s", now_s}});
  while (history.size() > kHistory) history.erase(history.begin());
  boost::json::object out{{"judger", to}};
  if (!history.empty()) out["history"] = std::move(history);
  return out;
}

std::string assigned_judger(const boost::json::value& assignment) {
  const auto* obj = assignment.if_object();
  return obj != nullptr ? text(*obj, "judger") : std::string();
}

boost::system::result<std::string> judger_query(Registry& registry, const std::string& judger) {
  auto entry = registry.get("judgers", judger);
  if (!entry) return entry.error();
  const auto* obj = *entry ? (*entry)->value.if_object() : nullptr;
  return obj != nullptr ? text(*obj, "query") : std::string();
}

std::vector<std::string> judgers_holding(const boost::json::value& assignment, int64_t from_s, int64_t to_s) {
  std::vector<std::string> out;
  const auto* obj = assignment.if_object();
  if (obj == nullptr) return out;
  auto add = [&](std::string judger) {
    if (!judger.empty() && std::find(out.begin(), out.end(), judger) == out.end()) out.push_back(std::move(judger));
  };
  // Each move in the history ends its judger's tenure and starts the next one's.
  struct Tenure {
    std::string judger;
    int64_t since, until;
  };
  std::vector<Tenure> tenures;
  int64_t since = INT64_MIN;
  if (const auto* h = obj->if_contains("history"); h != nullptr && h->is_array()) {
    for (const auto& entry : h->as_array()) {
      const auto* move = entry.if_object();
      if (move == nullptr || !move->contains("until_s")) continue;
      const auto until = static_cast<int64_t>(number(*move, "until_s"));
      tenures.push_back({text(*move, "judger"), since, until});
      since = until;
    }
  }
  // Both ends count: a Bonnie that has not seen a move yet routes a few more
  // seconds to the judger it left, so one that left at from_s may hold some.
  auto meets = [&](const Tenure& t) { return t.until >= from_s && t.since <= to_s; };
  if (const Tenure now{text(*obj, "judger"), since, INT64_MAX}; meets(now)) add(now.judger);
  for (auto it = tenures.rbegin(); it != tenures.rend(); ++it) {
    if (meets(*it)) add(it->judger);
  }
  return out;
}

}  // namespace monitor::registry
