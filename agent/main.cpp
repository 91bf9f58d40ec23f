// monitor-agent: drains the local ring and socket, aggregates per second.
#include <algorithm>
#include <cstdio>
#include <exception>

#include <cxxopts.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/agent.hpp"

namespace {

// monitor-agent --run-plugin FILE: what the agent would take from one run.
int run_plugin(const std::string& path, const monitor::agent::AgentConfig& config) {
  using namespace monitor::agent;
  const auto name = parse_plugin_name(path.substr(path.rfind('/') + 1));
  const int timeout_s = std::min(name ? name->interval_s : 60, config.plugins.max_timeout_s);
  if (!name) {
    std::printf("note: %s is not named <interval s>_<name>: the agent would not run it; running it once anyway\n",
                path.c_str());
  }
  const PluginRun run = run_plugin_once(path, config.plugins, config.server_id, config.statsd, timeout_s);
  for (const auto& [line, verdict] : run.verdicts) {
    if (verdict.empty()) {
      std::printf("ok   %s\n", line.c_str());
    } else {
      std::printf("bad  %s    (%s)\n", line.c_str(), verdict.c_str());
    }
  }
  fmt::print("{}{} after {} ms: {} lines taken, {} bad\n", plugin_outcome_name(run.outcome),
             run.reason.empty() ? "" : " (" + run.reason + ")", (run.ended_ns - run.started_ns) / 1'000'000,
             run.good_lines, run.bad_lines);
  if (!run.stderr_head.empty()) fmt::print("stderr: {}\n", run.stderr_head);
  if (name) {
    fmt::print("its health would be {} Plugin.{}.*, every {} s\n", config.host.service, name->segment,
               name->interval_s);
  }
  return run.outcome == PluginOutcome::kOk && run.bad_lines == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  using monitor::agent::AgentConfig;
  cxxopts::Options options("monitor-agent",
                           "Per-host monitor agent: drains the libmonitor ring and the Unix socket,\n"
                           "aggregates per second and writes the aggregates as JSON lines.");
  options.add_options()
      ("c,config", "JSON config file (flags override it; docs/agent.md)", cxxopts::value<std::string>())
      ("ring", "shm ring name (default $MONITOR_RING or /monitor-ring)", cxxopts::value<std::string>())
      ("socket", "Unix datagram socket path, \"\" for none (default " + AgentConfig::default_socket_path() + ")",
       cxxopts::value<std::string>())
      ("udp", "host:port of a UDP socket for statsd and native lines, none for no UDP (default 127.0.0.1:8125; "
       "skipped with a warning when another process has it)", cxxopts::value<std::string>())
      ("statsd-socket", "Unix stream socket for statsd lines, none for no socket (default: statsd.sock beside "
       "--socket)", cxxopts::value<std::string>())
      ("statsd-default-service", "service of statsd lines that no rule and no service: tag map (default: none; "
       "docs/socket.md)", cxxopts::value<std::string>())
      ("group", "group that may write the ring and the socket, both 0660 (default: monitor if it exists, "
       "else the agent's own)", cxxopts::value<std::string>())
      ("o,output", "aggregates as JSON lines: a file, - for stdout, or none (default: stdout unless forwarding)",
       cxxopts::value<std::string>())
      ("late-window", "seconds a report may arrive after its second ended (default 2)", cxxopts::value<int>())
      ("future-window", "seconds a report may be ahead of the agent's clock (default 2)", cxxopts::value<int>())
      ("server-id", "server id for statsd lines without one and for Monitor.Agent", cxxopts::value<int64_t>())
      ("forward", "host:port to send each second's batch to (spooled while it is down)", cxxopts::value<std::string>())
      ("registry", "registry address; without --forward, batches go to a live proxy of --dc from it",
       cxxopts::value<std::string>())
      ("dc", "this host's data centre (default dc1)", cxxopts::value<std::string>())
      ("spool-dir", "directory of the forwarding spool (default " + AgentConfig::default_state_dir() +
       "/agent-spool)", cxxopts::value<std::string>())
      ("series-per-service", "series one service may open in one second, 0 for no limit (default 500000)",
       cxxopts::value<uint32_t>())
      ("journal", "crash journal file, none for no journal (default /dev/shm/<ring>.journal)",
       cxxopts::value<std::string>())
      ("recreate-ring", "remove an existing ring (e.g. of another version) and create a new one")
      ("no-self-metrics", "do not report Monitor.Agent health metrics")
      ("no-host-metrics", "do not collect this host's metrics (CPU, memory, filesystems, disks, interfaces, ...; "
       "default: collected every second as Host.System, docs/host-metrics.md)")
      ("plugin-dir", "directory of plugins, executables named <interval s>_<name>; none for no plugins (default " +
       monitor::agent::PluginOptions::default_dir() + "; docs/plugins.md)", cxxopts::value<std::string>())
      ("run-plugin", "run this plugin once, print each line it reported with its verdict, and exit (1 when it "
       "failed or wrote a bad line)", cxxopts::value<std::string>())
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
    AgentConfig config;
    if (args.count("config")) config.load_file(args["config"].as<std::string>());
    if (args.count("ring")) config.ring = args["ring"].as<std::string>();
    if (args.count("socket")) config.socket = args["socket"].as<std::string>();
    if (args.count("udp")) config.udp = args["udp"].as<std::string>();
    if (args.count("statsd-socket")) config.statsd_socket = args["statsd-socket"].as<std::string>();
    if (args.count("statsd-default-service")) {
      config.statsd.default_service = args["statsd-default-service"].as<std::string>();
    }
    if (args.count("group")) config.group = args["group"].as<std::string>();
    if (args.count("output")) config.output = args["output"].as<std::string>();
    if (args.count("late-window")) config.late_window_s = args["late-window"].as<int>();
    if (args.count("future-window")) config.future_window_s = args["future-window"].as<int>();
    if (args.count("server-id")) config.server_id = args["server-id"].as<int64_t>();
    if (args.count("forward")) config.forward = args["forward"].as<std::string>();
    if (args.count("registry")) config.registry = args["registry"].as<std::string>();
    if (args.count("dc")) config.dc = args["dc"].as<std::string>();
    if (args.count("spool-dir")) config.spool_dir = args["spool-dir"].as<std::string>();
    if (args.count("series-per-service")) config.series_per_service = args["series-per-service"].as<uint32_t>();
    if (args.count("journal")) config.journal = args["journal"].as<std::string>();
    if (args.count("recreate-ring")) config.recreate_ring = true;
    if (args.count("no-self-metrics")) config.self_metrics = false;
    if (args.count("no-host-metrics")) config.host.enabled = false;
    if (args.count("metrics-listen")) config.metrics_listen = args["metrics-listen"].as<std::string>();
    if (args.count("log-level")) config.log_level = args["log-level"].as<std::string>();
    if (args.count("plugin-dir")) config.plugins.dir = args["plugin-dir"].as<std::string>();
    if (args.count("run-plugin")) return run_plugin(args["run-plugin"].as<std::string>(), config);

    spdlog::set_default_logger(spdlog::stderr_color_mt("agent"));
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    monitor::agent::Agent::install_signal_handlers();
    monitor::agent::Agent agent(std::move(config));
    return agent.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "monitor-agent: %s\n", e.what());
    return 2;
  }
}
