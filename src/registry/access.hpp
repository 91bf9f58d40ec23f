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

/// API tokens (`monitorctl user token`): "<user>:<secret>", the secret 32 hex
/// digits of 128 random bits; the user's record keeps only its SHA-256
/// (`tokens`: [{"id", "sha256"}]), which is enough for a secret that random.
struct NewToken {
  std::string token;   // to hand to the user, once
  std::string id;      // the secret's first 8 hex digits: to name it in lists and to revoke it
  std::string sha256;  // what the record keeps
};
/// A fresh token of `user`; throws std::runtime_error when no randomness is to be had.
NewToken new_token(const std::string& user);
/// The user a token names and its secret's SHA-256, or nullopt when it is not "<user>:<secret>".
std::optional<std::pair<std::string, std::string>> split_token(std::string_view token);
/// True when the user record `value` holds a token whose hash is `sha256` (compared in constant time).
bool record_has_token(const boost::json::value& value, const std::string& sha256);

/// A salted SHA-512 crypt(3) hash of `password`, or "" when no salt can be made.
std::string hash_password(const std::string& password);
/// True when `password` hashes to `hash` (compared in constant time).
bool password_matches(const std::string& password, const std::string& hash);

/// One permission of an etcd role: keys in [key, range_end), or the one key
/// when range_end is empty. Keys in clear (the caller encodes them).
struct EtcdGrant {
  std::string type;  // "READ" or "READWRITE"
  std::string key, range_end;
};

/// The kinds of daemon with an etcd role and user of their own
/// (`monitorctl auth daemon KIND`): the role is `monitor-KIND`.
inline constexpr std::string_view kDaemonKinds[] = {"agent", "proxy", "judger", "dashboard"};

/// What daemon `kind` reads and writes on etcd and nothing more (docs/security.md,
/// "The registry"); empty for a kind not in kDaemonKinds.
std::vector<EtcdGrant> daemon_grants(std::string_view kind);

/// What a console role owning `patterns` holds (`monitorctl role add`): it
/// reads the whole registry but `users/`, whose records hold password and
/// token hashes; it writes the service id counter, and the `services/` and
/// `assignments/` entries of its patterns.
std::vector<EtcdGrant> console_role_grants(const std::vector<ServicePattern>& patterns);

}  // namespace monitor::registry
