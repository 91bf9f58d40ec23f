// `e2e_writer steady`: a writer process that reports E2e.Test Steady.Count
// SUM 1 at a steady rate and says how many calls returned MONITOR_OK, the
// figure end-to-end tests compare what users read against.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "monitor/monitor.h"
#include "support/child_process.hpp"

namespace monitor::e2e {

/// Starts `e2e_writer steady` on ring `ring_name` for `seconds` (SIGTERM ends
/// it sooner), its stdout to `out`. `prefix` runs it under another command
/// (e.g. unshare). With `servers` > 1 its reports go round servers
/// `server`..`server + servers - 1`.
inline test::ChildProcess spawn_steady(const std::string& ring_name, const std::string& out, int64_t server, int rate,
                                       int seconds, std::vector<std::string> prefix = {}, int servers = 1) {
  std::vector<std::string> argv = std::move(prefix);
  argv.insert(argv.end(), {MONITOR_E2E_WRITER_PATH, "steady", std::to_string(server), std::to_string(rate),
                           std::to_string(seconds), std::to_string(servers)});
  return test::ChildProcess::spawn(argv, out, "", {std::string(MONITOR_RING_ENV) + "=" + ring_name});
}

/// The writer's "ok=N" from its stdout file: the reports it was told MONITOR_OK for.
inline long ok_count(const std::string& out) {
  const std::string text = test::read_file(out);
  const size_t at = text.find("ok=");
  REQUIRE(at != std::string::npos);
  return std::stol(text.substr(at + 3));
}

}  // namespace monitor::e2e
