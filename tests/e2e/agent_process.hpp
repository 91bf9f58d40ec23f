// A monitor-agent as end-to-end tests start it, and the graceful stop every
// daemon of a test gets.
#pragma once

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/child_process.hpp"
#include "e2e/registry_address.hpp"
#include "support/temp_names.hpp"

namespace monitor::e2e {

/// The agent's command line on `ring` with its spool under `dir`: forwarding
/// straight to `forward` (host:port), or, when it is empty, through the
/// registry's proxies of data centre "central".
inline std::vector<std::string> agent_argv(const test::TempDir& dir, const test::TempRing& ring,
                                           const std::string& forward) {
  std::vector<std::string> argv = {MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", "", "--spool-dir",
                                   dir.file("agent-spool"), "--no-self-metrics"};
  if (forward.empty()) {
    argv.insert(argv.end(), {"--registry", registry_address(dir), "--dc", "central"});
  } else {
    argv.insert(argv.end(), {"--forward", forward});
  }
  return argv;
}

/// An agent on `ring` that sends through the proxies of data centre dc1 in
/// `registry` and reports its own health as server `server_id`; output
/// discarded, spool and log under `dir` named after `name`; the host's
/// metrics only with `host_metrics` (agents collect them by default).
inline test::ChildProcess spawn_dc1_agent(const test::TempDir& dir, const std::string& ring, const std::string& registry,
                                          const std::string& name, int server_id, std::vector<std::string> extra = {},
                                          bool host_metrics = false) {
  std::vector<std::string> argv = {MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring, "--socket", "", "--output", "/dev/null",
                                   "--registry", registry, "--dc", "dc1", "--spool-dir", dir.file(name + "-spool"),
                                   "--server-id", std::to_string(server_id)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (host_metrics) argv.erase(std::find(argv.begin(), argv.end(), "--no-host-metrics"));
  return test::ChildProcess::spawn(argv, "", dir.file(name + ".log"));
}

/// SIGTERM, and a clean exit within 20 s.
inline void stop(test::ChildProcess& process, const std::string& what) {
  INFO(what);
  process.signal(SIGTERM);
  REQUIRE(process.wait_for(std::chrono::seconds(20)) == 0);
}

}  // namespace monitor::e2e
