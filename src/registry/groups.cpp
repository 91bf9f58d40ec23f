#include "registry/groups.hpp"

#include <fnmatch.h>

#include <charconv>
#include <ctime>

#include <boost/json.hpp>

namespace monitor::registry {
namespace {

std::optional<int64_t> parse_id(std::string_view text) {
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id < 0) return std::nullopt;
  return id;
}

}  // namespace

std::optional<std::pair<int64_t, int64_t>> parse_server_range(std::string_view text) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    const auto id = parse_id(text);
    if (!id) return std::nullopt;
    return std::pair{*id, *id};
  }
  const auto low = parse_id(text.substr(0, dash));
  const auto high = parse_id(text.substr(dash + 1));
  if (!low || !high || *low > *high) return std::nullopt;
  return std::pair{*low, *high};
}

boost::json::object group_value(const Group& group) {
  boost::json::array hosts, servers, templates;
  for (const auto& h : group.hosts) hosts.emplace_back(h);
  for (const auto& [low, high] : group.servers) {
    servers.emplace_back(low == high ? std::to_string(low) : std::to_string(low) + "-" + std::to_string(high));
  }
  for (const auto& t : group.templates) templates.emplace_back(t);
  return {{"hosts", std::move(hosts)}, {"servers", std::move(servers)}, {"templates", std::move(templates)}};
}

std::optional<Group> group_from_value(const std::string& name, const boost::json::value& value) {
  const auto* obj = value.if_object();
  if (obj == nullptr) return std::nullopt;
  Group group;
  group.name = name;
  auto strings = [&](const char* key, auto&& take) {
    const auto* list = obj->if_contains(key);
    if (list == nullptr) return true;
    if (!list->is_array()) return false;
    for (const auto& item : list->as_array()) {
      if (!item.is_string() || !take(std::string(item.as_string()))) return false;
    }
    return true;
  };
  const bool ok = strings("hosts", [&](std::string s) { group.hosts.push_back(std::move(s)); return !group.hosts.back().empty(); }) &&
                  strings("servers", [&](const std::string& s) {
                    const auto range = parse_server_range(s);
                    if (range) group.servers.push_back(*range);
                    return range.has_value();
                  }) &&
                  strings("templates", [&](std::string s) { group.templates.push_back(std::move(s)); return true; });
  if (!ok) return std::nullopt;
  return group;
}

HostServers host_servers(const std::vector<Entry>& hosts, const std::vector<Entry>& agents) {
  HostServers out;
  auto add = [&](const std::string& host, int64_t id) {
    auto [first, last] = out.equal_range(host);
    for (auto it = first; it != last; ++it) {
      if (it->second == id) return;
    }
    out.emplace(host, id);
  };
  for (const auto& e : hosts) {
    const auto* obj = e.value.if_object();
    const auto* id = obj != nullptr ? obj->if_contains("server_id") : nullptr;
    if (id != nullptr && id->is_int64() && id->as_int64() >= 0) add(e.name, id->as_int64());
  }
  for (const auto& e : agents) {
    const auto* obj = e.value.if_object();
    if (obj == nullptr) continue;
    const auto* host = obj->if_contains("host");
    const auto* id = obj->if_contains("server_id");
    if (host != nullptr && host->is_string() && id != nullptr && id->is_int64() && id->as_int64() >= 0) {
      add(std::string(host->as_string()), id->as_int64());
    }
  }
  return out;
}

std::map<int64_t, std::string> host_names_by_server(const HostServers& hosts) {
  std::map<int64_t, std::string> out;
  for (const auto& [host, id] : hosts) {
    std::string& names = out[id];
    names += (names.empty() ? "" : ",") + host;
  }
  return out;
}

GroupMembers::GroupMembers(const Group& group, const HostServers& hosts) : ranges_(group.servers) {
  for (const auto& [host, id] : hosts) {
    for (const auto& glob : group.hosts) {
      if (::fnmatch(glob.c_str(), host.c_str(), 0) == 0) {
        by_host_.insert(id);
        break;
      }
    }
  }
}

bool GroupMembers::contains(int64_t server) const {
  if (by_host_.contains(server)) return true;
  for (const auto& [low, high] : ranges_) {
    if (server >= low && server <= high) return true;
  }
  return false;
}

bool record_host(Registry& registry, const std::string& host, int64_t server_id, std::string& error) {
  if (!is_valid_key(host)) {
    error = "the host name cannot be a registry key";
    return false;
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto entry = registry.get(std::string(kHostsKind), host);
    if (!entry) {
      error = entry.error().message();
      return false;
    }
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    boost::json::object value{{"server_id", server_id}, {"first_seen_s", now}};
    if (*entry) {
      const auto* obj = (*entry)->value.if_object();
      const auto* id = obj != nullptr ? obj->if_contains("server_id") : nullptr;
      if (id != nullptr && id->is_int64() && id->as_int64() == server_id) return true;
    }
    auto done = registry.commit({{std::string(kHostsKind), host, *entry ? (*entry)->version : 0}},
                                {{std::string(kHostsKind), host, boost::json::value(std::move(value))}});
    if (!done) {
      error = done.error().message();
      return false;
    }
    if (*done) return true;
  }
  error = "the entry kept changing";
  return false;
}

}  // namespace monitor::registry
