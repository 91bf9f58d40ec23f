// What every daemon's main() does, once: its settings table as flags,
// `--help` with defaults, `--settings-markdown` for its doc, the config file
// then the flags, the logger, and any error as one line with exit code 2.
#pragma once

#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <utility>

#include <cxxopts.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/settings.hpp"

namespace monitor {

template <class Config>
struct Daemon {
  std::string program;      // "monitor-proxy"
  std::string description;  // the first lines of --help
  std::string doc;          // "docs/proxy.md"
  const SettingsTable<Config>& settings;
  // Options that are not settings (an action such as --run-plugin).
  std::function<void(cxxopts::OptionAdder&)> extra_options = {};
};

/// Parses the command line into a Config and hands it to `run(config, args)`,
/// whose result is the exit code. Config needs a `log_level` member.
template <class Config, class Run>
int daemon_main(int argc, char** argv, const Daemon<Config>& daemon, Run&& run) {
  // `systemctl reload` (SIGHUP) must never stop a daemon: ignored until the
  // daemon's own handler (which reloads its TLS files) takes it over.
  std::signal(SIGHUP, SIG_IGN);
  cxxopts::Options options(daemon.program, daemon.description);
  const Config defaults;
  options.add_options()
      ("c,config", fmt::format("JSON config file (flags override it; {})", daemon.doc), cxxopts::value<std::string>())
      ("settings-markdown", fmt::format("print the settings as {}'s table and exit", daemon.doc))
      ("h,help", "print this help");
  if (daemon.extra_options) {
    auto adder = options.add_options();
    daemon.extra_options(adder);
  }
  daemon.settings.add_options(options, defaults);
  try {
    const auto args = options.parse(argc, argv);
    if (args.count("help")) {
      std::puts(options.help().c_str());
      return 0;
    }
    if (args.count("settings-markdown")) {
      std::fputs(daemon.settings.markdown(defaults).c_str(), stdout);
      return 0;
    }
    Config config;
    if (args.count("config")) daemon.settings.load_file(args["config"].template as<std::string>(), config);
    daemon.settings.apply(args, config, defaults);
    const std::string logger = daemon.program.starts_with("monitor-") ? daemon.program.substr(8) : daemon.program;
    spdlog::set_default_logger(spdlog::stderr_color_mt(logger));
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    return run(std::move(config), args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", daemon.program.c_str(), e.what());
    return 2;
  }
}

}  // namespace monitor
