// The scenario issue 7's restart and SIGKILL tests share: agents replaced
// one after another under steady load, and the judger's minutes read back.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "e2e/agent_process.hpp"
#include "e2e/judger_process.hpp"
#include "e2e/proxy_process.hpp"
#include "e2e/query_oracle.hpp"
#include "e2e/steady_writer.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

namespace monitor::e2e {

/// Two steady writers (servers 1 and 2 of E2e.Test Steady.Count, 500 reports/s
/// for `seconds`) report into `ring` while the agent that forwards them,
/// straight to a judger or (a second SECTION) through Bonnie, is ended three
/// times by `end_agent` and started again at once; its logs are
/// agent-0.log .. agent-3.log in `dir`. Each one is ended once it has started
/// and the judger has stored a batch more than before it started. Then, for
/// each writer, the judger's minutes read through monitorctl must equal what
/// the writer was told MONITOR_OK for. Every process is stopped at the end.
inline void replace_agent_under_load(const test::TempDir& dir, const test::TempRing& ring, int seconds,
                                     const std::function<void(test::ChildProcess&)>& end_agent) {
  using namespace std::chrono_literals;
  const std::string service = "E2e.Test", attr = "Steady.Count";
  register_service(dir, service, {attr});
  const int judger_port = test::free_port(), query_port = test::free_port();
  auto judger = spawn_judger(dir, judger_port, dir.file("judger.log"), query_port);
  std::optional<test::ChildProcess> bonnie;
  std::string forward;
  SECTION("straight to the judger") { forward = "127.0.0.1:" + std::to_string(judger_port); }
  SECTION("through Bonnie") { bonnie.emplace(spawn_proxy(dir, "bonnie", "bonnie-1", test::free_port(), "central")); }
  const auto argv = agent_argv(dir, ring, forward);
  std::optional<test::ChildProcess> agent;
  agent.emplace(test::ChildProcess::spawn(argv, "", dir.file("agent-0.log")));
  const int64_t start = unix_now_s();
  auto writer1 = spawn_steady(ring.name(), dir.file("writer1.out"), 1, 500, seconds);
  auto writer2 = spawn_steady(ring.name(), dir.file("writer2.out"), 2, 500, seconds);
  for (int replaced = 1; replaced <= 3; ++replaced) {
    const std::string log = dir.file("agent-" + std::to_string(replaced - 1) + ".log");
    const int64_t stored_before = judger_health(query_port, "batches_stored");
    REQUIRE(test::wait_until([&] { return test::read_file(log).find("late window") != std::string::npos; }, 10s));
    REQUIRE(test::wait_until([&] { return judger_health(query_port, "batches_stored") > stored_before; }, 10s));
    end_agent(*agent);
    agent.emplace(test::ChildProcess::spawn(argv, "", dir.file("agent-" + std::to_string(replaced) + ".log")));
  }
  REQUIRE(writer1.wait_for(30s) == 0);
  REQUIRE(writer2.wait_for(30s) == 0);
  const int64_t last = unix_now_s();
  for (const int64_t server : {1, 2}) {
    const double expected = static_cast<double>(ok_count(dir.file("writer" + std::to_string(server) + ".out")));
    const double got = query_sum_when_final(dir, service, attr, "SUM", std::to_string(server), start, last, expected);
    INFO("server " << server << "\njudger:\n" << test::read_file(dir.file("judger.log")) << "\nlast agent:\n"
                   << test::read_file(dir.file("agent-3.log")));
    CHECK(got == expected);
  }
  stop(*agent, "agent");
  if (bonnie) stop(*bonnie, "bonnie");
  stop(judger, "judger");
}

}  // namespace monitor::e2e
