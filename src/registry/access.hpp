// Who may see what: the roles of the registry own services by name pattern
// (docs/registry.md, "Users and roles"), and a user's password is checked
// against what `monitorctl user add` stored. One reading of these records for
// monitorctl, which writes them, and monitor-dashboard, which enforces them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "registry/registry.hpp"

namespace monitor::registry {

/// "Shop.*" (a prefix of name parts), "Shop.Api" (one service) or "*" (all).
struct ServicePattern {
  std::string text, prefix;
  bool exact = false;
  bool matches(const std::string& service) const noexcept {
    return exact ? service == prefix : service.starts_with(prefix);
  }
};

/// The pattern `text` names, or nullopt when it is none of the three forms.
std::optional<ServicePattern> parse_service_pattern(const std::string& text);

/// The strings of an array member `key` of an object value (empty if none).
std::vector<std::string> strings_of(const boost::json::value& value, std::string_view key);

/// What a user may see: the service patterns of all its roles.
struct UserAccess {
  std::string user;
  std::vector<std::string> roles;
  std::vector<ServicePattern> patterns;
  bool sees(const std::string& service) const noexcept {
    for (const auto& p : patterns) {
      if (p.matches(service)) return true;
    }
    return false;
  }
};

/// Reads users/<user> and its roles. ENOENT when the user does not exist.
[[nodiscard]] boost::system::result<UserAccess> read_user_access(Registry& registry, const std::string& user);

/// A salted SHA-512 crypt(3) hash of `password`, or "" when no salt can be made.
std::string hash_password(const std::string& password);
/// True when `password` hashes to `hash` (compared in constant time).
bool password_matches(const std::string& password, const std::string& hash);

}  // namespace monitor::registry
