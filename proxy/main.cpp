// monitor-proxy: Clyde (relays a data centre's agents to a Bonnie) or Bonnie
// (validates and routes by service to judgers).
#include <cstdio>
#include <exception>

#include <cxxopts.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "proxy/proxy.hpp"

int main(int argc, char** argv) {
  cxxopts::Options options("monitor-proxy",
                           "Proxy between agents and judgers (docs/proxy.md).\n"
                           "  --role clyde: relays the agents of a data centre to one Bonnie of its list,\n"
                           "                failing over to another when it dies.\n"
                           "  --role bonnie: drops reports of unregistered services and attrs, and routes\n"
                           "                 the rest by service to the judger the registry assigns.");
  const monitor::proxy::ProxyConfig defaults;
  const auto& settings = monitor::proxy::proxy_settings();
  options.add_options()
      ("c,config", "JSON config file (flags override it; docs/proxy.md)", cxxopts::value<std::string>())
      ("settings-markdown", "print the settings as docs/proxy.md's table and exit")
      ("h,help", "print this help");
  settings.add_options(options, defaults);
  try {
    const auto args = options.parse(argc, argv);
    if (args.count("help")) {
      std::puts(options.help().c_str());
      return 0;
    }
    if (args.count("settings-markdown")) {
      std::fputs(settings.markdown(defaults).c_str(), stdout);
      return 0;
    }
    monitor::proxy::ProxyConfig config;
    if (args.count("config")) config.load_file(args["config"].as<std::string>());
    settings.apply(args, config, defaults);
    spdlog::set_default_logger(spdlog::stderr_color_mt("proxy"));
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    monitor::proxy::Proxy proxy(std::move(config));
    return proxy.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "monitor-proxy: %s\n", e.what());
    return 2;
  }
}
