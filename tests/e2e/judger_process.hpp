// Starting a real monitor-judger for end-to-end tests.
#pragma once

#include <string>
#include <vector>

#include "monitor/monitor.h"
#include "support/child_process.hpp"
#include "e2e/registry_address.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"

namespace monitor::e2e {

/// The ring a test's daemons would report their own health into: named after
/// the test's directory, so no test writes into a ring another test (or an
/// agent on the machine) drains. Nobody creates it, so they report nothing.
inline std::string private_ring(const test::TempDir& dir) {
  return "/mt-health-" + dir.path().substr(dir.path().rfind('-') + 1);
}

/// A judger on 127.0.0.1:port (queries on query_port, a free one if 0) with its
/// store and registry under `dir`, grace 1 s and late window 5 s so tests see
/// minutes finish quickly; stderr goes to `log_path`. `extra` flags are appended.
inline test::ChildProcess spawn_judger(const test::TempDir& dir, int port, const std::string& log_path,
                                       int query_port = 0, const std::vector<std::string>& extra = {}) {
  if (query_port == 0) query_port = test::free_port();
  std::vector<std::string> argv = {MONITOR_JUDGER_PATH, "--listen", "127.0.0.1:" + std::to_string(port),
                                   "--query-listen", "127.0.0.1:" + std::to_string(query_port), "--data-dir",
                                   dir.file("judger"), "--registry", registry_address(dir), "--grace", "1",
                                   "--late-window", "5"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return test::ChildProcess::spawn(argv, "", log_path, {std::string(MONITOR_RING_ENV) + "=" + private_ring(dir)});
}

}  // namespace monitor::e2e
