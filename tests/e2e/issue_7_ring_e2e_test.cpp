// Issue 7, item 1, end to end: a real monitor-agent, real writer processes,
// a real hostile process and a real PID namespace.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "e2e/agent_output.hpp"
#include "e2e/steady_writer.hpp"
#include "monitor/monitor.h"
#include "support/catch_result.hpp"
#include "ring/shm_segment.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::TempRing;
using namespace monitor::e2e;

namespace {

struct Agent {
  TempDir dir;
  TempRing ring{"e2e-i7"};
  std::string output = dir.file("out.jsonl");
  std::string log = dir.file("agent.log");
  std::optional<ChildProcess> process;

  Agent() {
    process.emplace(ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", "", "--output",
                                         output, "--server-id", "500"},
                                        "", log));
    REQUIRE(monitor::test::wait_until([&] { return read_file(log).find("late window") != std::string::npos; }, 10s));
  }

  bool log_has(const std::string& text) const { return read_file(log).find(text) != std::string::npos; }

  std::map<SeriesKey, MergedSeries> stop() {
    process->signal(SIGTERM);
    const auto rc = process->wait_for(20s);
    INFO("agent log:\n" << read_file(log));
    REQUIRE(rc == 0);
    return read_agent_output(output);
  }

  ChildProcess steady(const std::string& out, int64_t server, int rate, int seconds,
                      std::vector<std::string> prefix = {}) const {
    return spawn_steady(ring.name(), out, server, rate, seconds, std::move(prefix));
  }
};

int64_t steady_sum(const std::map<SeriesKey, MergedSeries>& got, int64_t server) {
  const auto it = got.find({"E2e.Test", "Steady.Count", server, "SUM"});
  return it == got.end() ? 0 : it->second.stats.sum;
}

}  // namespace

TEST_CASE("issue 7: a ring whose header another process rewrote is retired, counted, and reporting resumes in a new one",
          "[e2e][issue7][failure]") {
  Agent agent;
  auto writer = agent.steady(agent.dir.file("writer.out"), 1, 1000, 5);
  REQUIRE(monitor::test::wait_until([&] { return read_file(agent.output).find("Steady.Count") != std::string::npos; },
                                    10s));
  {
    // A process of the ring's group rewrites geometry in the header.
    auto segment = monitor::ring::ShmSegment::open_or_create(agent.ring.name(), monitor::ring::Geometry{});
    REQUIRE(segment);
    segment->header().lane_count = 0xFFFFFFFFu;
    segment->header().names_offset = ~uint64_t{0} - 64;
  }
  REQUIRE(monitor::test::wait_until([&] { return agent.log_has("retiring it and creating a new one"); }, 5s));
  REQUIRE(monitor::test::wait_until([&] { return agent.log_has("writer processes moved to this ring"); }, 5s));
  REQUIRE(writer.wait_for(20s) == 0);
  // The retired ring is drained for 5 s after it is given up.
  REQUIRE(monitor::test::wait_until([&] { return agent.log_has("stopped draining the retired ring"); }, 10s));
  const auto got = agent.stop();
  CHECK(self_metric_sum(got, "Ring.Retired") == 1);
  CHECK(self_metric_sum(got, "Ring.WriterRebinds") == 1);
  // Every report the writer was told MONITOR_OK for arrived: from the old
  // ring before and just after the tampering, and from the new one after.
  CHECK(steady_sum(got, 1) == ok_count(agent.dir.file("writer.out")));
}

TEST_CASE("issue 7: a writer in another PID namespace keeps its lane while it lives, and nothing it sent is lost",
          "[e2e][issue7]") {
  if (geteuid() != 0) {
    WARN("needs root for unshare --pid; skipped");
    return;
  }
  Agent agent;
  // pid 1 of its namespace: from the agent's side that pid is another process.
  auto contained = agent.steady(agent.dir.file("contained.out"), 2, 2000, 5,
                                {"/usr/bin/unshare", "--pid", "--fork", "--mount-proc"});
  // Writers that start later compete for lanes, as on a busy host.
  REQUIRE(monitor::test::wait_until([&] { return read_file(agent.output).find("Steady.Count") != std::string::npos; },
                                    10s));
  std::vector<ChildProcess> others;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(monitor::test::wait_until([&] { return read_file(agent.output).size() > (i + 1) * 2000u; }, 10s));
    others.push_back(agent.steady(agent.dir.file("other" + std::to_string(i) + ".out"), 3 + i, 1000, 2));
  }
  REQUIRE(contained.wait_for(20s) == 0);
  for (auto& o : others) REQUIRE(o.wait_for(20s) == 0);
  CHECK_FALSE(agent.log_has("freed"));  // no lane was taken from a live writer
  const auto got = agent.stop();
  CHECK(steady_sum(got, 2) == ok_count(agent.dir.file("contained.out")));
  for (int i = 0; i < 3; ++i) {
    CHECK(steady_sum(got, 3 + i) == ok_count(agent.dir.file("other" + std::to_string(i) + ".out")));
  }
}

TEST_CASE("issue 7: an agent stopped for 5 s under load loses nothing that waited in the ring meanwhile",
          "[e2e][issue7][failure]") {
  Agent agent;
  auto writer = agent.steady(agent.dir.file("writer.out"), 1, 1000, 9);
  REQUIRE(monitor::test::wait_until([&] { return read_file(agent.output).find("Steady.Count") != std::string::npos; },
                                    10s));
  agent.process->signal(SIGSTOP);  // an overloaded host, a debugger, a paused container
  const auto stopped = std::chrono::steady_clock::now();
  // The stall itself is the condition: 5 s, over twice the late window.
  REQUIRE(monitor::test::wait_until([&] { return std::chrono::steady_clock::now() - stopped >= 5s; }, 6s));
  agent.process->signal(SIGCONT);
  REQUIRE(writer.wait_for(20s) == 0);
  const auto got = agent.stop();
  CHECK(self_metric_sum(got, "Time.Late") == 0);
  CHECK(steady_sum(got, 1) == ok_count(agent.dir.file("writer.out")));
}

TEST_CASE("issue 7: an agent restarted 5 s after the last one stopped reads what waited in the ring, not as late",
          "[e2e][issue7][failure]") {
  TempDir dir;
  TempRing ring("slow-restart");
  auto argv = std::vector<std::string>{MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", "", "--output",
                                       dir.file("out.jsonl"), "--server-id", "500"};
  std::optional<ChildProcess> agent;
  agent.emplace(ChildProcess::spawn(argv, "", dir.file("agent1.log")));
  REQUIRE(monitor::test::wait_until([&] { return read_file(dir.file("agent1.log")).find("late window") != std::string::npos; }, 10s));
  auto writer = spawn_steady(ring.name(), dir.file("writer.out"), 1, 1000, 9);
  REQUIRE(monitor::test::wait_until([&] { return read_file(dir.file("out.jsonl")).find("Steady.Count") != std::string::npos; }, 10s));
  agent->signal(SIGTERM);
  REQUIRE(agent->wait_for(20s) == 0);
  const auto stopped = std::chrono::steady_clock::now();
  REQUIRE(monitor::test::wait_until([&] { return std::chrono::steady_clock::now() - stopped >= 5s; }, 6s));
  agent.emplace(ChildProcess::spawn(argv, "", dir.file("agent2.log")));
  // Up before it is told to stop: a SIGTERM that beats the signal handlers ends it with 143.
  REQUIRE(monitor::test::wait_until([&] { return read_file(dir.file("agent2.log")).find("late window") != std::string::npos; }, 10s));
  REQUIRE(writer.wait_for(20s) == 0);
  agent->signal(SIGTERM);
  REQUIRE(agent->wait_for(20s) == 0);
  const auto got = read_agent_output(dir.file("out.jsonl"));
  INFO("second agent:\n" << read_file(dir.file("agent2.log")));
  CHECK(self_metric_sum(got, "Time.Late") == 0);
  CHECK(steady_sum(got, 1) == ok_count(dir.file("writer.out")));
}
