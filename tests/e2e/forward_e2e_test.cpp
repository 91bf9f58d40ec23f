// End-to-end: writer processes -> SDK and socket -> monitor-agent -> TCP ->
// monitor-judger, with the judger killed by SIGKILL while reports flow and
// restarted later. The judger's store must hold every report exactly once.
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
#include "e2e/workload.hpp"
#include "judger/minute_store.hpp"
#include "model/op.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::TempRing;
using namespace monitor::e2e;

namespace {

ChildProcess start_judger(const TempDir& dir, int port, const std::string& log) {
  return spawn_judger(dir, port, dir.file(log));
}

}  // namespace

TEST_CASE("agent forwarding survives a judger killed with SIGKILL: every report stored exactly once",
          "[e2e][forward][crash]") {
  TempDir dir;
  TempRing ring("forward");
  const int port = monitor::test::free_port();
  const int64_t start = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  std::optional<ChildProcess> judger;
  judger.emplace(start_judger(dir, port, "judger1.log"));
  const std::string socket = dir.file("agent.sock");
  auto agent = ChildProcess::spawn({MONITOR_AGENT_PATH, "--ring", ring.name(), "--socket", socket, "--output",
                                    dir.file("out.jsonl"), "--forward", "127.0.0.1:" + std::to_string(port),
                                    "--spool-dir", dir.file("spool"), "--no-self-metrics"},
                                   "", dir.file("agent.log"));
  struct stat st {};
  REQUIRE(monitor::test::wait_until([&] { return stat(socket.c_str(), &st) == 0; }, 10s));
  const std::vector<std::string> env = {std::string(MONITOR_RING_ENV) + "=" + ring.name()};
  constexpr int kPerThread = 3000;

  auto first = ChildProcess::spawn({MONITOR_E2E_WRITER_PATH, "workload", "0", socket, std::to_string(kPerThread)}, "",
                                   "", env);
  REQUIRE(first.wait_for(30s) == 0);
  std::this_thread::sleep_for(4s);  // past the agent's late window: sent and acknowledged
  judger->signal(SIGKILL);
  REQUIRE(judger->wait_for(5s) == 128 + SIGKILL);

  auto second = ChildProcess::spawn({MONITOR_E2E_WRITER_PATH, "workload", "1", socket, std::to_string(kPerThread)},
                                    "", "", env);
  REQUIRE(second.wait_for(30s) == 0);
  std::this_thread::sleep_for(4s);  // the agent spools these: nobody answers
  judger.emplace(start_judger(dir, port, "judger2.log"));
  std::this_thread::sleep_for(5s);  // reconnect (1 s backoff) and replay

  agent.signal(SIGTERM);
  REQUIRE(agent.wait_for(20s) == 0);
  judger->signal(SIGTERM);
  REQUIRE(judger->wait_for(20s) == 0);
  const std::string agent_log = read_file(dir.file("agent.log"));
  INFO("agent log:\n" << agent_log << "\njudger log:\n" << read_file(dir.file("judger2.log")));
  CHECK_THAT(agent_log, Catch::Contains("spooling until a proxy answers") && Catch::Contains("0 waiting in the spool"));

  const int64_t end = start + 120;
  check_exact(expected_workload({0, 1}, kPerThread),
              stored_workload(dir.file("judger/judger.db"), start - start % 60 - 60, end - end % 60, nullptr));
}
