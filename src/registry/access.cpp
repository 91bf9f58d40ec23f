#include "registry/access.hpp"

#include <crypt.h>

#include <cerrno>
#include <stdexcept>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "monitor/monitor.hpp"
#include "registry/etcd_registry.hpp"

namespace monitor::registry {

std::optional<ServicePattern> parse_service_pattern(const std::string& text) {
  if (text == "*") return ServicePattern{text, "", false};
  if (text.ends_with(".*")) {
    const std::string stem = text.substr(0, text.size() - 2);
    // The stem must be a name's first parts: valid once another part is added.
    if (is_valid_name(stem + ".X") && stem.size() < 62) return ServicePattern{text, stem + ".", false};
  } else if (is_valid_name(text)) {
    return ServicePattern{text, text, true};
  }
  return std::nullopt;
}

std::vector<std::string> strings_of(const boost::json::value& value, std::string_view key) {
  std::vector<std::string> out;
  const auto* obj = value.if_object();
  const auto* arr = obj != nullptr ? obj->if_contains(key) : nullptr;
  if (arr == nullptr || !arr->is_array()) return out;
  for (const auto& s : arr->as_array()) {
    if (s.is_string()) out.emplace_back(s.as_string());
  }
  return out;
}

boost::system::result<UserAccess> read_user_access(Registry& registry, const std::string& user) {
  auto entry = registry.get("users", user);
  if (!entry) return entry.error();
  if (!*entry) return boost::system::error_code(ENOENT, boost::system::system_category());
  UserAccess access{user, strings_of((*entry)->value, "roles"), {}};
  for (const std::string& role : access.roles) {
    auto role_entry = registry.get("roles", role);
    if (!role_entry) return role_entry.error();
    if (!*role_entry) continue;  // a role removed since it was granted grants nothing
    for (const std::string& text : strings_of((*role_entry)->value, "patterns")) {
      if (auto pattern = parse_service_pattern(text)) access.patterns.push_back(*pattern);
    }
  }
  return access;
}

namespace {

std::string hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return hex(digest, sizeof digest);
}

}  // namespace

NewToken new_token(const std::string& user) {
  unsigned char secret[16];
  if (RAND_bytes(secret, sizeof secret) != 1) throw std::runtime_error("no randomness for a token");
  const std::string secret_hex = hex(secret, sizeof secret);
  return NewToken{user + ":" + secret_hex, secret_hex.substr(0, 8), sha256_hex(secret_hex)};
}

std::optional<std::pair<std::string, std::string>> split_token(std::string_view token) {
  const size_t colon = token.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || token.size() - colon - 1 != 32) return std::nullopt;
  return std::pair{std::string(token.substr(0, colon)), sha256_hex(token.substr(colon + 1))};
}

bool record_has_token(const boost::json::value& value, const std::string& sha256) {
  const auto* obj = value.if_object();
  const auto* tokens = obj != nullptr ? obj->if_contains("tokens") : nullptr;
  if (tokens == nullptr || !tokens->is_array()) return false;
  bool found = false;
  for (const auto& t : tokens->as_array()) {
    const auto* fields = t.if_object();
    const auto* stored = fields != nullptr ? fields->if_contains("sha256") : nullptr;
    if (stored == nullptr || !stored->is_string() || stored->as_string().size() != sha256.size()) continue;
    unsigned char differ = 0;
    for (size_t i = 0; i < sha256.size(); ++i) differ |= static_cast<unsigned char>(stored->as_string()[i] ^ sha256[i]);
    found = found || differ == 0;
  }
  return found;
}

std::string hash_password(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$6$", 0, nullptr, 0, salt, sizeof salt) == nullptr) return "";
  crypt_data data{};
  const char* hashed = crypt_r(password.c_str(), salt, &data);
  if (hashed == nullptr || hashed[0] == '*') return "";
  return hashed;
}

namespace {

EtcdGrant read_write_prefix(std::string prefix) { return {"READWRITE", prefix, prefix_end(prefix)}; }

EtcdGrant read_everything() {
  const std::string root(EtcdRegistry::kRoot);
  return {"READ", root, prefix_end(root)};
}

// Every key under /monitor/ but users/ (password and token hashes): two ranges around it.
std::vector<EtcdGrant> read_all_but_users() {
  const std::string root(EtcdRegistry::kRoot), users = EtcdRegistry::kind_prefix("users");
  return {{"READ", root, users}, {"READ", prefix_end(users), prefix_end(root)}};
}

}  // namespace

std::vector<EtcdGrant> console_role_grants(const std::vector<ServicePattern>& patterns) {
  std::vector<EtcdGrant> grants = read_all_but_users();
  grants.push_back({"READWRITE", EtcdRegistry::key_of("counters", "service-ids"), ""});
  for (const auto& p : patterns) {
    for (const char* kind : {"services", "assignments"}) {
      const std::string key = EtcdRegistry::kind_prefix(kind) + p.prefix;
      grants.push_back(p.exact ? EtcdGrant{"READWRITE", key, ""} : read_write_prefix(key));
    }
  }
  return grants;
}

std::vector<EtcdGrant> daemon_grants(std::string_view kind) {
  const auto kind_of = [](std::string_view k) { return read_write_prefix(EtcdRegistry::kind_prefix(k)); };
  // A part's trace, parts/<role>.<name> (LiveRegistration), for its own role only.
  const auto parts_of = [](std::string_view role) {
    return read_write_prefix(EtcdRegistry::kind_prefix("parts") + std::string(role) + ".");
  };
  std::vector<EtcdGrant> grants;
  if (kind == "agent") {
    grants = read_all_but_users();
    grants.insert(grants.end(), {kind_of("agents"), parts_of("agent"), kind_of("hosts")});
  } else if (kind == "proxy") {
    // services/: a Bonnie adds the attrs it meets to their service's entry (AttrRegistrar).
    grants = read_all_but_users();
    grants.insert(grants.end(), {kind_of("proxies"), parts_of("proxy"), kind_of("services")});
  } else if (kind == "judger") {
    // users/: the query API checks users' tokens and roles.
    grants = {read_everything(), kind_of("judgers"), parts_of("judger"), kind_of("assignments"), kind_of("alarms")};
  } else if (kind == "dashboard") {
    // users/: sign-in; alarms/ and silences/: acknowledging and silencing.
    grants = {read_everything(), kind_of("alarms"), kind_of("silences")};
  }
  return grants;
}

bool password_matches(const std::string& password, const std::string& hash) {
  if (hash.empty() || hash[0] != '$') return false;
  crypt_data data{};
  const char* hashed = crypt_r(password.c_str(), hash.c_str(), &data);
  if (hashed == nullptr) return false;
  const std::string_view computed(hashed);
  if (computed.size() != hash.size()) return false;
  unsigned char differ = 0;
  for (size_t i = 0; i < hash.size(); ++i) differ |= static_cast<unsigned char>(computed[i] ^ hash[i]);
  return differ == 0;
}

}  // namespace monitor::registry
