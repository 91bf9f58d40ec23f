#include "console/console_context.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/clock.hpp"
#include "common/default_paths.hpp"
#include "registry/etcd_registry.hpp"
#include "registry/placement.hpp"
#include "query/judger_client.hpp"
#include "monitor/monitor.hpp"
#include "registry/hosts.hpp"

namespace monitor::console {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// ~/.config/monitor/monitorctl.json, or --config, or $MONITOR_CONFIG:
// {"registry": "...", "user": "...", "password": "..."}; absent is fine
// unless named explicitly.
boost::json::object read_config(const cxxopts::ParseResult& args) {
  std::string path = args.count("config") ? args["config"].as<std::string>() : env("MONITOR_CONFIG");
  const bool named = !path.empty();
  if (!named) {
    const std::string home = env("HOME");
    if (home.empty()) return {};
    path = home + "/.config/monitor/monitorctl.json";
  }
  std::ifstream in(path);
  if (!in) {
    if (named) throw ConsoleError(kExitBadInput, fmt::format("config {}: cannot read it", path));
    return {};
  }
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  auto doc = boost::json::parse(text.str(), ec);
  if (ec || !doc.is_object()) {
    throw ConsoleError(kExitBadInput, fmt::format("config {}: not a JSON object ({})", path,
                                                  ec ? ec.message() : "wrong shape"));
  }
  for (const auto& [key, value] : doc.as_object()) {
    if ((key != "registry" && key != "user" && key != "password" && key != "token" && key != "query_ca") ||
        !value.is_string()) {
      throw ConsoleError(kExitBadInput, fmt::format("config {}: unknown or non-string key \"{}\" (allowed: registry, "
                                                    "user, password, token, query_ca)",
                                                    path, std::string_view(key)));
    }
  }
  return doc.as_object();
}

std::string pick(const cxxopts::ParseResult& args, const char* flag, const char* env_name,
                 const boost::json::object& config, const char* key, std::string fallback) {
  if (args.count(flag)) return args[flag].as<std::string>();
  if (std::string v = env(env_name); !v.empty()) return v;
  if (const auto* v = config.if_contains(key); v != nullptr) return std::string(v->as_string());
  return fallback;
}

}  // namespace

void add_common_options(cxxopts::Options& options) {
  options.add_options("common")
      ("registry", "file:DIR or etcd:HOST:PORT[,HOST:PORT...] (default: $MONITOR_REGISTRY, the config file, or " +
                       default_registry() + ")", cxxopts::value<std::string>())
      ("user", "registry user, when etcd has authentication on (or $MONITOR_REGISTRY_USER)", cxxopts::value<std::string>())
      ("password", "its password (or $MONITOR_REGISTRY_PASSWORD)", cxxopts::value<std::string>())
      ("token", "API token for the judgers' query API, from `monitorctl user token` (or $MONITOR_TOKEN)",
       cxxopts::value<std::string>())
      ("query-ca", "PEM file of the CA that signs the judgers' HTTPS certificates: their query API is reached over "
                   "HTTPS (or $MONITOR_QUERY_CA)", cxxopts::value<std::string>())
      ("config", "config file (default $MONITOR_CONFIG or ~/.config/monitor/monitorctl.json)", cxxopts::value<std::string>())
      ("output", "table or json", cxxopts::value<std::string>()->default_value("table"))
      ("h,help", "print this help");
}

std::optional<cxxopts::ParseResult> parse(cxxopts::Options& options, int argc, char** argv) {
  try {
    auto args = options.parse(argc, argv);
    if (args.count("help")) {
      std::puts(options.help().c_str());
      return std::nullopt;
    }
    const std::string output = args["output"].as<std::string>();
    if (output != "table" && output != "json") throw ConsoleError(kExitBadInput, "--output must be table or json");
    return args;
  } catch (const cxxopts::exceptions::exception& e) {
    throw ConsoleError(kExitBadInput, e.what());
  }
}

std::string positional(const cxxopts::ParseResult& args, const std::string& name) {
  if (!args.count(name)) throw ConsoleError(kExitBadInput, fmt::format("{} is required (see --help)", name));
  return args[name].as<std::string>();
}

void check_name(const std::string& what, const std::string& name) {
  if (!is_valid_name(name)) {
    throw ConsoleError(kExitBadInput,
                       fmt::format("{} name \"{}\" is not valid: it must be dot-separated parts that each start "
                                   "with a capital letter followed by letters and digits, at least two parts, at "
                                   "most 64 bytes (e.g. Shop.Api)",
                                   what, name));
  }
}

void use_token(const cxxopts::ParseResult& args) {
  const auto config = read_config(args);
  query::JudgerClient::set_token(pick(args, "token", "MONITOR_TOKEN", config, "token", ""));
  if (const std::string ca = pick(args, "query-ca", "MONITOR_QUERY_CA", config, "query_ca", ""); !ca.empty()) {
    try {
      query::JudgerClient::set_https(net::make_https_client(ca));
    } catch (const std::exception& e) {
      throw ConsoleError(kExitBadInput, e.what());
    }
  }
}

Console::Console(const cxxopts::ParseResult& args) {
  const auto config = read_config(args);
  address_ = pick(args, "registry", "MONITOR_REGISTRY", config, "registry", default_registry());
  user_ = pick(args, "user", "MONITOR_REGISTRY_USER", config, "user", "");
  const std::string password = pick(args, "password", "MONITOR_REGISTRY_PASSWORD", config, "password", "");
  use_token(args);
  json_ = args["output"].as<std::string>() == "json";
  // A console must not create the directory it was pointed at: a typo would
  // read as an empty registry.
  if (address_.starts_with("file:") && !std::filesystem::is_directory(address_.substr(5))) {
    throw ConsoleError(kExitBadInput,
                       fmt::format("registry {}: no such directory (the parts create it when started with "
                                   "--registry {}, or create it yourself)",
                                   address_, address_));
  }
  auto opened = registry::open_registry(address_, user_, password);
  if (!opened) {
    throw ConsoleError(kExitBadInput, fmt::format("registry {}: {} (use file:DIR or etcd:HOST:PORT[,HOST:PORT...])",
                                                  address_, opened.error().message()));
  }
  registry_ = std::move(*opened);
}

bool Console::update(std::string_view kind, const std::string& name, const Change& change, const std::string& doing) {
  // Each conflict means another writer's change landed: with a handful of
  // consoles at once this ends in a few rounds; the bound only stops a loop.
  constexpr int kRounds = 50;
  for (int round = 0; round < kRounds; ++round) {
    const std::optional<registry::Entry> entry = check(registry_->get(kind, name), doing);
    std::optional<boost::json::value> value = change(entry);
    if (!value) return false;
    const std::vector<registry::Precondition> pre{{std::string(kind), name, entry ? entry->version : 0}};
    if (check(registry_->commit(pre, {{std::string(kind), name, std::move(*value)}}), doing)) return true;
  }
  throw ConsoleError(kExitUnreachable, fmt::format("{}: {}/{} kept changing under {} tries; try again", doing, kind,
                                                   name, kRounds));
}

void Console::fail(const boost::system::error_code& ec, const std::string& doing) {
  using registry::RegistryErrc;
  std::string etcd_says;
  if (auto* etcd = dynamic_cast<registry::EtcdRegistry*>(registry_.get())) etcd_says = etcd->last_error();
  if (ec == RegistryErrc::kUnreachable) {
    throw ConsoleError(kExitUnreachable, fmt::format("{}: the registry {} cannot be reached (is etcd running and "
                                                     "listening there?)",
                                                     doing, address_));
  }
  if (ec == RegistryErrc::kPermissionDenied) {
    throw ConsoleError(kExitRefused, fmt::format("{}: refused by etcd: user \"{}\" has no role that may read or change "
                                                 "this (etcd says \"{}\")",
                                                 doing, user_.empty() ? "(none)" : user_, etcd_says));
  }
  if (ec == RegistryErrc::kAuthFailed) {
    throw ConsoleError(kExitRefused, fmt::format("{}: etcd refused user \"{}\": wrong user name or password, or no "
                                                 "user given while authentication is on (etcd says \"{}\")",
                                                 doing, user_, etcd_says));
  }
  throw ConsoleError(kExitUnreachable, fmt::format("{}: {}{}", doing, ec.message(),
                                                   etcd_says.empty() ? "" : " (etcd says \"" + etcd_says + "\")"));
}

void Console::print_table(const std::vector<std::string>& columns, const std::vector<std::vector<std::string>>& rows) {
  if (json_) {
    boost::json::array out;
    for (const auto& row : rows) {
      boost::json::object obj;
      for (size_t i = 0; i < columns.size() && i < row.size(); ++i) obj[columns[i]] = row[i];
      out.push_back(std::move(obj));
    }
    std::puts(boost::json::serialize(out).c_str());
    return;
  }
  std::vector<size_t> width(columns.size());
  for (size_t i = 0; i < columns.size(); ++i) width[i] = columns[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < columns.size() && i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < columns.size(); ++i) {
      const std::string& cell = i < row.size() ? row[i] : "";
      line += cell;
      if (i + 1 < columns.size()) line += std::string(width[i] - cell.size() + 2, ' ');
    }
    std::puts(line.c_str());
  };
  std::vector<std::string> header;
  for (const auto& c : columns) {
    std::string upper = c;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    header.push_back(upper);
  }
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

void Console::print_object(const boost::json::object& obj) {
  if (json_) {
    std::puts(boost::json::serialize(obj).c_str());
    return;
  }
  for (const auto& [key, value] : obj) {
    const std::string text = value.is_string() ? std::string(value.as_string()) : boost::json::serialize(value);
    std::printf("%s: %s\n", std::string(key).c_str(), text.c_str());
  }
}

void Console::print_done(const std::string& message, boost::json::object details) {
  if (json_) {
    details["ok"] = true;
    details["message"] = message;
    std::puts(boost::json::serialize(details).c_str());
    return;
  }
  std::puts(message.c_str());
}

cxxopts::Options make_options(const std::string& command, const std::string& description) {
  cxxopts::Options options("monitorctl " + command, description);
  add_common_options(options);
  return options;
}

int dispatch_verbs(const char* group, int argc, char** argv,
             const std::vector<std::pair<std::string, int (*)(int, char**)>>& verbs) {
  std::string names;
  for (const auto& [verb, fn] : verbs) names += (names.empty() ? "" : "|") + verb;
  if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
    std::printf("Usage: monitorctl %s %s [options]\nRun 'monitorctl %s <verb> --help' for a verb's options.\n", group,
                names.c_str(), group);
    return argc < 2 ? kExitBadInput : 0;
  }
  for (const auto& [verb, fn] : verbs) {
    if (verb == argv[1]) return fn(argc - 1, argv + 1);
  }
  throw ConsoleError(kExitBadInput, fmt::format("unknown verb '{}': use {} {}", argv[1], group, names));
}

int64_t unix_now() { return realtime_ns() / 1'000'000'000; }

std::string utc_text(int64_t s, const char* format) {
  const std::time_t t = static_cast<std::time_t>(s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::vector<HoldingJudger> holding_judgers(Console& console, const std::string& service, int64_t from_s) {
  auto assignment = console.check(console.registry().get("assignments", service), "reading the assignment");
  const auto names = assignment ? registry::judgers_holding(assignment->value, from_s) : std::vector<std::string>{};
  if (names.empty()) {
    throw ConsoleError(kExitBadInput, fmt::format("service {} has no judger in {} (monitorctl service show {})", service,
                                                  console.address(), service));
  }
  std::vector<HoldingJudger> out;
  for (const auto& name : names) {
    out.push_back({name, console.check(registry::judger_query(console.registry(), name), "reading judger " + name)});
  }
  if (out.size() == 1 && out[0].query.empty()) {
    throw ConsoleError(kExitUnreachable,
                       fmt::format("judger {} (owner of {}) is not live in {}", out[0].name, service, console.address()));
  }
  return out;
}

int64_t parse_time(const std::string& option, const std::string& text, int64_t now, bool future) {
  const auto bad = [&] {
    return ConsoleError(kExitBadInput, fmt::format("{} {}: use now, {}-30s, -90m, -2h, -1d or Unix seconds", option,
                                                   text.empty() ? "\"\"" : text, future ? "+2h, " : ""));
  };
  if (text == "now") return now;
  const bool relative = !text.empty() && (text[0] == '-' || (future && text[0] == '+'));
  const char* begin = text.data() + (relative ? 1 : 0);
  const char* end = text.data() + text.size();
  int64_t n = 0;
  const auto [rest, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc{} || rest == begin || n < 0) throw bad();
  if (!relative) {
    if (rest != end) throw bad();
    return n;
  }
  const std::string_view unit(rest, static_cast<size_t>(end - rest));
  const int64_t scale = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (scale == 0 || n > (int64_t{1} << 40)) throw bad();
  return text[0] == '+' ? now + n * scale : now - n * scale;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw ConsoleError(kExitBadInput, fmt::format("cannot read {}", path));
  std::stringstream text;
  text << f.rdbuf();
  return text.str();
}

int64_t server_of(Console& console, const std::string& option, const std::string& text) {
  if (const auto id = registry::parse_server_id(text)) return *id;
  auto id = registry::server_id_of(console.registry(), text);
  if (!id && id.error() == registry::make_error_code(registry::RegistryErrc::kBadEntry)) {
    throw ConsoleError(kExitBadInput, fmt::format("{} {}: not a server id, and no host of that name (or two with "
                                                  "different ids; monitorctl host list shows them)",
                                                  option, text));
  }
  return console.check(id, "reading the hosts");
}

}  // namespace monitor::console
