// monitor-agent: drains the local ring and socket, aggregates per second.
#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "agent/agent.hpp"
#include "common/daemon_main.hpp"

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
  const monitor::Daemon<AgentConfig> daemon{
      "monitor-agent",
      "Per-host monitor agent: drains the libmonitor ring and the Unix socket,\n"
      "aggregates per second and writes the aggregates as JSON lines.",
      "docs/agent.md", monitor::agent::agent_settings(), [](cxxopts::OptionAdder& add) {
        add("run-plugin", "run this plugin once, print each line it reported with its verdict, and exit (1 when it "
            "failed or wrote a bad line)", cxxopts::value<std::string>());
      }};
  return monitor::daemon_main(argc, argv, daemon, [](AgentConfig config, const cxxopts::ParseResult& args) {
    if (args.count("run-plugin")) return run_plugin(args["run-plugin"].as<std::string>(), config);
    monitor::agent::Agent::install_signal_handlers();
    monitor::agent::Agent agent(std::move(config));
    return agent.run();
  });
}
