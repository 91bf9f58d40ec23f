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
  options.add_options()
      ("c,config", "JSON config file (flags override it; docs/proxy.md)", cxxopts::value<std::string>())
      ("role", "clyde or bonnie (required)", cxxopts::value<std::string>())
      ("name", "name in the registry and in HELLOs (default " + defaults.name + ")", cxxopts::value<std::string>())
      ("listen", "host:port for agents and Clydes (default " + defaults.listen + ")", cxxopts::value<std::string>())
      ("dc", "data centre whose agents may pick this proxy (default " + defaults.dc + ")",
       cxxopts::value<std::string>())
      ("registry", "registry address (default " + defaults.registry + ")", cxxopts::value<std::string>())
      ("data-dir", "directory of the spools (default " + defaults.data_dir + ")", cxxopts::value<std::string>())
      ("bonnies-file", "clyde (required): file listing Bonnies, host:port per line, kept up to date",
       cxxopts::value<std::string>())
      ("server-id", "server id of the Monitor.Proxy health metrics (default 0)", cxxopts::value<int64_t>())
      ("no-self-metrics", "do not report Monitor.Proxy health metrics")
      ("metrics-listen", "host:port serving GET /metrics, its health as Prometheus text (default: none)",
       cxxopts::value<std::string>())
      ("log-level", "trace, debug, info, warn, error (default info)", cxxopts::value<std::string>())
      ("h,help", "print this help");
  try {
    const auto args = options.parse(argc, argv);
    if (args.count("help")) {
      std::puts(options.help().c_str());
      return 0;
    }
    monitor::proxy::ProxyConfig config;
    if (args.count("config")) config.load_file(args["config"].as<std::string>());
    if (args.count("role")) config.role = args["role"].as<std::string>();
    if (args.count("name")) config.name = args["name"].as<std::string>();
    if (args.count("listen")) config.listen = args["listen"].as<std::string>();
    if (args.count("dc")) config.dc = args["dc"].as<std::string>();
    if (args.count("registry")) config.registry = args["registry"].as<std::string>();
    if (args.count("data-dir")) config.data_dir = args["data-dir"].as<std::string>();
    if (args.count("bonnies-file")) config.bonnies_file = args["bonnies-file"].as<std::string>();
    if (args.count("server-id")) config.server_id = args["server-id"].as<int64_t>();
    if (args.count("no-self-metrics")) config.self_metrics = false;
    if (args.count("metrics-listen")) config.metrics_listen = args["metrics-listen"].as<std::string>();
    if (args.count("log-level")) config.log_level = args["log-level"].as<std::string>();
    spdlog::set_default_logger(spdlog::stderr_color_mt("proxy"));
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    monitor::proxy::Proxy proxy(std::move(config));
    return proxy.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "monitor-proxy: %s\n", e.what());
    return 2;
  }
}
