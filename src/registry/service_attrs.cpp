#include "registry/service_attrs.hpp"

#include <algorithm>

#include <boost/json.hpp>

namespace monitor::registry {

int64_t auto_attrs_of(const boost::json::value& service) {
  const auto* obj = service.if_object();
  const auto* field = obj == nullptr ? nullptr : obj->if_contains("auto_attrs");
  return field != nullptr && field->is_int64() ? std::max<int64_t>(field->as_int64(), 0) : 0;
}

boost::system::result<void> update_service_attrs(
    Registry& registry, const std::string& service,
    const std::function<bool(boost::json::object& attrs, int64_t& next_id)>& change, int attempts) {
  for (int attempt = 0; attempt < attempts; ++attempt) {
    auto entry = registry.get("services", service);
    if (!entry) return entry.error();
    if (!*entry) return make_error_code(RegistryErrc::kBadEntry);
    boost::json::object value = (*entry)->value.is_object() ? (*entry)->value.as_object() : boost::json::object{};
    if (!value["attrs"].is_object()) value["attrs"] = boost::json::object{};
    auto& attrs = value["attrs"].as_object();
    // Past every id ever handed out: removed ids are retired for good.
    int64_t next = value.contains("next_attr_id") && value.at("next_attr_id").is_int64()
                       ? value.at("next_attr_id").as_int64()
                       : 1;
    for (const auto& [name, id] : attrs) next = std::max(next, (id.is_int64() ? id.as_int64() : 0) + 1);
    if (!change(attrs, next)) return {};
    value["next_attr_id"] = next;
    auto written = registry.commit({{"services", service, (*entry)->version}}, {{"services", service, value}});
    if (!written) return written.error();
    if (*written) return {};
  }
  return boost::system::errc::make_error_code(boost::system::errc::resource_unavailable_try_again);
}

boost::system::result<AutoAttr> add_auto_attr(Registry& registry, const std::string& service,
                                              const std::string& attr) {
  AutoAttr outcome = AutoAttr::kFull;
  auto entry = registry.get("services", service);
  if (!entry) return entry.error();
  if (!*entry) return make_error_code(RegistryErrc::kBadEntry);
  const int64_t bound = auto_attrs_of((*entry)->value);
  auto updated = update_service_attrs(registry, service, [&](boost::json::object& attrs, int64_t& next) {
    if (attrs.contains(attr)) {
      outcome = AutoAttr::kKnown;
      return false;
    }
    if (static_cast<int64_t>(attrs.size()) >= bound) {
      outcome = AutoAttr::kFull;
      return false;
    }
    attrs[attr] = next++;
    outcome = AutoAttr::kAdded;
    return true;
  });
  if (!updated) return updated.error();
  return outcome;
}

}  // namespace monitor::registry
