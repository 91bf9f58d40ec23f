// The parts of the system as the registry knows them: judgers with their
// load, and every part's liveness (a lease that is no longer refreshed).
#include "console/cluster_commands.hpp"

#include <map>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/registry/placement.hpp"
#include "console/console_context.hpp"

namespace monitor::console {
namespace {

std::string mib(int64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

int judger_list(int argc, char** argv) {
  auto options = make_options("judger list", "Lists every judger with its live load and whether it is alive.");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const auto judgers = console.check(registry::read_judgers(console.registry()), "reading the judgers");
  std::vector<std::vector<std::string>> rows;
  for (const auto& j : judgers) {
    rows.push_back({j.name, j.live ? "live" : (j.ran ? "gone" : j.declared ? "declared" : "unknown"),
                    j.address.empty() ? "-" : j.address, j.query.empty() ? "-" : j.query,
                    j.live ? fmt::format("{:.1f}", j.cpu_percent) : "-", j.live ? mib(j.rss_bytes) : "-",
                    j.live ? fmt::format("{:.0f}", j.reports_per_s) : "-", j.live ? std::to_string(j.series) : "-",
                    std::to_string(j.services)});
  }
  console.print_table({"judger", "state", "address", "query", "cpu_percent", "rss", "reports_per_s", "series", "services"}, rows);
  return 0;
}

int judger_add(int argc, char** argv) {
  auto options = make_options("judger add", "Declares a judger ahead of its start, so services can be assigned to it.");
  options.add_options()("name", "judger name", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("NAME");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  if (!registry::is_valid_key(name)) {
    throw ConsoleError(kExitBadInput, fmt::format("judger name \"{}\": use 1-128 of [A-Za-z0-9._-], not starting with '.'", name));
  }
  Console console(*args);
  const std::string key = "judger." + name;
  const bool done = console.check(
      console.registry().commit({{std::string(registry::kPartsKind), key, 0}},
                                {{std::string(registry::kPartsKind), key,
                                  boost::json::object{{"role", "judger"}, {"name", name}, {"declared", true}}}}),
      "declaring judger " + name);
  if (!done) throw ConsoleError(kExitBadInput, fmt::format("judger {} is already known", name));
  console.print_done(fmt::format("judger {} declared", name), {{"judger", name}});
  return 0;
}

int judger_rm(int argc, char** argv) {
  auto options = make_options("judger rm", "Forgets a judger that is not running and owns no service.");
  options.add_options()("name", "judger name", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("NAME");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  Console console(*args);
  const auto judgers = console.check(registry::read_judgers(console.registry()), "reading the judgers");
  const registry::JudgerInfo* found = nullptr;
  for (const auto& j : judgers) {
    if (j.name == name) found = &j;
  }
  if (found == nullptr || (!found->live && !found->declared)) {
    throw ConsoleError(kExitBadInput, fmt::format("no judger {} (monitorctl judger list shows them)", name));
  }
  if (found->live) throw ConsoleError(kExitBadInput, fmt::format("judger {} is running: stop it first", name));
  if (found->services > 0) {
    throw ConsoleError(kExitBadInput, fmt::format("judger {} still owns {} service(s): assign them elsewhere first "
                                                  "(monitorctl service assign)",
                                                  name, found->services));
  }
  console.check(console.registry().remove(registry::kPartsKind, "judger." + name), "removing judger " + name);
  console.print_done(fmt::format("judger {} removed", name), {{"judger", name}});
  return 0;
}

std::string health_of(const std::string& role, const boost::json::value& value) {
  const auto* obj = value.if_object();
  if (obj == nullptr) return "-";
  auto num = [&](const boost::json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v != nullptr && v->is_number() ? v->to_number<double>() : 0.0;
  };
  if (role == "judger") {
    const auto* load = obj->if_contains("load");
    if (load == nullptr || !load->is_object()) return "-";
    const auto& l = load->as_object();
    return fmt::format("cpu {:.1f}%, rss {}, {:.0f} reports/s, {:.0f} series, {:.0f} services", num(l, "cpu_percent"),
                       mib(static_cast<int64_t>(num(l, "rss_bytes"))), num(l, "reports_per_s"), num(l, "series"),
                       num(l, "services"));
  }
  std::string out;
  for (const auto& [key, v] : *obj) {
    if (key == "address" || key == "query" || !v.is_number()) continue;
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", std::string_view(key), boost::json::serialize(v));
  }
  return out.empty() ? "-" : out;
}

}  // namespace

int judger_command(int argc, char** argv) {
  return dispatch_verbs("judger", argc, argv, {{"list", judger_list}, {"add", judger_add}, {"rm", judger_rm}});
}

std::vector<PartState> part_states(Console& console) {
  std::map<std::string, PartState> rows;  // by "role.name"
  for (const auto& part : console.check(console.registry().list(registry::kPartsKind), "reading the parts")) {
    const size_t dot = part.name.find('.');
    if (dot == std::string::npos) continue;
    PartState& row = rows[part.name];
    row.role = part.name.substr(0, dot);
    row.name = part.name.substr(dot + 1);
    const auto* obj = part.value.if_object();
    if (obj != nullptr && obj->contains("declared") && !obj->contains("registered")) row.state = "declared";
  }
  for (const auto& [role, kind] : std::vector<std::pair<std::string, std::string>>{
           {"agent", "agents"}, {"proxy", "proxies"}, {"judger", "judgers"}}) {
    for (const auto& entry : console.check(console.registry().list(kind), "reading " + kind)) {
      PartState& row = rows[role + "." + entry.name];
      row.role = role;
      row.name = entry.name;
      row.state = "live";
      if (const auto* obj = entry.value.if_object()) {
        if (const auto* a = obj->if_contains("address"); a != nullptr && a->is_string()) row.address = a->as_string();
        if (const auto* r = obj->if_contains("role"); r != nullptr && r->is_string()) row.role = r->as_string();
      }
      row.health = health_of(role, entry.value);
    }
  }
  std::vector<PartState> out;
  for (auto& [key, row] : rows) out.push_back(std::move(row));
  return out;
}

int status_command(int argc, char** argv) {
  auto options = make_options("status", "Every agent, proxy and judger the registry knows: live with its health, or "
                                        "gone (its lease expired).");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  std::vector<std::vector<std::string>> table;
  size_t gone = 0;
  for (const auto& row : part_states(console)) {
    table.push_back({row.role, row.name, row.state, row.address, row.health});
    gone += row.state == "gone" ? 1 : 0;
  }
  console.print_table({"role", "name", "state", "address", "health"}, table);
  if (!console.json() && gone > 0) std::printf("%zu part(s) gone: their leases expired\n", gone);
  return 0;
}

}  // namespace monitor::console
