#include "console/host_commands.hpp"

#include <ctime>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "registry/groups.hpp"
#include "registry/hosts.hpp"
#include "console/console_context.hpp"

namespace monitor::console {
namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out.empty() ? "-" : out;
}

std::string ago(int64_t s) {
  if (s == 0) return "-";
  return fmt::format("{} s ago", std::max<int64_t>(0, static_cast<int64_t>(std::time(nullptr)) - s));
}

std::vector<std::string> row_of(const registry::HostInfo& h) {
  return {h.host.empty() ? "-" : h.host,
          h.server_id >= 0 ? std::to_string(h.server_id) : "-",
          h.live ? "live" : h.agent.empty() ? "stopped" : "gone",
          joined(h.ips),
          h.dc.empty() ? "-" : h.dc,
          h.live ? ago(h.last_report_s) : "-",
          h.live ? std::to_string(h.spooled) : "-",
          h.agent.empty() ? "-" : h.agent};
}

const std::vector<std::string> kColumns = {"host", "server_id", "agent_state", "ips", "dc", "last_report",
                                           "spooled", "agent"};

int host_list(int argc, char** argv) {
  auto options = make_options("host list", "Lists the hosts whose agents registered: host name, server id, the "
                                           "agent's state, addresses and last report.");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const auto hosts = console.check(registry::read_hosts(console.registry()), "reading the hosts");
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : hosts) rows.push_back(row_of(h));
  console.print_table(kColumns, rows);
  return 0;
}

int host_show(int argc, char** argv) {
  auto options = make_options("host show", "Shows the host with this name or server id.");
  options.add_options()("host", "host name or server id", cxxopts::value<std::string>());
  options.parse_positional({"host"});
  options.positional_help("HOST");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string wanted = positional(*args, "host");
  Console console(*args);
  const auto hosts = console.check(registry::read_hosts(console.registry()), "reading the hosts");
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : hosts) {
    if (h.host == wanted || (h.server_id >= 0 && std::to_string(h.server_id) == wanted) || h.agent == wanted) {
      rows.push_back(row_of(h));
    }
  }
  if (rows.empty()) {
    throw ConsoleError(kExitBadInput, fmt::format("no host {} (monitorctl host list shows them)", wanted));
  }
  console.print_table(kColumns, rows);
  return 0;
}

int host_rm(int argc, char** argv) {
  auto options = make_options("host rm", "Forgets a host's record (hosts/<host>, written by its agent): groups no longer "
                                         "hold it by its name, and the alarms their rules had of it end as gone. For a "
                                         "host taken out of service; a live agent records it again.");
  options.add_options()("host", "host name", cxxopts::value<std::string>());
  options.parse_positional({"host"});
  options.positional_help("HOST");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string host = positional(*args, "host");
  Console console(*args);
  const std::string kind(registry::kHostsKind);
  auto entry = console.check(console.registry().get(kind, host), "reading host " + host);
  if (!entry) throw ConsoleError(kExitBadInput, fmt::format("no host {} is recorded", host));
  if (!console.check(console.registry().commit({{kind, host, entry->version}}, {{kind, host, std::nullopt}}),
                     "removing host " + host)) {
    throw ConsoleError(kExitBadInput, "the host's record changed meanwhile; run it again");
  }
  console.print_done(fmt::format("host {} forgotten", host));
  return 0;
}

}  // namespace

int host_command(int argc, char** argv) {
  return dispatch_verbs("host", argc, argv, {{"list", host_list}, {"show", host_show}, {"rm", host_rm}});
}

}  // namespace monitor::console
