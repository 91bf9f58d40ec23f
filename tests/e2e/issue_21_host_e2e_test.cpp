// Issue 21, §1: a freshly started agent reports its host with nothing to
// configure. A real monitor-agent forwarding to a real monitor-judger; what a
// user reads with `monitorctl query` against what the test reads from
// /proc/meminfo and statvfs itself.
#include <signal.h>
#include <sys/statvfs.h>

#include <chrono>
#include <fstream>
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "e2e/judger_process.hpp"
#include "e2e/monitorctl_run.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::free_port;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::wait_until;
namespace json = boost::json;

namespace {

int64_t meminfo_bytes(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string name, rest;
  int64_t kb = 0;
  while (in >> name >> kb) {
    std::getline(in, rest);
    if (name == key + ":") return kb * 1024;
  }
  return -1;
}

}  // namespace

TEST_CASE("issue 21: an agent with no host configuration reports the host's memory, filesystems and CPU, queryable "
          "once the minute is final",
          "[e2e][issue21][host][slow]") {
  TempDir dir;
  monitor::test::TempRing ring("host-metrics");
  const int port = free_port(), query_port = free_port();
  auto judger = monitor::e2e::spawn_judger(dir, port, dir.file("judger.log"), query_port);
  REQUIRE(wait_until([&] { return monitor::test::http_get(query_port, "/api/health").status == 200; }, 20s));
  // Only what a test on any machine needs: the root filesystem reported
  // whatever its type (overlay in a container is skipped by default).
  std::ofstream(dir.file("agent.json")) << R"({"host_metrics": {"skip_fs_types": ["proc", "sysfs", "tmpfs",
      "devtmpfs", "devpts", "cgroup*", "mqueue"]}})";
  auto agent = ChildProcess::spawn({MONITOR_AGENT_PATH, "--config", dir.file("agent.json"), "--ring", ring.name(),
                                    "--socket", "", "--udp", "none", "--statsd-socket", "none", "--spool-dir",
                                    dir.file("spool"), "--forward", "127.0.0.1:" + std::to_string(port),
                                    "--server-id", "7", "--no-self-metrics"},
                                   "", dir.file("agent.log"));
  const std::string address = "127.0.0.1:" + std::to_string(query_port);
  auto last_value = [&](const std::string& attr, const std::string& op) -> std::optional<double> {
    const auto run = monitor::e2e::monitorctl(dir, "", {"query", "--query-address", address, "--service",
                                                        "Host.System", "--attr", attr, "--op", op, "--server", "7",
                                                        "--from", "-10m", "--output", "json"});
    if (run.rc != 0) return std::nullopt;
    const auto points = json::parse(run.out).at("points").as_array();
    if (points.empty()) return std::nullopt;
    return points.back().as_array().at(1).to_number<double>();
  };
  std::optional<double> total;
  INFO("agent log:\n" << read_file(dir.file("agent.log")) << "\njudger log:\n" << read_file(dir.file("judger.log")));
  REQUIRE(wait_until([&] { return (total = last_value("Mem.TotalBytes", "LAST")).has_value(); }, 150s));
  CHECK(*total == static_cast<double>(meminfo_bytes("MemTotal")));
  struct statvfs root {};
  REQUIRE(::statvfs("/", &root) == 0);
  CHECK(last_value("Fs.Root.TotalBytes", "LAST") == static_cast<double>(root.f_blocks * root.f_frsize));
  const auto busy = last_value("Cpu.Busy", "AVG");
  REQUIRE(busy);
  CHECK(*busy >= 0);
  CHECK(*busy <= 10000);
  // A counter's minute is the sum of its seconds' changes: context switches happen every second.
  const auto switches = last_value("Cpu.ContextSwitches", "SUM");
  REQUIRE(switches);
  CHECK(*switches > 0);
  agent.signal(SIGTERM);
  CHECK(agent.wait_for(20s) == 0);
  judger.signal(SIGTERM);
  CHECK(judger.wait_for(20s) == 0);
}
