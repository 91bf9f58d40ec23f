// The parts of the system as the registry knows them: judgers with their
// load, and every part's liveness (a lease that is no longer refreshed).
#include "console/cluster_commands.hpp"

#include <map>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "registry/placement.hpp"
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

}  // namespace

int judger_command(int argc, char** argv) {
  return dispatch_verbs("judger", argc, argv, {{"list", judger_list}, {"add", judger_add}, {"rm", judger_rm}});
}

std::vector<PartState> part_states(Console& console) {
  return console.check(registry::read_part_states(console.registry()), "reading the parts");
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
