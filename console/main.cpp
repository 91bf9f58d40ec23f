// monitorctl: the console. One file per subcommand group.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "console/access_commands.hpp"
#include "console/alarm_commands.hpp"
#include "console/cluster_commands.hpp"
#include "console/group_commands.hpp"
#include "console/host_commands.hpp"
#include "console/console_context.hpp"
#include "console/query_command.hpp"
#include "console/report_command.hpp"
#include "console/service_commands.hpp"

namespace {

void usage() {
  std::puts(
      "Usage: monitorctl <command> [verb] [options]\n"
      "\n"
      "Commands:\n"
      "  service    add|list|show|rm|assign   services, their ids and judgers\n"
      "  attr       add|list|rm               attrs of a service and their ids\n"
      "  judger     list|add|rm               judgers with their load\n"
      "  placement  [auto|manual]             automatic placement of a dead judger's services\n"
      "  status                               every part, live or gone\n"
      "  role       add|list|rm               roles and the services they own\n"
      "  user       add|list|rm|grant|passwd  users and their roles\n"
      "  auth       enable|daemon             turn etcd's authentication on; a user per kind of daemon\n"
      "  query                                print a series from the judger that owns it\n"
      "  rule       add|list|show|rm|enable|disable|check|test   alarm rules (docs/rules.md)\n"
      "  host       list|show|rm              hosts whose agents registered, by name and server id\n"
      "  group      add|list|show|rm|bind|unbind   host groups and the rule templates bound to them\n"
      "  template   add|list|show|rm          rule templates (docs/rules.md)\n"
      "  alarm      list|show|ack|history     alarms and their history\n"
      "  silence    add|list|rm               silences of notifications\n"
      "  report     daily                     the day's alarms, top services, the system's health\n"
      "\n"
      "Every command takes --registry file:DIR|etcd:HOST:PORT[,...] (or $MONITOR_REGISTRY, or\n"
      "~/.config/monitor/monitorctl.json), --user/--password, --config FILE and --output table|json,\n"
      "before the command or after it.\n"
      "Exit codes: 0 done, 2 bad input, 3 registry or judger unreachable, 4 refused.\n"
      "Run 'monitorctl <command> --help' for a command's options.");
}

// The options every command takes. Before the command (as git, kubectl and
// etcdctl take them) they are moved after it, where its parser reads them.
constexpr std::string_view kGlobalOptions[] = {"--registry", "--user", "--password", "--config", "--output"};

// argv with the global options that precede the command moved to its end;
// empty (and `error` set) for anything else before the command.
std::vector<char*> with_global_options_last(int argc, char** argv, std::string& error) {
  std::vector<char*> globals;
  int i = 1;
  while (i < argc && std::string_view(argv[i]).starts_with("-")) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") break;  // the usage, whatever came before
    const std::string_view name = arg.substr(0, arg.find('='));
    if (std::find(std::begin(kGlobalOptions), std::end(kGlobalOptions), name) == std::end(kGlobalOptions)) {
      error = fmt::format("'{}' before the command: only --registry, --user, --password, --config and --output may "
                          "come first",
                          arg);
      return {};
    }
    globals.push_back(argv[i++]);
    if (name == arg) {  // --name VALUE
      if (i == argc) {
        error = fmt::format("{} needs a value", arg);
        return {};
      }
      globals.push_back(argv[i++]);
    }
  }
  if (i < argc && (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0)) globals.clear();
  std::vector<char*> out{argv[0]};
  out.insert(out.end(), argv + i, argv + argc);
  out.insert(out.end(), globals.begin(), globals.end());
  out.push_back(nullptr);
  return out;
}

}  // namespace

int main(int raw_argc, char** raw_argv) {
  using namespace monitor::console;
  std::string error;
  std::vector<char*> args = with_global_options_last(raw_argc, raw_argv, error);
  if (args.empty()) {
    std::fprintf(stderr, "monitorctl: %s\n", error.c_str());
    return kExitBadInput;
  }
  const int argc = static_cast<int>(args.size()) - 1;
  char** argv = args.data();
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    usage();
    return argc < 2 ? kExitBadInput : 0;
  }
  const std::string_view command = argv[1];
  try {
    if (command == "service") return service_command(argc - 1, argv + 1);
    if (command == "attr") return attr_command(argc - 1, argv + 1);
    if (command == "host") return host_command(argc - 1, argv + 1);
    if (command == "group") return group_command(argc - 1, argv + 1);
    if (command == "template") return template_command(argc - 1, argv + 1);
    if (command == "judger") return judger_command(argc - 1, argv + 1);
    if (command == "placement") return placement_command(argc - 1, argv + 1);
    if (command == "status") return status_command(argc - 1, argv + 1);
    if (command == "role") return role_command(argc - 1, argv + 1);
    if (command == "user") return user_command(argc - 1, argv + 1);
    if (command == "auth") return auth_command(argc - 1, argv + 1);
    if (command == "query") return query_command(argc - 1, argv + 1);
    if (command == "rule") return rule_command(argc - 1, argv + 1);
    if (command == "alarm") return alarm_command(argc - 1, argv + 1);
    if (command == "silence") return silence_command(argc - 1, argv + 1);
    if (command == "report") return report_command(argc - 1, argv + 1);
  } catch (const ConsoleError& e) {
    std::fprintf(stderr, "monitorctl %s: %s\n", argv[1], e.what());
    return e.code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "monitorctl %s: %s\n", argv[1], e.what());
    return kExitUnreachable;
  }
  std::fprintf(stderr, "monitorctl: unknown command '%s'\n", argv[1]);
  usage();
  return kExitBadInput;
}
