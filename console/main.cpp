// monitorctl: the console. One file per subcommand group.
#include <cstdio>
#include <cstring>

#include "console/query_command.hpp"

namespace {
void usage() {
  std::puts(
      "Usage: monitorctl <command> [options]\n"
      "\n"
      "Commands:\n"
      "  query    print a series from a judger (table and sparkline, or --output json)\n"
      "\n"
      "Run 'monitorctl <command> --help' for a command's options.");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    usage();
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "query") == 0) return monitor::console::query_command(argc - 1, argv + 1);
  std::fprintf(stderr, "monitorctl: unknown command '%s'\n", argv[1]);
  usage();
  return 2;
}
