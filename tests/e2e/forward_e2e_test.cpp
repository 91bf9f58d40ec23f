// End-to-end: writer processes -> SDK and socket -> monitor-agent -> TCP ->
// monitor-judger, with the judger killed by SIGKILL while reports flow and
// restarted later. The judger serves every report exactly once (its query API).
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

#include <catch2/catch.hpp>

#include "e2e/exactness.hpp"
#include "e2e/judger_process.hpp"
#include "e2e/query_oracle.hpp"
#include "e2e/workload.hpp"
#include "model/op.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::TempRing;
using monitor::test::wait_until;
using namespace monitor::e2e;

TEST_CASE("agent forwarding survives a judger killed with SIGKILL: every report stored exactly once",
          "[e2e][forward][crash][slow]") {
  TempDir dir;
  TempRing ring("forward");
  const int port = monitor::test::free_port(), query_port = monitor::test::free_port();
  const int64_t start = unix_now_s();
  std::optional<ChildProcess> judger;
  judger.emplace(spawn_judger(dir, port, dir.file("judger1.log"), query_port));
  const std::string socket = dir.file("agent.sock");
  auto agent = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", socket, "--output",
                                    dir.file("out.jsonl"), "--forward", "127.0.0.1:" + std::to_string(port),
                                    "--spool-dir", dir.file("spool"), "--no-self-metrics"},
                                   "", dir.file("agent.log"));
  struct stat st {};
  REQUIRE(wait_until([&] { return stat(socket.c_str(), &st) == 0; }, 10s));
  const std::vector<std::string> env = {std::string(MONITOR_RING_ENV) + "=" + ring.name()};
  constexpr int kPerThread = 3000;

  auto first = ChildProcess::spawn({MONITOR_E2E_WRITER_PATH, "workload", "0", socket, std::to_string(kPerThread)}, "",
                                   "", env);
  REQUIRE(first.wait_for(30s) == 0);
  // Killed once it has stored some of the agent's batches: while reports flow.
  REQUIRE(wait_until([&] { return judger_health(query_port, "batches_stored") > 0; }, 15s));
  judger->signal(SIGKILL);
  REQUIRE(judger->wait_for(5s) == 128 + SIGKILL);

  auto second = ChildProcess::spawn({MONITOR_E2E_WRITER_PATH, "workload", "1", socket, std::to_string(kPerThread)},
                                    "", "", env);
  REQUIRE(second.wait_for(30s) == 0);
  // The agent spools while nobody answers.
  REQUIRE(wait_until([&] { return read_file(dir.file("agent.log")).find("spooling until a proxy answers") !=
                                  std::string::npos; },
                     15s));
  judger.emplace(spawn_judger(dir, port, dir.file("judger2.log"), query_port));
  {
    INFO("agent log:\n" << read_file(dir.file("agent.log")) << "\njudger log:\n" << read_file(dir.file("judger2.log")));
    check_served_exactly(query_port, expected_workload({0, 1}, kPerThread), start, unix_now_s());
  }
  agent.signal(SIGTERM);
  REQUIRE(agent.wait_for(20s) == 0);
  judger->signal(SIGTERM);
  REQUIRE(judger->wait_for(20s) == 0);
  CHECK_THAT(read_file(dir.file("agent.log")), Catch::Contains("0 waiting in the spool"));
}
