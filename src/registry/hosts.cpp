#include "registry/hosts.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <boost/json.hpp>

#include "registry/groups.hpp"

namespace monitor::registry {
namespace {

int64_t int_of(const boost::json::object& obj, const char* key, int64_t fallback) {
  const auto* v = obj.if_contains(key);
  return v != nullptr && v->is_int64() ? v->as_int64() : fallback;
}

}  // namespace

boost::system::result<std::vector<HostInfo>> read_hosts(Registry& registry) {
  auto agents = registry.list("agents");
  if (!agents) return agents.error();
  std::vector<HostInfo> out;
  std::set<std::string> live;
  for (const auto& entry : *agents) {
    const auto* obj = entry.value.if_object();
    if (obj == nullptr) continue;
    HostInfo h;
    h.agent = entry.name;
    h.live = true;
    if (const auto* host = obj->if_contains("host"); host != nullptr && host->is_string()) h.host = host->as_string();
    if (const auto* dc = obj->if_contains("dc"); dc != nullptr && dc->is_string()) h.dc = dc->as_string();
    if (const auto* ips = obj->if_contains("ips"); ips != nullptr && ips->is_array()) {
      for (const auto& ip : ips->as_array()) {
        if (ip.is_string()) h.ips.emplace_back(ip.as_string());
      }
    }
    h.server_id = int_of(*obj, "server_id", -1);
    h.last_report_s = int_of(*obj, "last_report_s", 0);
    h.batches_sent = int_of(*obj, "batches_sent", 0);
    h.spooled = int_of(*obj, "spooled", 0);
    live.insert(h.agent);
    out.push_back(std::move(h));
  }
  std::sort(out.begin(), out.end(), [](const HostInfo& a, const HostInfo& b) {
    return std::tie(a.host, a.agent) < std::tie(b.host, b.agent);
  });
  // Hosts recorded by an agent that is not live now: they stay in their groups.
  auto recorded = registry.list(std::string(kHostsKind));
  if (!recorded) return recorded.error();
  for (const auto& entry : *recorded) {
    const bool has_live_agent = std::any_of(out.begin(), out.end(), [&](const HostInfo& h) { return h.host == entry.name; });
    const auto* obj = entry.value.if_object();
    if (has_live_agent || obj == nullptr) continue;
    HostInfo stopped;
    stopped.host = entry.name;
    stopped.server_id = int_of(*obj, "server_id", -1);
    out.push_back(std::move(stopped));
  }
  auto parts = registry.list("parts");
  if (!parts) return parts.error();
  for (const auto& entry : *parts) {
    if (!entry.name.starts_with("agent.") || live.contains(entry.name.substr(6))) continue;
    HostInfo gone;
    gone.agent = entry.name.substr(6);
    out.push_back(std::move(gone));
  }
  return out;
}

std::optional<int64_t> parse_server_id(std::string_view text) {
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id < 0) return std::nullopt;
  return id;
}

boost::system::result<int64_t> server_id_of(Registry& registry, const std::string& text) {
  if (const auto id = parse_server_id(text)) return *id;
  // A live agent of the host says its id now; the record (hosts/) stands for a host whose agent stopped.
  auto agents = registry.list("agents");
  if (!agents) return agents.error();
  std::set<int64_t> ids;
  for (const auto& [host, id] : host_servers({}, *agents)) {
    if (host == text) ids.insert(id);
  }
  if (ids.empty()) {
    auto recorded = registry.list(std::string(kHostsKind));
    if (!recorded) return recorded.error();
    for (const auto& [host, id] : host_servers(*recorded, {})) {
      if (host == text) ids.insert(id);
    }
  }
  if (ids.size() != 1) return make_error_code(RegistryErrc::kBadEntry);
  return *ids.begin();
}

}  // namespace monitor::registry
