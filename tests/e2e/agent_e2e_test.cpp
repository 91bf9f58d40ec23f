// End-to-end: a real monitor-agent process, real writer processes, real
// shared memory and a real Unix socket; the agent's output is checked exactly.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sys/mman.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "e2e/agent_output.hpp"
#include "e2e/workload.hpp"
#include "model/log_histogram.hpp"
#include "model/op.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::TempRing;
using namespace monitor::e2e;

namespace {

struct RunningAgent {
  TempDir dir;
  TempRing ring{"e2e"};
  std::string socket = dir.file("agent.sock");
  std::string output = dir.file("out.jsonl");
  std::string log = dir.file("agent.log");
  std::optional<ChildProcess> process;

  explicit RunningAgent(std::vector<std::string> extra_args = {}) {
    std::vector<std::string> argv = {MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", socket,
                                     "--output", output, "--server-id", "500"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process.emplace(ChildProcess::spawn(argv, "", log));
    // Started once it says its windows: the socket is bound earlier, before
    // the agent has looked at what waits in its ring.
    REQUIRE(monitor::test::wait_until([&] { return read_file(log).find("late window") != std::string::npos; }, 10s));
  }

  /// SIGTERM, expect a clean exit, return the merged output.
  std::map<SeriesKey, MergedSeries> stop() {
    process->signal(SIGTERM);
    const auto rc = process->wait_for(20s);
    INFO("agent log:\n" << read_file(log));
    REQUIRE(rc == 0);
    return read_agent_output(output);
  }

  ChildProcess writer(const std::vector<std::string>& args, const std::string& stdout_path = {}) {
    std::vector<std::string> argv = {MONITOR_E2E_WRITER_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    return ChildProcess::spawn(argv, stdout_path, "", {std::string(MONITOR_RING_ENV) + "=" + ring.name()});
  }

  void send(const std::string& datagram) const {
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) ==
            static_cast<ssize_t>(datagram.size()));
    close(fd);
  }
};

long parse_full_retries(const std::string& text) {
  const auto at = text.find("full_retries=");
  return at == std::string::npos ? -1 : std::stol(text.substr(at + 13));
}

}  // namespace

TEST_CASE("2 writer processes x 2 threads through SDK and socket: the agent's aggregates are exact", "[e2e]") {
  RunningAgent agent;
  constexpr int kProcesses = 2, kPerThread = 25000;
  std::vector<ChildProcess> writers;
  for (int p = 0; p < kProcesses; ++p) {
    writers.push_back(agent.writer({"workload", std::to_string(p), agent.socket, std::to_string(kPerThread)},
                                   agent.dir.file("writer" + std::to_string(p) + ".out")));
  }
  long full_retries = 0;
  for (int p = 0; p < kProcesses; ++p) {
    REQUIRE(writers[static_cast<size_t>(p)].wait_for(60s) == 0);
    full_retries += parse_full_retries(read_file(agent.dir.file("writer" + std::to_string(p) + ".out")));
  }
  // A graceful stop drains the socket and the ring before it writes out the last seconds.
  const auto got = agent.stop();

  // What the agent must have produced, merged over all seconds.
  std::map<SeriesKey, monitor::model::Stats> expected;
  std::map<SeriesKey, monitor::model::LogHistogram> expected_hist;
  int64_t ring_reports = 0, socket_lines = 0;
  for (int p = 0; p < kProcesses; ++p) {
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kPerThread; ++i) {
        const Report r = workload_report(p, t, i);
        const bool via_socket = r.path == Path::kSocketNative || r.path == Path::kSocketStatsd;
        (via_socket ? socket_lines : ring_reports) += 1;
        for (const auto& op : monitor::model::kOps) {
          if ((static_cast<uint32_t>(r.ops) & op.bit) == 0) continue;
          const SeriesKey key{kService, r.attr, r.server_id, std::string(op.name)};
          expected[key].add(r.value, i);  // i orders each thread's reports, as its timestamps do
          if (op.bit == monitor::kHist) expected_hist[key].add(r.value);
        }
      }
    }
  }

  size_t compared = 0;
  for (const auto& [key, want] : expected) {
    const auto& [service, attr, server, op] = key;
    INFO(service << " " << attr << " server " << server << " " << op);
    const auto it = got.find(key);
    REQUIRE(it != got.end());
    const monitor::model::Stats& have = it->second.stats;
    if (op == "SUM") CHECK(have.sum == want.sum);
    if (op == "MAX") CHECK(have.max == want.max);
    if (op == "MIN") CHECK(have.min == want.min);
    if (op == "COUNT") CHECK(have.count == want.count);
    if (op == "AVG") {
      CHECK(have.sum == want.sum);
      CHECK(have.count == want.count);
    }
    if (op == "FIRST") CHECK(have.first == want.first);
    if (op == "LAST") CHECK(have.last == want.last);
    if (op == "HIST") {
      CHECK(it->second.hist == expected_hist[key]);
      CHECK(have.min == want.min);
      CHECK(have.max == want.max);
    }
    ++compared;
  }
  // Nothing beyond the expected series (besides the agent's own health).
  size_t workload_series = 0;
  for (const auto& [key, m] : got) workload_series += std::get<0>(key) == kService;
  CHECK(workload_series == expected.size());
  // 6 ops x 3 servers (Sdk.Handle) + 3 x 3 (Sdk.Names) + 4 x 3 (Socket.Native)
  // + 2 x 3 (Socket.Statsd) + 3 ops x 4 writer threads (Seq.Order).
  CHECK(compared == 57);

  CHECK(self_metric_sum(got, "Reports.Ring") == ring_reports);
  CHECK(self_metric_sum(got, "Reports.Socket") == socket_lines);
  CHECK(self_metric_sum(got, "Socket.BadLines") == 0);
  CHECK(self_metric_sum(got, "Ring.Dropped") == full_retries);  // every full-lane retry seen by the agent
  CHECK(self_metric_sum(got, "Time.Late") == 0);
}

TEST_CASE("bad lines are counted and logged while good ones in the same datagram still count", "[e2e][failure]") {
  RunningAgent agent;
  agent.send("E2e.Test Good.Line 1 5 SUM 0\nnot a line\nE2e.Test Good.Line 1 7 SUM 0\n\x01\x02\xff\n");
  agent.send(std::string(70000, 'x'));  // larger than the agent's datagram buffer: truncated
  agent.send("e2e.test.hits.total:abc|c\nshop:1|s\nE2e.Test Good.Line 2 1 SUM 0");
  const auto got = agent.stop();  // drains the socket first
  CHECK(got.at({"E2e.Test", "Good.Line", 1, "SUM"}).stats.sum == 12);
  CHECK(got.at({"E2e.Test", "Good.Line", 2, "SUM"}).stats.sum == 1);
  CHECK(self_metric_sum(got, "Socket.BadLines") == 5);  // 2 + truncated datagram + 2
  CHECK(self_metric_sum(got, "Reports.Socket") == 3);
  CHECK_THAT(read_file(agent.log), Catch::Contains("bad line"));
}

TEST_CASE("a writer killed with SIGKILL does not stop the agent, and its lane is freed", "[e2e][failure][crash]") {
  RunningAgent agent;
  auto doomed = agent.writer({"forever"}, agent.dir.file("doomed.out"));
  // Killed once it holds a lane and reports flat out.
  REQUIRE(monitor::test::wait_until([&] { return read_file(agent.dir.file("doomed.out")) == "reporting\n"; }, 10s));
  doomed.signal(SIGKILL);
  REQUIRE(doomed.wait_for(5s) == 128 + SIGKILL);
  // The agent's sweep runs once a second: wait for it to notice.
  REQUIRE(monitor::test::wait_until([&] { return read_file(agent.log).find("freed") != std::string::npos; }, 5s));

  auto survivor = agent.writer({"workload", "0", agent.socket, "1000"});
  REQUIRE(survivor.wait_for(30s) == 0);
  const auto got = agent.stop();
  CHECK(got.at({"E2e.Test", "Killed.Writer", 1, "SUM"}).stats.sum > 0);
  CHECK(self_metric_sum(got, "Ring.Abandoned") <= 1);
  // The survivor's reports all arrived.
  int64_t expected_count = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < 1000; ++i) {
      const Report r = workload_report(0, t, i);
      if (std::string_view(r.attr) == "Sdk.Names" && r.server_id == 1) ++expected_count;
    }
  }
  CHECK(got.at({"E2e.Test", "Sdk.Names", 1, "COUNT"}).stats.count == static_cast<uint64_t>(expected_count));
}

TEST_CASE("reports older than the late window are counted as late", "[e2e][failure]") {
  RunningAgent agent;
  auto late = agent.writer({"late", "25"});
  REQUIRE(late.wait_for(10s) == 0);
  const auto got = agent.stop();
  CHECK(self_metric_sum(got, "Time.Late") == 25);
  CHECK(got.count({"E2e.Test", "Late.Report", 1, "SUM"}) == 0);
}

TEST_CASE("the agent restarts on a ring that already holds reports and drains them", "[e2e]") {
  TempDir dir;
  TempRing ring("restart");
  // Reports written while no agent runs wait in the ring the SDK created.
  auto writer = ChildProcess::spawn({MONITOR_E2E_WRITER_PATH, "workload", "0", dir.file("none.sock"), "500"}, "",
                                    "", {std::string(MONITOR_RING_ENV) + "=" + ring.name()});
  CHECK(writer.wait_for(30s).has_value());  // socket lines fail (no agent): exit code says so; ring ones wait
  auto agent = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", "", "--output",
                                    dir.file("out.jsonl"), "--late-window", "60", "--no-self-metrics"},
                                   "", dir.file("agent.log"));
  // Once started it drains what waits in the ring; a graceful stop drains the rest.
  REQUIRE(monitor::test::wait_until([&] { return read_file(dir.file("agent.log")).find("late window") !=
                                                 std::string::npos; },
                                    10s));
  agent.signal(SIGTERM);
  REQUIRE(agent.wait_for(20s) == 0);
  const auto got = read_agent_output(dir.file("out.jsonl"));
  int64_t expected = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < 500; ++i) expected += std::string_view(workload_report(0, t, i).attr) == "Seq.Order";
  }
  int64_t seq_count = 0;
  for (const auto& [key, m] : got) {
    if (std::get<1>(key) == "Seq.Order" && std::get<3>(key) == "COUNT") seq_count += static_cast<int64_t>(m.stats.count);
  }
  CHECK(seq_count == expected);
}

TEST_CASE("monitor-agent --help describes it and a bad config stops it with a clear message", "[e2e][failure]") {
  TempDir dir;
  {
    auto help = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--help"}, dir.file("help.txt"));
    REQUIRE(help.wait_for(10s) == 0);
    CHECK_THAT(read_file(dir.file("help.txt")), Catch::Contains("--late-window"));
  }
  {
    std::ofstream(dir.file("bad.json")) << "{\"late_window_s\": \"soon\"}";
    auto bad = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--config", dir.file("bad.json")}, "", dir.file("err.txt"));
    REQUIRE(bad.wait_for(10s) == 2);
    CHECK_THAT(read_file(dir.file("err.txt")), Catch::Contains("late_window_s") && Catch::Contains("integer"));
  }
  {
    auto bad = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--late-window", "-4"}, "", dir.file("err2.txt"));
    REQUIRE(bad.wait_for(10s) == 2);
    CHECK_THAT(read_file(dir.file("err2.txt")), Catch::Contains("late_window_s"));
  }
  {
    std::ofstream(dir.file("not-a-socket")) << "x";
    auto bad = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--socket", dir.file("not-a-socket"), "--ring",
                                    "/mt-e2e-sockcheck"}, "", dir.file("err3.txt"));
    REQUIRE(bad.wait_for(10s) == 2);
    CHECK_THAT(read_file(dir.file("err3.txt")), Catch::Contains("bind socket"));
    shm_unlink("/mt-e2e-sockcheck");
  }
}

TEST_CASE("a second agent on a ring that already has a live reader refuses to start", "[e2e][failure]") {
  RunningAgent first;
  TempDir dir;
  auto second = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", first.ring.name(), "--socket", dir.file("s2.sock"),
                                     "--output", dir.file("out2.jsonl")},
                                    "", dir.file("err.txt"));
  REQUIRE(second.wait_for(10s) == 2);
  CHECK_THAT(read_file(dir.file("err.txt")), Catch::Contains("already has a live reader"));
  first.stop();
}

TEST_CASE("a full output disk is counted and logged and the agent keeps running", "[e2e][failure]") {
  TempDir dir;
  TempRing ring("fulldisk");
  auto agent = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", dir.file("agent.sock"),
                                    "--output", "/dev/full"},
                                   "", dir.file("agent.log"));
  struct stat st {};
  REQUIRE(monitor::test::wait_until([&] { return stat(dir.file("agent.sock").c_str(), &st) == 0; }, 10s));
  auto writer = ChildProcess::spawn({MONITOR_E2E_WRITER_PATH, "workload", "0", dir.file("agent.sock"), "2000"}, "",
                                    "", {std::string(MONITOR_RING_ENV) + "=" + ring.name()});
  REQUIRE(writer.wait_for(30s) == 0);
  // Past the late window seconds are written, and fail.
  REQUIRE(monitor::test::wait_until([&] { return read_file(dir.file("agent.log")).find("writing aggregates failed") !=
                                                 std::string::npos; },
                                    10s));
  CHECK(agent.wait_for(0ms) == std::nullopt);  // still running
  agent.signal(SIGTERM);
  REQUIRE(agent.wait_for(20s) == 0);
  const std::string log = read_file(dir.file("agent.log"));
  INFO(log);
  CHECK_THAT(log, Catch::Contains("0 records written"));
  CHECK_THAT(log, Catch::Contains("records failed") && !Catch::Contains(" 0 records failed"));
}
