// monitor-dashboard: the web application and its JSON API (docs/dashboard.md).
#include <cstdio>
#include <exception>

#include <cxxopts.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "dashboard/dashboard_server.hpp"

int main(int argc, char** argv) {
  cxxopts::Options options("monitor-dashboard",
                           "Dashboard: serves the web application and its JSON API; signs in the console's\n"
                           "users and shows them the services of their roles, read from the judgers.");
  const monitor::dashboard::DashboardConfig defaults;
  options.add_options()
      ("c,config", "JSON config file (flags override it; docs/dashboard.md)", cxxopts::value<std::string>())
      ("listen", "host:port of the web application (default " + defaults.listen + ")", cxxopts::value<std::string>())
      ("registry", "registry address (default " + defaults.registry + ")", cxxopts::value<std::string>())
      ("web-root", "directory of the built web application (default: this build's, or share/monitor/dashboard)",
       cxxopts::value<std::string>())
      ("threads", "HTTP threads (default " + std::to_string(defaults.threads) + ")", cxxopts::value<int>())
      ("api-threads", "threads running API calls, which may wait on judgers (default " +
       std::to_string(defaults.api_threads) + ")", cxxopts::value<int>())
      ("session-ttl", "seconds a sign-in lasts (default " + std::to_string(defaults.session_ttl_s) + ")",
       cxxopts::value<int64_t>())
      ("judger-timeout", "seconds to wait for a judger's answer (default " + std::to_string(defaults.judger_timeout_s) +
       ")", cxxopts::value<int>())
      ("server-id", "server id of the Monitor.Dashboard health metrics (default 0)", cxxopts::value<int64_t>())
      ("no-self-metrics", "do not report Monitor.Dashboard health metrics")
      ("log-level", "trace, debug, info, warn, error (default info)", cxxopts::value<std::string>())
      ("h,help", "print this help");
  try {
    const auto args = options.parse(argc, argv);
    if (args.count("help")) {
      std::puts(options.help().c_str());
      return 0;
    }
    monitor::dashboard::DashboardConfig config;
    if (args.count("config")) config.load_file(args["config"].as<std::string>());
    if (args.count("listen")) config.listen = args["listen"].as<std::string>();
    if (args.count("registry")) config.registry = args["registry"].as<std::string>();
    if (args.count("web-root")) config.web_root = args["web-root"].as<std::string>();
    if (args.count("threads")) config.threads = args["threads"].as<int>();
    if (args.count("api-threads")) config.api_threads = args["api-threads"].as<int>();
    if (args.count("session-ttl")) config.session_ttl_s = args["session-ttl"].as<int64_t>();
    if (args.count("judger-timeout")) config.judger_timeout_s = args["judger-timeout"].as<int>();
    if (args.count("server-id")) config.server_id = args["server-id"].as<int64_t>();
    if (args.count("no-self-metrics")) config.self_metrics = false;
    if (args.count("log-level")) config.log_level = args["log-level"].as<std::string>();
    spdlog::set_default_logger(spdlog::stderr_color_mt("dashboard"));
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    monitor::dashboard::DashboardServer server(std::move(config));
    return server.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "monitor-dashboard: %s\n", e.what());
    return 2;
  }
}
