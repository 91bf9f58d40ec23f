#include "registry/parts.hpp"

#include <map>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "registry/placement.hpp"

namespace monitor::registry {
namespace {

std::string mib(int64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

std::string health_of(const std::string& role, const boost::json::value& value) {
  const auto* obj = value.if_object();
  if (obj == nullptr) return "-";
  auto num = [&](const boost::json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v != nullptr && v->is_number() ? v->to_number<double>() : 0.0;
  };
  if (role == "judger") {
    const auto* load = obj->if_contains("load");
    if (load == nullptr || !load->is_object()) return "-";
    const auto& l = load->as_object();
    return fmt::format("cpu {:.1f}%, rss {}, {:.0f} reports/s, {:.0f} series, {:.0f} services", num(l, "cpu_percent"),
                       mib(static_cast<int64_t>(num(l, "rss_bytes"))), num(l, "reports_per_s"), num(l, "series"),
                       num(l, "services"));
  }
  std::string out;
  for (const auto& [key, v] : *obj) {
    if (key == "address" || key == "query" || !v.is_number()) continue;
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", std::string_view(key), boost::json::serialize(v));
  }
  return out.empty() ? "-" : out;
}

}  // namespace

boost::system::result<std::vector<PartState>> read_part_states(Registry& registry) {
  std::map<std::string, PartState> rows;  // by "role.name"
  auto declared = registry.list(kPartsKind);
  if (!declared) return declared.error();
  for (const auto& part : *declared) {
    const size_t dot = part.name.find('.');
    if (dot == std::string::npos) continue;
    PartState& row = rows[part.name];
    row.role = part.name.substr(0, dot);
    row.name = part.name.substr(dot + 1);
    const auto* obj = part.value.if_object();
    if (obj != nullptr && obj->contains("declared") && !obj->contains("registered")) row.state = "declared";
  }
  for (const auto& [role, kind] : std::vector<std::pair<std::string, std::string>>{
           {"agent", "agents"}, {"proxy", "proxies"}, {"judger", "judgers"}}) {
    auto live = registry.list(kind);
    if (!live) return live.error();
    for (const auto& entry : *live) {
      PartState& row = rows[role + "." + entry.name];
      row.role = role;
      row.name = entry.name;
      row.state = "live";
      if (const auto* obj = entry.value.if_object()) {
        if (const auto* a = obj->if_contains("address"); a != nullptr && a->is_string()) row.address = a->as_string();
        if (const auto* r = obj->if_contains("role"); r != nullptr && r->is_string()) row.role = r->as_string();
      }
      row.health = health_of(role, entry.value);
    }
  }
  std::vector<PartState> out;
  for (auto& [key, row] : rows) out.push_back(std::move(row));
  return out;
}

}  // namespace monitor::registry
