// What every monitorctl subcommand shares: the registry it talks to (from
// --registry, $MONITOR_REGISTRY, the config file, or the default), who it is
// (--user/--password or $MONITOR_REGISTRY_USER/_PASSWORD), how it prints
// (--output table|json), and how a failure becomes a message and an exit code.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/json/value.hpp>
#include <cxxopts.hpp>

#include "registry/registry.hpp"

namespace monitor::console {

/// Exit codes: 2 bad input (usage, names, unknown or duplicate entries),
/// 3 the registry or a judger cannot be reached, 4 refused (permission, password).
enum ExitCode { kExitOk = 0, kExitBadInput = 2, kExitUnreachable = 3, kExitRefused = 4 };

/// A failure to report to the person: message and exit code.
/// Shows the judgers' query API the token of `--token`, `$MONITOR_TOKEN` or
/// the config file, and reaches it over HTTPS with `--query-ca` (a Console
/// does it too; a command that skips the registry calls it itself).
void use_token(const cxxopts::ParseResult& args);

class ConsoleError : public std::runtime_error {
 public:
  ConsoleError(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

/// Adds --registry, --user, --password, --token, --config, --output and --help.
void add_common_options(cxxopts::Options& options);

class Console {
 public:
  /// Opens the registry the options name. Throws ConsoleError.
  explicit Console(const cxxopts::ParseResult& args);

  registry::Registry& registry() { return *registry_; }
  const std::string& address() const noexcept { return address_; }
  const std::string& user() const noexcept { return user_; }
  bool is_etcd() const noexcept { return address_.starts_with("etcd:"); }
  bool json() const noexcept { return json_; }

  /// The value of a result, or a ConsoleError that says what `doing` failed
  /// and why, in words (permission refused by etcd, unreachable, ...).
  template <class T>
  T check(boost::system::result<T> r, const std::string& doing) {
    if (!r) fail(r.error(), doing);
    return std::move(*r);
  }
  void check(boost::system::result<void> r, const std::string& doing) {
    if (!r) fail(r.error(), doing);
  }
  [[noreturn]] void fail(const boost::system::error_code& ec, const std::string& doing);

  /// What update() is told to do with an entry as it is now (nullopt: absent):
  /// the value to write, or nullopt to leave it. It may throw ConsoleError.
  using Change = std::function<std::optional<boost::json::value>(const std::optional<registry::Entry>&)>;
  /// Read-modify-write of one entry by compare-and-set on its version, read
  /// again and `change` asked again each time another writer got there first,
  /// so two consoles never lose each other's change. True if it wrote.
  /// ConsoleError if the registry fails or the entry keeps changing.
  bool update(std::string_view kind, const std::string& name, const Change& change, const std::string& doing);

  /// Prints rows as an aligned table, or as a JSON array of objects.
  void print_table(const std::vector<std::string>& columns, const std::vector<std::vector<std::string>>& rows);
  /// Prints one object: "key: value" lines, or JSON.
  void print_object(const boost::json::object& obj);
  /// A one-line confirmation (or {"ok": true, ...} in JSON).
  void print_done(const std::string& message, boost::json::object details = {});

 private:
  std::string address_, user_;
  bool json_ = false;
  std::unique_ptr<registry::Registry> registry_;
};

/// A judger that held a service: its name and query address ("" when it is not live).
struct HoldingJudger {
  std::string name, query;
};

/// The judgers that may hold minutes of `service` from `from_s` on (its judger
/// now and those it left since, docs/design.md section 4). Throws ConsoleError when
/// the service has no judger, or its only one is not live.
std::vector<HoldingJudger> holding_judgers(Console& console, const std::string& service, int64_t from_s);

/// A file's whole text; ConsoleError (bad input) naming it when it cannot be read.
std::string read_text(const std::string& path);

/// The server id `text` names for `option`: a number, or a host name (its
/// record in hosts/, or its live agent). ConsoleError (bad input) when no host
/// has that name, or two with different ids do.
int64_t server_of(Console& console, const std::string& option, const std::string& text);

/// Parses a subcommand's arguments; prints help and returns nullopt on --help.
/// Throws ConsoleError on bad flags.
std::optional<cxxopts::ParseResult> parse(cxxopts::Options& options, int argc, char** argv);

/// A required positional argument, or a ConsoleError naming it.
std::string positional(const cxxopts::ParseResult& args, const std::string& name);

/// Checks a service or attr name (docs/design.md section 1); throws ConsoleError.
void check_name(const std::string& what, const std::string& name);

/// The current Unix second.
int64_t unix_now();

/// Unix seconds as UTC text in a strftime `format` (default ISO 8601, "Z").
std::string utc_text(int64_t s, const char* format = "%Y-%m-%dT%H:%M:%SZ");

/// "now", "-30s", "-90m", "-2h", "-1d" (with `future`, also "+2h"), or
/// absolute Unix seconds; anything else is a ConsoleError naming `option`.
int64_t parse_time(const std::string& option, const std::string& text, int64_t now, bool future = false);

/// Options of "monitorctl <command>" with the common ones added.
cxxopts::Options make_options(const std::string& command, const std::string& description);

/// Runs the verb argv[1] of a command group ("service add ..."), or prints the group's usage.
int dispatch_verbs(const char* group, int argc, char** argv,
                   const std::vector<std::pair<std::string, int (*)(int, char**)>>& verbs);

}  // namespace monitor::console
