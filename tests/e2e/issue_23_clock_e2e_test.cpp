// Issue 23, section 3: clock faults. An agent's clock stepped back by
// minutes while it runs (libfaketime, with a clock file the test rewrites:
// the host's NTP stepping it). What happens (docs/faults.md, "Clocks"): the
// agent goes on with its once-a-second work and re-anchors its TSC to the new
// clock within a second; its seconds only move forward, so the reports of the
// seconds it sent already are dropped and counted as late (Time.Late) until
// its clock passes them again, at most the second of the step's as ahead of
// the window (Time.Future). Every report the writer was told MONITOR_OK for
// is in the judger's minutes or in those counters.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "e2e/judger_process.hpp"
#include "e2e/proxy_process.hpp"
#include "e2e/query_oracle.hpp"
#include "e2e/steady_writer.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::free_port;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::TempRing;
using monitor::test::wait_until;
using namespace monitor::e2e;

namespace {

// Debian's libfaketime (package faketime), or "" when it is not installed.
std::string libfaketime() {
  for (const char* path : {"/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                           "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1"}) {
    if (std::filesystem::exists(path)) return path;
  }
  return "";
}

}  // namespace

TEST_CASE("issue 23: an agent whose clock steps back 3 minutes re-anchors at once and counts what it cannot keep as "
          "late, every report kept or counted",
          "[e2e][issue23][fault][clock][slow]") {
  const std::string faketime = libfaketime();
  if (faketime.empty()) {
    WARN("needs libfaketime (Debian's faketime package); skipped");
    return;
  }
  TempDir dir;
  TempRing ring("clock");
  register_service(dir, "E2e.Test", {"Steady.Count"});
  const int judger_port = free_port(), query_port = free_port();
  auto judger = spawn_judger(dir, judger_port, dir.file("judger.log"), query_port);
  const std::string clock = dir.file("clock");
  std::ofstream(clock) << "+0\n";
  const std::string metrics = fmt::format("127.0.0.1:{}", free_port());
  // Only the real-time clock moves, as when NTP steps it; the monotonic one does not.
  auto agent = ChildProcess::spawn(
      {MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", "", "--output", "none",
       "--forward", fmt::format("127.0.0.1:{}", judger_port), "--spool-dir", dir.file("agent"), "--metrics-listen",
       metrics, "--no-self-metrics"},
      "", dir.file("agent.log"),
      {"LD_PRELOAD=" + faketime, "FAKETIME_TIMESTAMP_FILE=" + clock, "FAKETIME_CACHE_DURATION=1",
       "FAKETIME_DONT_FAKE_MONOTONIC=1"});
  REQUIRE(wait_until([&] { return metrics_sample(metrics, "monitor_agent_time_future_total") == 0; }, 15s));
  const int64_t start = unix_now_s();
  auto writer = spawn_steady(ring.name(), dir.file("writer.out"), 1, 1000, 20);
  REQUIRE(wait_until([&] { return judger_health(query_port, "batches_stored") > 3; }, 15s));
  std::ofstream(clock) << "-180\n";
  REQUIRE(writer.wait_for(30s) == 0);
  // Stopping flushes the agent's open seconds, those of before the step among
  // them; its last log line counts what it dropped, to the end.
  agent.signal(SIGTERM);
  REQUIRE(agent.wait_for(20s) == 0);
  const std::string log = read_file(dir.file("agent.log"));
  INFO("agent:\n" << log << "\njudger:\n" << read_file(dir.file("judger.log")));
  const std::smatch counted = [&] {
    std::smatch m;
    REQUIRE(std::regex_search(log, m, std::regex(R"(stopped: .* (\d+) late, (\d+) future)")));
    return m;
  }();
  const int64_t late = std::stoll(counted[1]), future = std::stoll(counted[2]);
  // Before the fix the agent's second ticked on the real-time clock, so it
  // did not tick for the 3 minutes of the step, kept its TSC's old anchor,
  // and counted every report after the step as ahead of the window; and it
  // lost the seconds it had open at the step when it stopped, uncounted.
  CHECK(future <= 2000);  // at most the reports of the second or two before it re-anchored
  CHECK(late > 0);        // the seconds it sent already are not opened again: nothing counted twice
  const double expected = static_cast<double>(ok_count(dir.file("writer.out")) - future - late);
  const double got = query_sum_when_final(dir, "E2e.Test", "Steady.Count", "SUM", "total", start - 240,
                                          unix_now_s(), expected, 60s);
  INFO("query:\n" << read_file(dir.file("query.err")));
  CHECK(got == expected);
  judger.signal(SIGTERM);
  CHECK(judger.wait_for(20s) == 0);
}
