// monitor-judger: stores batches, rolls them up to minutes.
#include <cstdio>
#include <exception>

#include <cxxopts.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "judger/judger.hpp"

int main(int argc, char** argv) {
  cxxopts::Options options("monitor-judger",
                           "Judger: receives per-second batches (docs/protocol.md), stores each before\n"
                           "acknowledging it, and rolls them up to minutes per server and in total.");
  const monitor::judger::JudgerConfig defaults;
  options.add_options()
      ("c,config", "JSON config file (flags override it; docs/judger.md)", cxxopts::value<std::string>())
      ("name", "name in the registry (default " + defaults.name + ")", cxxopts::value<std::string>())
      ("listen", "host:port for batches (default " + defaults.listen + ")", cxxopts::value<std::string>())
      ("query-listen", "host:port of the HTTP query API (default " + defaults.query_listen + ")",
       cxxopts::value<std::string>())
      ("data-dir", "directory of the store (default " + defaults.data_dir + ")", cxxopts::value<std::string>())
      ("registry", "registry address (default " + defaults.registry + ")", cxxopts::value<std::string>())
      ("grace", "seconds after a minute ends before it is final when a sender sends no watermark or went away "
       "(default " + std::to_string(defaults.grace_s) + ")", cxxopts::value<int>())
      ("watermark-wait", "seconds a live sender whose watermark lags may hold a minute (default " +
       std::to_string(defaults.watermark_wait_s) + ")", cxxopts::value<int>())
      ("late-window", "seconds a final minute stays in memory for late data (default " +
       std::to_string(defaults.late_window_s) + ")", cxxopts::value<int>())
      ("catch-up", "after a start, at most this many seconds in which no minute is final until the senders that "
       "fed this judger are back and caught up (default " + std::to_string(defaults.catch_up_s) + ")",
       cxxopts::value<int>())
      ("future-window", "seconds a record may be ahead of this judger's clock (default " +
       std::to_string(defaults.future_window_s) + ")", cxxopts::value<int>())
      ("max-connections", "batch connections at once (default " + std::to_string(defaults.max_connections) + ")",
       cxxopts::value<uint32_t>())
      ("query-threads", "threads running store queries, off the ingest thread (default " +
       std::to_string(defaults.query_threads) + ")", cxxopts::value<int>())
      ("query-timeout", "seconds a store query may run before it is stopped with 503 (default " +
       std::to_string(defaults.query_timeout_s) + ")", cxxopts::value<int>())
      ("max-names", "service/attr names interned (default " + std::to_string(defaults.max_names) + ")",
       cxxopts::value<uint32_t>())
      ("series-per-service", "series of one service in one minute, 0 for no limit (default " +
       std::to_string(defaults.series_per_service) + ")", cxxopts::value<uint32_t>())
      ("server-id", "server id of the Monitor.Judger health metrics (default 0)", cxxopts::value<int64_t>())
      ("no-self-metrics", "do not report Monitor.Judger health metrics")
      ("no-placement", "never move services (automatic placement; monitorctl placement manual turns it off for all)")
      ("smtp-url", "SMTP server for alarm mail (default " + defaults.smtp_url + ")", cxxopts::value<std::string>())
      ("mail-from", "sender of alarm mail (default " + defaults.mail_from + ")", cxxopts::value<std::string>())
      ("dashboard-url", "the dashboard's address (http://host:port): each alarm message links to its series' chart "
       "there (default none)", cxxopts::value<std::string>())
      ("notify-tries", "deliveries of a notification tried before it is recorded as failed (default " +
       std::to_string(defaults.notify_tries) + ")", cxxopts::value<int>())
      ("notify-backoff-ms", "wait before the second try, doubling per try (default " +
       std::to_string(defaults.notify_backoff_ms) + ")", cxxopts::value<int>())
      ("command-timeout", "seconds a notification command may run (default " +
       std::to_string(defaults.command_timeout_s) + ")", cxxopts::value<int>())
      ("export", "export finished minutes to NAME=KIND:URL, KIND victoriametrics or influxdb; repeatable "
       "(docs/export.md; default none)", cxxopts::value<std::vector<std::string>>())
      ("export-backlog", "minutes a target that was down still receives (default " +
       std::to_string(defaults.export_backlog_minutes) + ")", cxxopts::value<int64_t>())
      ("export-seconds", "export each second's aggregates too (measurement monitor_second; default off)")
      ("log-level", "trace, debug, info, warn, error (default info)", cxxopts::value<std::string>())
      ("h,help", "print this help");
  try {
    const auto args = options.parse(argc, argv);
    if (args.count("help")) {
      std::puts(options.help().c_str());
      return 0;
    }
    monitor::judger::JudgerConfig config;
    if (args.count("config")) config.load_file(args["config"].as<std::string>());
    if (args.count("name")) config.name = args["name"].as<std::string>();
    if (args.count("listen")) config.listen = args["listen"].as<std::string>();
    if (args.count("query-listen")) config.query_listen = args["query-listen"].as<std::string>();
    if (args.count("data-dir")) config.data_dir = args["data-dir"].as<std::string>();
    if (args.count("registry")) config.registry = args["registry"].as<std::string>();
    if (args.count("grace")) config.grace_s = args["grace"].as<int>();
    if (args.count("watermark-wait")) config.watermark_wait_s = args["watermark-wait"].as<int>();
    if (args.count("late-window")) config.late_window_s = args["late-window"].as<int>();
    if (args.count("catch-up")) config.catch_up_s = args["catch-up"].as<int>();
    if (args.count("future-window")) config.future_window_s = args["future-window"].as<int>();
    if (args.count("max-connections")) config.max_connections = args["max-connections"].as<uint32_t>();
    if (args.count("query-threads")) config.query_threads = args["query-threads"].as<int>();
    if (args.count("query-timeout")) config.query_timeout_s = args["query-timeout"].as<int>();
    if (args.count("max-names")) config.max_names = args["max-names"].as<uint32_t>();
    if (args.count("series-per-service")) config.series_per_service = args["series-per-service"].as<uint32_t>();
    if (args.count("server-id")) config.server_id = args["server-id"].as<int64_t>();
    if (args.count("no-self-metrics")) config.self_metrics = false;
    if (args.count("no-placement")) config.placement = false;
    if (args.count("smtp-url")) config.smtp_url = args["smtp-url"].as<std::string>();
    if (args.count("mail-from")) config.mail_from = args["mail-from"].as<std::string>();
    if (args.count("dashboard-url")) config.dashboard_url = args["dashboard-url"].as<std::string>();
    if (args.count("notify-tries")) config.notify_tries = args["notify-tries"].as<int>();
    if (args.count("notify-backoff-ms")) config.notify_backoff_ms = args["notify-backoff-ms"].as<int>();
    if (args.count("command-timeout")) config.command_timeout_s = args["command-timeout"].as<int>();
    if (args.count("export")) {
      config.export_targets.clear();  // the flags replace the config file's list
      for (const auto& text : args["export"].as<std::vector<std::string>>()) {
        config.export_targets.push_back(monitor::judger::JudgerConfig::parse_export_target(text));
      }
    }
    if (args.count("export-backlog")) config.export_backlog_minutes = args["export-backlog"].as<int64_t>();
    if (args.count("export-seconds")) config.export_seconds = true;
    if (args.count("log-level")) config.log_level = args["log-level"].as<std::string>();
    spdlog::set_default_logger(spdlog::stderr_color_mt("judger"));
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    monitor::judger::Judger judger(std::move(config));
    return judger.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "monitor-judger: %s\n", e.what());
    return 2;
  }
}
