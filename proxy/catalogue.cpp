#include "proxy/catalogue.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "registry/service_attrs.hpp"

namespace monitor::proxy {
namespace {

const boost::json::string* string_field(const boost::json::value& value, const char* key) {
  const auto* obj = value.if_object();
  if (obj == nullptr) return nullptr;
  const auto* field = obj->if_contains(key);
  return field == nullptr ? nullptr : field->if_string();
}

}  // namespace

const std::vector<std::string>& Catalogue::kinds() {
  static const std::vector<std::string> kKinds{"services", "assignments", "judgers", "proxies", "parts"};
  return kKinds;
}

boost::system::result<Catalogue> Catalogue::load(registry::Registry& registry, std::vector<std::string>& problems) {
  std::map<std::string, std::vector<registry::Entry>> by_kind;
  for (const auto& kind : kinds()) {
    auto entries = registry.list(kind);
    if (!entries) return entries.error();
    by_kind[kind] = std::move(*entries);
  }
  return build(by_kind, problems);
}

Catalogue Catalogue::build(const std::map<std::string, std::vector<registry::Entry>>& by_kind,
                           std::vector<std::string>& problems) {
  static const std::vector<registry::Entry> kNone;
  auto of = [&](const char* kind) -> const std::vector<registry::Entry>& {
    const auto it = by_kind.find(kind);
    return it == by_kind.end() ? kNone : it->second;
  };
  Catalogue c;
  for (const auto& entry : of("services")) {
    const auto* obj = entry.value.if_object();
    const auto* attrs = obj == nullptr ? nullptr : obj->if_contains("attrs");
    if (attrs == nullptr || !attrs->is_object()) {
      problems.push_back(fmt::format("services/{}: no \"attrs\" object", entry.name));
      continue;
    }
    auto& known = c.attrs_[entry.name];
    for (const auto& attr : attrs->as_object()) known.emplace(attr.key());
    if (const int64_t bound = registry::auto_attrs_of(entry.value); bound > 0) c.auto_attrs_[entry.name] = bound;
  }
  for (const auto& entry : of("assignments")) {
    const auto* judger = string_field(entry.value, "judger");
    if (judger == nullptr) {
      problems.push_back(fmt::format("assignments/{}: no \"judger\" string", entry.name));
      continue;
    }
    // The name becomes a spool directory: it must be a registry key, never a path.
    if (!registry::is_valid_key(*judger)) {
      problems.push_back(fmt::format("assignments/{}: judger \"{}\" is not a valid registry key; the service is "
                                     "treated as unassigned",
                                     entry.name, std::string_view(*judger)));
      continue;
    }
    c.judger_of_[entry.name] = std::string(*judger);
  }
  for (const auto& entry : of("judgers")) {
    if (const auto* address = string_field(entry.value, "address")) c.judger_addresses_[entry.name] = std::string(*address);
  }
  for (const auto& entry : of("proxies")) {
    const auto* role = string_field(entry.value, "role");
    const auto* address = string_field(entry.value, "address");
    if (role != nullptr && *role == "bonnie" && address != nullptr) c.bonnies_.emplace_back(*address);
  }
  std::sort(c.bonnies_.begin(), c.bonnies_.end());
  for (const auto& entry : of("parts")) {
    if (entry.name.starts_with("judger.")) c.known_judgers_.insert(entry.name.substr(7));
  }
  return c;
}

bool Catalogue::judger_retired(const std::string& judger) const {
  if (judger_addresses_.contains(judger) || known_judgers_.contains(judger)) return false;
  for (const auto& [service, owner] : judger_of_) {
    if (owner == judger) return false;
  }
  return true;
}

Catalogue::Verdict Catalogue::judge(std::string_view service, std::string_view attr, std::string& judger) const {
  const auto known = attrs_.find(std::string(service));
  if (known == attrs_.end()) return Verdict::kUnknownService;
  const bool registered = known->second.contains(std::string(attr));
  if (!registered && !auto_attrs_.contains(known->first)) return Verdict::kUnknownAttr;
  const auto owner = judger_of_.find(known->first);
  if (owner == judger_of_.end()) return Verdict::kUnassigned;
  judger = owner->second;
  return registered ? Verdict::kRoute : Verdict::kNewAttr;
}

size_t Catalogue::attr_count(std::string_view service) const {
  const auto known = attrs_.find(std::string(service));
  return known == attrs_.end() ? 0 : known->second.size();
}

bool Catalogue::has_attr(const std::string& service, const std::string& attr) const {
  const auto known = attrs_.find(service);
  return known != attrs_.end() && known->second.contains(attr);
}

int64_t Catalogue::auto_attrs(std::string_view service) const {
  const auto bound = auto_attrs_.find(std::string(service));
  return bound == auto_attrs_.end() ? 0 : bound->second;
}

std::set<std::string> Catalogue::assigned_judgers() const {
  std::set<std::string> out;
  for (const auto& [service, judger] : judger_of_) out.insert(judger);
  return out;
}

std::string Catalogue::judger_address(const std::string& judger) const {
  const auto it = judger_addresses_.find(judger);
  return it == judger_addresses_.end() ? std::string() : it->second;
}

}  // namespace monitor::proxy
