// A service's attrs and their ids in the registry (services/<name>: {"id",
// "attrs": {name: id}, "next_attr_id", "auto_attrs"}), changed by
// compare-and-set: what `monitorctl attr add/rm` and a Bonnie registering a
// new attr of a service that takes them (auto_attrs) both do.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include "registry/registry.hpp"

namespace monitor::registry {

/// Applies `change` to the service's attrs (and the next id to hand out,
/// past every id ever handed out) and writes them if nothing changed the
/// entry meanwhile, reading again otherwise, at most `attempts` times.
/// `change` returns false to write nothing. kBadEntry if there is no such
/// service; errc::resource_unavailable_try_again after `attempts` conflicts.
[[nodiscard]] boost::system::result<void> update_service_attrs(
    Registry& registry, const std::string& service,
    const std::function<bool(boost::json::object& attrs, int64_t& next_id)>& change, int attempts = 16);

/// How many new attrs a service takes without a console step (its
/// "auto_attrs"; 0: none).
int64_t auto_attrs_of(const boost::json::value& service);

enum class AutoAttr { kAdded, kKnown, kFull };
/// Registers `attr` of `service` if the service takes new attrs and has
/// fewer than its auto_attrs: kAdded (with the next id), kKnown (someone was
/// first), kFull (refused: auto_attrs attrs already, or it takes none).
[[nodiscard]] boost::system::result<AutoAttr> add_auto_attr(Registry& registry, const std::string& service,
                                                            const std::string& attr);

}  // namespace monitor::registry
