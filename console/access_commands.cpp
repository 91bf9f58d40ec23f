// Users and roles. A role owns service name patterns ("Shop.*", "Shop.Api",
// "*"); a user holds roles. Both are recorded in the registry (kinds `roles`
// and `users`, which the dashboard reads). On etcd they are also etcd's own
// users and roles, with key-prefix permissions, so etcd itself refuses a
// change outside a user's roles once authentication is on (`auth enable`).
// On file: the records are all there is: the directory's Unix permissions
// decide who may write (docs/registry.md says what that can and cannot enforce).
#include "console/access_commands.hpp"


#include <boost/json.hpp>
#include <fmt/format.h>

#include "registry/access.hpp"
#include "registry/etcd_registry.hpp"
#include "console/console_context.hpp"
#include "monitor/monitor.hpp"

namespace monitor::console {
namespace {

using registry::b64;
using registry::EtcdRegistry;

using registry::ServicePattern;

ServicePattern parse_pattern(const std::string& text) {
  if (auto pattern = registry::parse_service_pattern(text)) return *pattern;
  throw ConsoleError(kExitBadInput, fmt::format("pattern \"{}\": use a service name (Shop.Api), a prefix of name "
                                                "parts followed by .* (Shop.*), or * for every service",
                                                text));
}

void check_key(const std::string& what, const std::string& name) {
  if (!registry::is_valid_key(name)) {
    throw ConsoleError(kExitBadInput, fmt::format("{} name \"{}\": use 1-128 of [A-Za-z0-9._-], not starting with '.'",
                                                  what, name));
  }
}

EtcdRegistry* etcd_of(Console& console) { return dynamic_cast<EtcdRegistry*>(&console.registry()); }

// `already`: what to tell the user when etcd says the name exists, which is
// how a console that lost a race to add the same user or role learns it.
void etcd_call(Console& console, const std::string& path, const boost::json::object& body, const std::string& doing,
               const std::string& already = {}) {
  auto* etcd = etcd_of(console);
  if (etcd == nullptr) return;
  auto r = etcd->gateway().call(path, body);
  if (r) return;
  if (!already.empty() && etcd->gateway().last_error().find("already exists") != std::string::npos) {
    throw ConsoleError(kExitBadInput, already);
  }
  console.fail(r.error(), doing);
}

boost::json::object etcd_perm(const registry::EtcdGrant& grant) {
  boost::json::object perm{{"permType", grant.type}, {"key", b64(grant.key)}};
  if (!grant.range_end.empty()) perm["range_end"] = b64(grant.range_end);
  return perm;
}

std::string hash_password(const std::string& password) {
  std::string hashed = registry::hash_password(password);
  if (hashed.empty()) throw ConsoleError(kExitUnreachable, "cannot hash the password (no random source?)");
  return hashed;
}

std::string require_password(const cxxopts::ParseResult& args, const char* flag) {
  if (!args.count(flag) || args[flag].as<std::string>().empty()) {
    throw ConsoleError(kExitBadInput, fmt::format("--{} is required", flag));
  }
  return args[flag].as<std::string>();
}

using registry::strings_of;

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out.empty() ? "-" : out;
}

int role_add(int argc, char** argv) {
  auto options = make_options("role add", "Adds a role that owns services by name pattern (Shop.* or Shop.Api or *).");
  options.add_options()("name", "role name", cxxopts::value<std::string>())
      ("patterns", "service name patterns", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"name", "patterns"});
  options.positional_help("ROLE PATTERN [PATTERN...]");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  check_key("role", name);
  if (name == "root") throw ConsoleError(kExitBadInput, "role root is etcd's own: pick another name");
  if (!args->count("patterns")) throw ConsoleError(kExitBadInput, "name at least one service pattern (see --help)");
  std::vector<ServicePattern> patterns;
  boost::json::array texts;
  for (const auto& p : (*args)["patterns"].as<std::vector<std::string>>()) {
    patterns.push_back(parse_pattern(p));
    texts.push_back(boost::json::value(p));
  }
  Console console(*args);
  if (console.check(console.registry().get("roles", name), "reading role " + name)) {
    throw ConsoleError(kExitBadInput, fmt::format("role {} already exists", name));
  }
  if (etcd_of(console) != nullptr) {
    etcd_call(console, "/v3/auth/role/add", {{"name", name}}, "adding role " + name,
              fmt::format("role {} already exists", name));
    for (const auto& grant : registry::console_role_grants(patterns)) {
      etcd_call(console, "/v3/auth/role/grant", {{"name", name}, {"perm", etcd_perm(grant)}}, "granting role " + name);
    }
  }
  console.update("roles", name, [&](const std::optional<registry::Entry>& entry) -> std::optional<boost::json::value> {
    if (entry) throw ConsoleError(kExitBadInput, fmt::format("role {} already exists", name));
    return boost::json::object{{"patterns", texts}};
  }, "recording role " + name);
  console.print_done(fmt::format("role {} owns {}", name, boost::json::serialize(texts)), {{"role", name}});
  return 0;
}

int role_list(int argc, char** argv) {
  auto options = make_options("role list", "Lists the roles and the service patterns each owns.");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : console.check(console.registry().list("roles"), "listing roles")) {
    rows.push_back({r.name, joined(strings_of(r.value, "patterns"))});
  }
  console.print_table({"role", "patterns"}, rows);
  return 0;
}

int role_rm(int argc, char** argv) {
  auto options = make_options("role rm", "Removes a role (its users lose what it granted).");
  options.add_options()("name", "role name", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("ROLE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  check_key("role", name);
  Console console(*args);
  if (!console.check(console.registry().get("roles", name), "reading role " + name)) {
    throw ConsoleError(kExitBadInput, fmt::format("no role {}", name));
  }
  etcd_call(console, "/v3/auth/role/delete", {{"role", name}}, "removing role " + name);
  console.check(console.registry().remove("roles", name), "removing role " + name);
  console.print_done(fmt::format("role {} removed", name), {{"role", name}});
  return 0;
}

registry::Entry must_get_user(Console& console, const std::string& name) {
  auto user = console.check(console.registry().get("users", name), "reading user " + name);
  if (!user) throw ConsoleError(kExitBadInput, fmt::format("no user {} (monitorctl user list shows them)", name));
  return std::move(*user);
}

void must_have_role(Console& console, const std::string& role) {
  if (!console.check(console.registry().get("roles", role), "reading role " + role)) {
    throw ConsoleError(kExitBadInput, fmt::format("no role {} (monitorctl role list shows them)", role));
  }
}

int user_add(int argc, char** argv) {
  auto options = make_options("user add", "Adds a user, optionally with roles.");
  options.add_options()("name", "user name", cxxopts::value<std::string>())
      ("new-password", "the user's password", cxxopts::value<std::string>())
      ("role", "a role to grant (repeatable)", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"name"});
  options.positional_help("USER --new-password P [--role R...]");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  check_key("user", name);
  const std::string password = require_password(*args, "new-password");
  const auto roles = args->count("role") ? (*args)["role"].as<std::vector<std::string>>() : std::vector<std::string>{};
  Console console(*args);
  if (console.check(console.registry().get("users", name), "reading user " + name)) {
    throw ConsoleError(kExitBadInput, fmt::format("user {} already exists", name));
  }
  for (const auto& r : roles) must_have_role(console, r);
  etcd_call(console, "/v3/auth/user/add", {{"name", name}, {"password", password}}, "adding user " + name,
            fmt::format("user {} already exists", name));
  for (const auto& r : roles) etcd_call(console, "/v3/auth/user/grant", {{"user", name}, {"role", r}}, "granting " + r);
  boost::json::object record{{"roles", boost::json::value_from(roles)}};
  // On etcd, etcd keeps the password; on file: a salted SHA-512 crypt(3) hash.
  if (!console.is_etcd()) record["password_hash"] = hash_password(password);
  console.update("users", name, [&](const std::optional<registry::Entry>& entry) -> std::optional<boost::json::value> {
    if (entry) throw ConsoleError(kExitBadInput, fmt::format("user {} already exists", name));
    return record;
  }, "recording user " + name);
  console.print_done(fmt::format("user {} added with roles {}", name, joined(roles)), {{"user", name}});
  return 0;
}

int user_list(int argc, char** argv) {
  auto options = make_options("user list", "Lists the users and their roles.");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  std::vector<std::vector<std::string>> rows;
  for (const auto& u : console.check(console.registry().list("users"), "listing users")) {
    rows.push_back({u.name, joined(strings_of(u.value, "roles"))});
  }
  console.print_table({"user", "roles"}, rows);
  return 0;
}

int user_rm(int argc, char** argv) {
  auto options = make_options("user rm", "Removes a user.");
  options.add_options()("name", "user name", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("USER");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  check_key("user", name);
  Console console(*args);
  must_get_user(console, name);
  etcd_call(console, "/v3/auth/user/delete", {{"name", name}}, "removing user " + name);
  console.check(console.registry().remove("users", name), "removing user " + name);
  console.print_done(fmt::format("user {} removed", name), {{"user", name}});
  return 0;
}

int user_grant(int argc, char** argv) {
  auto options = make_options("user grant", "Grants a role to a user.");
  options.add_options()("name", "user name", cxxopts::value<std::string>())("role", "role", cxxopts::value<std::string>());
  options.parse_positional({"name", "role"});
  options.positional_help("USER ROLE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name"), role = positional(*args, "role");
  Console console(*args);
  auto user = must_get_user(console, name);
  must_have_role(console, role);
  auto roles = strings_of(user.value, "roles");
  if (std::find(roles.begin(), roles.end(), role) != roles.end()) {
    throw ConsoleError(kExitBadInput, fmt::format("user {} has role {} already", name, role));
  }
  etcd_call(console, "/v3/auth/user/grant", {{"user", name}, {"role", role}}, "granting " + role);
  // Against the record as it is when written: a grant racing this one keeps its role.
  console.update("users", name, [&](const std::optional<registry::Entry>& now) -> std::optional<boost::json::value> {
    if (!now) throw ConsoleError(kExitBadInput, fmt::format("user {} was removed meanwhile", name));
    roles = strings_of(now->value, "roles");
    if (std::find(roles.begin(), roles.end(), role) != roles.end()) return std::nullopt;
    roles.push_back(role);
    boost::json::object record = now->value.is_object() ? now->value.as_object() : boost::json::object{};
    record["roles"] = boost::json::value_from(roles);
    return record;
  }, "recording user " + name);
  console.print_done(fmt::format("user {} now has roles {}", name, joined(roles)), {{"user", name}});
  return 0;
}

int user_passwd(int argc, char** argv) {
  auto options = make_options("user passwd", "Sets a user's password.");
  options.add_options()("name", "user name", cxxopts::value<std::string>())
      ("new-password", "the new password", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("USER --new-password P");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  const std::string password = require_password(*args, "new-password");
  Console console(*args);
  must_get_user(console, name);
  etcd_call(console, "/v3/auth/user/changepw", {{"name", name}, {"password", password}}, "changing the password");
  if (!console.is_etcd()) {
    const std::string hashed = hash_password(password);
    console.update("users", name, [&](const std::optional<registry::Entry>& now) -> std::optional<boost::json::value> {
      if (!now) throw ConsoleError(kExitBadInput, fmt::format("user {} was removed meanwhile", name));
      boost::json::object record = now->value.is_object() ? now->value.as_object() : boost::json::object{};
      record["password_hash"] = hashed;
      return record;
    }, "recording user " + name);
  }
  console.print_done(fmt::format("password of {} changed", name), {{"user", name}});
  return 0;
}

int user_token(int argc, char** argv) {
  auto options = make_options("user token", "Makes an API token for a user: what the judgers' query API asks for "
                                            "(Authorization: Bearer), seeing what the user's roles see. Printed once; "
                                            "only its hash is kept.");
  options.add_options()("name", "user name", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("USER");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  Console console(*args);
  must_get_user(console, name);
  const registry::NewToken token = registry::new_token(name);
  console.update("users", name, [&](const std::optional<registry::Entry>& now) -> std::optional<boost::json::value> {
    if (!now) throw ConsoleError(kExitBadInput, fmt::format("user {} was removed meanwhile", name));
    boost::json::object record = now->value.is_object() ? now->value.as_object() : boost::json::object{};
    boost::json::array tokens = record.contains("tokens") && record["tokens"].is_array() ? record["tokens"].as_array()
                                                                                         : boost::json::array{};
    tokens.push_back(boost::json::object{{"id", token.id}, {"sha256", token.sha256}});
    record["tokens"] = std::move(tokens);
    return record;
  }, "recording user " + name);
  console.print_done(token.token, {{"user", name}, {"token", token.token}, {"id", token.id}});
  return 0;
}

int auth_enable(int argc, char** argv) {
  auto options = make_options("auth enable", "Turns etcd's authentication on: creates user root with role root, "
                                             "then every change needs a user whose roles allow it.");
  options.add_options()("root-password", "password for etcd's root user", cxxopts::value<std::string>());
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string password = require_password(*args, "root-password");
  Console console(*args);
  if (!console.is_etcd()) {
    throw ConsoleError(kExitBadInput, "authentication is etcd's: on file: the directory's permissions decide who writes");
  }
  etcd_call(console, "/v3/auth/role/add", {{"name", "root"}}, "adding role root");
  etcd_call(console, "/v3/auth/user/add", {{"name", "root"}, {"password", password}}, "adding user root");
  etcd_call(console, "/v3/auth/user/grant", {{"user", "root"}, {"role", "root"}}, "granting root");
  etcd_call(console, "/v3/auth/enable", {}, "enabling authentication");
  console.print_done("etcd authentication is on: daemons and consoles now need --user/--password "
                     "(or MONITOR_REGISTRY_USER/_PASSWORD)");
  return 0;
}

// An etcd role and user per kind of daemon, holding only what that kind reads
// and writes (registry::daemon_grants), instead of every daemon as root.
// Run again, it renews the password and the role's permissions.
int auth_daemon(int argc, char** argv) {
  auto options = make_options("auth daemon", "Creates (or renews) etcd's user and role monitor-KIND for a kind of "
                                             "daemon (agent, proxy, judger, dashboard): it may read and write only "
                                             "what that daemon needs. Give the daemons MONITOR_REGISTRY_USER=monitor-KIND.");
  options.add_options()("kind", "agent, proxy, judger or dashboard", cxxopts::value<std::string>())
      ("new-password", "the user's password", cxxopts::value<std::string>());
  options.parse_positional({"kind"});
  options.positional_help("KIND");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string kind = positional(*args, "kind");
  const auto grants = registry::daemon_grants(kind);
  if (grants.empty()) throw ConsoleError(kExitBadInput, fmt::format("kind \"{}\": use agent, proxy, judger or dashboard", kind));
  const std::string password = require_password(*args, "new-password");
  Console console(*args);
  auto* etcd = etcd_of(console);
  if (etcd == nullptr) {
    throw ConsoleError(kExitBadInput, "daemons' users are etcd's: on file: the directory's permissions decide who writes");
  }
  const std::string name = "monitor-" + kind;
  // Added, or there already: etcd's role and user calls say which.
  const auto add_or_keep = [&](const std::string& path, const boost::json::object& body, const std::string& doing) {
    auto r = etcd->gateway().call(path, body);
    if (r) return true;
    if (etcd->gateway().last_error().find("already exists") != std::string::npos) return false;
    console.fail(r.error(), doing);
  };
  if (!add_or_keep("/v3/auth/role/add", {{"name", name}}, "adding role " + name)) {
    // Renewed: what it held before goes, so a permission this version no longer gives is gone.
    auto role = etcd->gateway().call("/v3/auth/role/get", {{"role", name}});
    if (!role) console.fail(role.error(), "reading role " + name);
    if (const auto* perms = role->if_contains("perm"); perms != nullptr && perms->is_array()) {
      for (const auto& perm : perms->as_array()) {
        if (!perm.is_object()) continue;
        boost::json::object revoke{{"role", name}};
        for (const char* field : {"key", "range_end"}) {
          if (const auto* v = perm.as_object().if_contains(field)) revoke[field] = *v;
        }
        etcd_call(console, "/v3/auth/role/revoke", revoke, "renewing role " + name);
      }
    }
  }
  for (const auto& grant : grants) {
    etcd_call(console, "/v3/auth/role/grant", {{"name", name}, {"perm", etcd_perm(grant)}}, "granting role " + name);
  }
  if (!add_or_keep("/v3/auth/user/add", {{"name", name}, {"password", password}}, "adding user " + name)) {
    etcd_call(console, "/v3/auth/user/changepw", {{"name", name}, {"password", password}}, "renewing user " + name);
  }
  etcd_call(console, "/v3/auth/user/grant", {{"user", name}, {"role", name}}, "granting " + name);
  console.print_done(fmt::format("etcd user {} holds role {}: {} permissions", name, name, grants.size()),
                     {{"user", name}, {"role", name}, {"permissions", grants.size()}});
  return 0;
}

}  // namespace

int role_command(int argc, char** argv) {
  return dispatch_verbs("role", argc, argv, {{"add", role_add}, {"list", role_list}, {"rm", role_rm}});
}

int user_command(int argc, char** argv) {
  return dispatch_verbs("user", argc, argv,
                        {{"add", user_add}, {"list", user_list}, {"rm", user_rm}, {"grant", user_grant},
                         {"passwd", user_passwd}, {"token", user_token}});
}

int auth_command(int argc, char** argv) { return dispatch_verbs("auth", argc, argv, {{"enable", auth_enable}, {"daemon", auth_daemon}}); }

}  // namespace monitor::console
