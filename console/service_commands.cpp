// Services and attrs: their numeric ids are handed out by compare-and-set
// commits on the registry, so two consoles racing never hand out one id twice,
// and a removed id is never reused (the counters only grow).
#include "console/service_commands.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <optional>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "registry/placement.hpp"
#include "registry/service_attrs.hpp"
#include "console/console_context.hpp"
#include "query/judger_client.hpp"

namespace monitor::console {

namespace {

using registry::Entry;
constexpr int kAttempts = 50;  // compare-and-set rounds before giving up under contention
constexpr const char* kServiceCounter = "service-ids";

int64_t int_field(const boost::json::value& v, std::string_view key, int64_t fallback) {
  const auto* obj = v.if_object();
  const auto* field = obj != nullptr ? obj->if_contains(key) : nullptr;
  return field != nullptr && field->is_int64() ? field->as_int64() : fallback;
}

// A service's attrs (name -> id), or null when its value has none.
const boost::json::object* attrs_of(const boost::json::value& service) {
  const auto* obj = service.if_object();
  const auto* attrs = obj != nullptr ? obj->if_contains("attrs") : nullptr;
  return attrs != nullptr ? attrs->if_object() : nullptr;
}

std::string judger_of(Console& console, const std::string& service) {
  auto assignment = console.check(console.registry().get("assignments", service), "reading the assignment");
  return assignment ? registry::assigned_judger(assignment->value) : "";
}

Entry must_get_service(Console& console, const std::string& service) {
  auto entry = console.check(console.registry().get("services", service), "reading service " + service);
  if (!entry) throw ConsoleError(kExitBadInput, fmt::format("no service {} (monitorctl service list shows them)", service));
  return std::move(*entry);
}

const registry::JudgerInfo* find_judger(const std::vector<registry::JudgerInfo>& judgers, const std::string& name) {
  for (const auto& j : judgers) {
    if (j.name == name && (j.live || j.declared)) return &j;
  }
  return nullptr;
}

std::string judger_state(const std::vector<registry::JudgerInfo>& judgers, const std::string& name) {
  if (name.empty()) return "-";
  for (const auto& j : judgers) {
    if (j.name == name) return j.live ? "live" : "gone";
  }
  return "unknown";
}

int service_add(int argc, char** argv) {
  auto options = make_options("service add", "Registers a service and assigns its numeric id; places it on the "
                                             "least-loaded live judger unless --judger names one.");
  options.add_options()("name", "service name, e.g. Shop.Api", cxxopts::value<std::string>())
      ("judger", "judger to own it (default: the least-loaded live one)", cxxopts::value<std::string>())
      ("auto-attrs", "new attrs a Bonnie registers for it on first sight, up to this many in all, with no console "
       "step (as the agents' Host.System needs; default 0: only attrs added with attr add)",
       cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("NAME");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  check_name("service", name);
  int64_t auto_attrs = 0;
  if (args->count("auto-attrs")) {
    // A string: gcc 12 warns falsely inside cxxopts' integer parser here.
    const std::string text = (*args)["auto-attrs"].as<std::string>();
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), auto_attrs);
    if (ec != std::errc() || end != text.data() + text.size() || auto_attrs < 0 || auto_attrs > 100'000) {
      throw ConsoleError(kExitBadInput, "--auto-attrs must be a number in [0, 100000]");
    }
  }
  Console console(*args);
  auto& reg = console.registry();
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (auto existing = console.check(reg.get("services", name), "reading service " + name)) {
      throw ConsoleError(kExitBadInput, fmt::format("service {} already exists (id {})", name,
                                                    int_field(existing->value, "id", 0)));
    }
    const auto judgers = console.check(registry::read_judgers(reg), "reading the judgers");
    std::string judger;
    if (args->count("judger")) {
      judger = (*args)["judger"].as<std::string>();
      if (find_judger(judgers, judger) == nullptr) {
        throw ConsoleError(kExitBadInput, fmt::format("no judger {} (monitorctl judger list shows them; judger add "
                                                      "declares one ahead of its start)",
                                                      judger));
      }
    } else if (auto least = registry::least_loaded(judgers)) {
      judger = *least;
    }
    auto counter = console.check(reg.get("counters", kServiceCounter), "reading the service id counter");
    const int64_t id = counter ? int_field(counter->value, "next", 1) : 1;
    boost::json::object service{{"id", id}, {"attrs", boost::json::object{}}, {"next_attr_id", 1}};
    if (auto_attrs > 0) service["auto_attrs"] = auto_attrs;
    std::vector<registry::Write> writes{{"counters", kServiceCounter, boost::json::object{{"next", id + 1}}},
                                        {"services", name, std::move(service)}};
    if (!judger.empty()) writes.push_back({"assignments", name, boost::json::object{{"judger", judger}}});
    const bool done = console.check(
        reg.commit({{"counters", kServiceCounter, counter ? counter->version : 0}, {"services", name, 0}}, writes),
        "adding service " + name);
    if (!done) continue;  // another console took the id or the name meanwhile: read again
    console.print_done(judger.empty() ? fmt::format("service {} added with id {}; no live judger to own it yet (automatic "
                                                    "placement gives it one when a judger starts)",
                                                    name, id)
                                      : fmt::format("service {} added with id {}, owned by judger {}", name, id, judger),
                       {{"service", name}, {"id", id}, {"judger", judger}});
    return 0;
  }
  throw ConsoleError(kExitUnreachable, fmt::format("service {}: gave up after {} attempts: the registry changed under "
                                                   "every one (too many consoles at once?)",
                                                   name, kAttempts));
}

int service_list(int argc, char** argv) {
  auto options = make_options("service list", "Lists the services with their ids, attr counts and judgers.");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const auto services = console.check(console.registry().list("services"), "listing services");
  const auto judgers = console.check(registry::read_judgers(console.registry()), "reading the judgers");
  const auto assignments = console.check(console.registry().list("assignments"), "reading the assignments");
  std::map<std::string, std::string> owner;
  for (const auto& a : assignments) {
    if (const auto* obj = a.value.if_object(); obj != nullptr && obj->contains("judger") && obj->at("judger").is_string()) {
      owner[a.name] = std::string(obj->at("judger").as_string());
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : services) {
    const auto* attrs = attrs_of(s.value);
    const std::string judger = owner.count(s.name) ? owner[s.name] : "";
    rows.push_back({s.name, std::to_string(int_field(s.value, "id", 0)),
                    std::to_string(attrs != nullptr ? attrs->size() : 0),
                    judger.empty() ? "-" : judger, judger_state(judgers, judger)});
  }
  console.print_table({"service", "id", "attrs", "judger", "judger_state"}, rows);
  return 0;
}

int service_show(int argc, char** argv) {
  auto options = make_options("service show", "Shows a service: id, owning judger, attrs with their ids.");
  options.add_options()("name", "service name", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("NAME");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  check_name("service", name);
  Console console(*args);
  const Entry service = must_get_service(console, name);
  const std::string judger = judger_of(console, name);
  const auto judgers = console.check(registry::read_judgers(console.registry()), "reading the judgers");
  boost::json::object attrs;
  if (const auto* a = attrs_of(service.value)) attrs = *a;
  // The last minute the owner stored, from its query API (0: none, or it is not live).
  int64_t last_minute = 0;
  for (const auto& j : judgers) {
    if (j.name != judger || !j.live || j.query.empty()) continue;
    auto reply = query::JudgerClient(j.query, std::chrono::seconds(5)).services(name);
    boost::system::error_code ec;
    const auto body = reply && reply->status == 200 ? boost::json::parse(reply->body, ec) : boost::json::value();
    if (!ec && body.is_object() && body.as_object().contains("last_minute") && body.at("last_minute").is_int64()) {
      last_minute = body.at("last_minute").as_int64();
    }
  }
  if (console.json()) {
    console.print_object({{"service", name}, {"id", int_field(service.value, "id", 0)}, {"judger", judger},
                          {"judger_state", judger_state(judgers, judger)}, {"last_minute", last_minute},
                          {"attrs", attrs}});
    return 0;
  }
  std::string last_seen = "-";
  if (last_minute > 0) {
    const std::time_t t = static_cast<std::time_t>(last_minute);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    last_seen = buf;
  }
  std::printf("service: %s\nid: %lld\njudger: %s (%s)\nlast minute: %s\n", name.c_str(),
              static_cast<long long>(int_field(service.value, "id", 0)), judger.empty() ? "-" : judger.c_str(),
              judger_state(judgers, judger).c_str(), last_seen.c_str());
  std::vector<std::vector<std::string>> rows;
  for (const auto& [attr, id] : attrs) rows.push_back({std::string(attr), boost::json::serialize(id)});
  console.print_table({"attr", "id"}, rows);
  return 0;
}

int service_rm(int argc, char** argv) {
  auto options = make_options("service rm", "Removes a service and its assignment. Its id is never handed out again.");
  options.add_options()("name", "service name", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("NAME");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  check_name("service", name);
  Console console(*args);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const Entry service = must_get_service(console, name);
    const bool done = console.check(console.registry().commit({{"services", name, service.version}},
                                                              {{"services", name, std::nullopt},
                                                               {"assignments", name, std::nullopt}}),
                                    "removing service " + name);
    if (!done) continue;
    console.print_done(fmt::format("service {} removed (id {} stays retired)", name, int_field(service.value, "id", 0)),
                       {{"service", name}});
    return 0;
  }
  throw ConsoleError(kExitUnreachable, "gave up: the service changed under every attempt");
}

int service_assign(int argc, char** argv) {
  auto options = make_options("service assign", "Gives a service to a judger; Bonnie routes its reports there "
                                                "within seconds.");
  options.add_options()("name", "service name", cxxopts::value<std::string>())
      ("judger", "judger name", cxxopts::value<std::string>());
  options.parse_positional({"name", "judger"});
  options.positional_help("SERVICE JUDGER");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  const std::string judger = positional(*args, "judger");
  check_name("service", name);
  Console console(*args);
  const auto judgers = console.check(registry::read_judgers(console.registry()), "reading the judgers");
  if (find_judger(judgers, judger) == nullptr) {
    throw ConsoleError(kExitBadInput, fmt::format("no judger {} (monitorctl judger list shows them)", judger));
  }
  const Entry service = must_get_service(console, name);
  auto current = console.check(console.registry().get("assignments", name), "reading the assignment");
  const int64_t now_s = unix_now();
  const bool done = console.check(
      console.registry().commit(
          {{"services", name, service.version}, {"assignments", name, current ? current->version : 0}},
          {{"assignments", name,
            registry::moved_assignment(current ? current->value : boost::json::value(), judger, now_s)}}),
      "assigning service " + name);
  if (!done) throw ConsoleError(kExitUnreachable, fmt::format("service {} changed meanwhile; try again", name));
  console.print_done(fmt::format("service {} assigned to judger {}", name, judger), {{"service", name}, {"judger", judger}});
  return 0;
}

// attr add/rm's command line: SERVICE ATTR [ATTR...], every name checked.
struct AttrArgs {
  cxxopts::ParseResult args;
  std::string service;
  std::vector<std::string> names;
};

std::optional<AttrArgs> parse_attr_args(const std::string& verb, const std::string& description, int argc,
                                        char** argv) {
  auto options = make_options("attr " + verb, description);
  options.add_options()("service", "service name", cxxopts::value<std::string>())
      ("attrs", "attr names", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"service", "attrs"});
  options.positional_help("SERVICE ATTR [ATTR...]");
  auto args = parse(options, argc, argv);
  if (!args) return std::nullopt;
  AttrArgs out{*args, positional(*args, "service"), {}};
  check_name("service", out.service);
  if (!args->count("attrs")) throw ConsoleError(kExitBadInput, "name at least one attr (see --help)");
  out.names = (*args)["attrs"].as<std::vector<std::string>>();
  for (const auto& n : out.names) check_name("attr", n);
  return out;
}

// Changes a service's attrs and its next attr id by compare-and-set
// (registry::update_service_attrs). `change` throws on bad input.
void update_attrs(Console& console, const std::string& service, const std::string& doing,
                  const std::function<void(boost::json::object& attrs, int64_t& next)>& change) {
  must_get_service(console, service);  // a clear "no service" first
  const auto updated = registry::update_service_attrs(console.registry(), service,
                                                      [&](boost::json::object& attrs, int64_t& next) {
                                                        change(attrs, next);
                                                        return true;
                                                      });
  if (!updated && updated.error() == boost::system::errc::resource_unavailable_try_again) {
    throw ConsoleError(kExitUnreachable, fmt::format("{}: gave up: the service changed under every attempt", doing));
  }
  console.check(updated, doing);
}

int attr_add(int argc, char** argv) {
  auto in = parse_attr_args("add", "Registers attrs of a service and assigns their ids.", argc, argv);
  if (!in) return 0;
  Console console(in->args);
  boost::json::object added;
  update_attrs(console, in->service, "adding attrs to " + in->service, [&](boost::json::object& attrs, int64_t& next) {
    added.clear();
    for (const auto& n : in->names) {
      if (added.contains(n)) throw ConsoleError(kExitBadInput, fmt::format("attr {} named twice", n));
      if (attrs.contains(n)) {
        throw ConsoleError(kExitBadInput, fmt::format("attr {} of {} already exists (id {})", n, in->service,
                                                      boost::json::serialize(attrs.at(n))));
      }
      added[n] = next;
      attrs[n] = next++;
    }
  });
  std::string list;
  for (const auto& [n, id] : added) {
    list += fmt::format("{}{}={}", list.empty() ? "" : ", ", std::string_view(n), boost::json::serialize(id));
  }
  console.print_done(fmt::format("{}: added {}", in->service, list), {{"service", in->service}, {"attrs", added}});
  return 0;
}

int attr_list(int argc, char** argv) {
  auto options = make_options("attr list", "Lists the attrs of a service with their ids.");
  options.add_options()("service", "service name", cxxopts::value<std::string>());
  options.parse_positional({"service"});
  options.positional_help("SERVICE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string service = positional(*args, "service");
  check_name("service", service);
  Console console(*args);
  const Entry entry = must_get_service(console, service);
  std::vector<std::vector<std::string>> rows;
  if (const auto* attrs = attrs_of(entry.value)) {
    for (const auto& [attr, id] : *attrs) rows.push_back({std::string(attr), boost::json::serialize(id)});
  }
  console.print_table({"attr", "id"}, rows);
  return 0;
}

int attr_rm(int argc, char** argv) {
  auto in = parse_attr_args("rm", "Removes attrs of a service. Their ids are never handed out again.", argc, argv);
  if (!in) return 0;
  Console console(in->args);
  update_attrs(console, in->service, "removing attrs of " + in->service, [&](boost::json::object& attrs, int64_t&) {
    for (const auto& n : in->names) {
      if (!attrs.contains(n)) throw ConsoleError(kExitBadInput, fmt::format("{} has no attr {}", in->service, n));
      attrs.erase(n);
    }
  });
  console.print_done(fmt::format("{}: removed {} attr(s)", in->service, in->names.size()), {{"service", in->service}});
  return 0;
}

}  // namespace

int service_command(int argc, char** argv) {
  return dispatch_verbs("service", argc, argv,
                  {{"add", service_add}, {"list", service_list}, {"show", service_show}, {"rm", service_rm},
                   {"assign", service_assign}});
}

int attr_command(int argc, char** argv) {
  return dispatch_verbs("attr", argc, argv, {{"add", attr_add}, {"list", attr_list}, {"rm", attr_rm}});
}

int placement_command(int argc, char** argv) {
  auto options = make_options("placement", "Shows or sets placement: auto (default) moves the services of a judger "
                                           "whose lease expired to the live ones; manual leaves them.");
  options.add_options()("mode", "auto or manual", cxxopts::value<std::string>());
  options.parse_positional({"mode"});
  options.positional_help("[auto|manual]");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  if (!args->count("mode")) {
    const bool on = registry::auto_placement(console.registry());
    console.print_object({{"placement", on ? "auto" : "manual"}});
    return 0;
  }
  const std::string mode = (*args)["mode"].as<std::string>();
  if (mode != "auto" && mode != "manual") throw ConsoleError(kExitBadInput, "placement must be auto or manual");
  console.check(console.registry().put("settings", "placement", boost::json::object{{"mode", mode}}),
                "setting placement");
  console.print_done("placement: " + mode, {{"placement", mode}});
  return 0;
}

}  // namespace monitor::console
