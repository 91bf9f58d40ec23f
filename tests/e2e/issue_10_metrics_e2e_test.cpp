// Issue 10, section 3: every daemon serves its own health as Prometheus text
// on /metrics. Real agent, Bonnie and judger on loopback; what they serve
// must pass Debian's `promtool check metrics` and count what was sent.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "e2e/agent_process.hpp"
#include "e2e/judger_process.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::free_port;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::wait_until;

namespace {

// The samples of a /metrics page by name (no labels are used), or empty.
std::map<std::string, double> samples(int port, const std::string& target = "/metrics") {
  std::map<std::string, double> out;
  const auto reply = monitor::test::http_get(port, target);
  if (reply.status != 200) return out;
  std::istringstream in(reply.body);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.find(' ');
    if (space != std::string::npos) out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

// promtool's verdict on the page: its exit code, its complaints in `said`.
int promtool_check(const TempDir& dir, int port, const std::string& target, std::string& said) {
  const std::string page = dir.file("page.txt"), out = dir.file("promtool.out");
  {
    std::ofstream(page) << monitor::test::http_get(port, target).body;
  }
  auto promtool = ChildProcess::spawn({"/bin/sh", "-c", "promtool check metrics < " + page + " > " + out + " 2>&1"});
  const auto rc = promtool.wait_for(30s);
  said = read_file(out);
  return rc.value_or(-1);
}

void send_lines(const std::string& socket_path, const std::string& lines) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(sendto(fd, lines.data(), lines.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) ==
          static_cast<ssize_t>(lines.size()));
  ::close(fd);
}

}  // namespace

TEST_CASE("issue 10: agent, Bonnie and judger serve their health on /metrics in the Prometheus text format, counting "
          "what passed through them",
          "[e2e][issue10][metrics]") {
  REQUIRE(std::system("command -v promtool > /dev/null") == 0);  // Debian's prometheus (scripts/install-deps.sh)
  TempDir dir;
  monitor::test::TempRing ring("metrics");
  std::filesystem::copy(MONITOR_EXAMPLES_REGISTRY, dir.file("registry"), std::filesystem::copy_options::recursive);
  const std::string registry = "file:" + dir.file("registry");
  const int judger_port = free_port(), query_port = free_port(), agent_metrics = free_port(), proxy_metrics = free_port();
  auto judger = monitor::e2e::spawn_judger(dir, judger_port, dir.file("judger.log"), query_port,
                                           {"--name", "judger-1", "--no-self-metrics"});
  auto bonnie = ChildProcess::spawn({MONITOR_PROXY_PATH, "--role", "bonnie", "--name", "bonnie-1", "--listen",
                                     "127.0.0.1:" + std::to_string(free_port()), "--dc", "dc1", "--registry", registry,
                                     "--data-dir", dir.file("bonnie"), "--no-self-metrics", "--metrics-listen",
                                     "127.0.0.1:" + std::to_string(proxy_metrics)},
                                    "", dir.file("bonnie.log"));
  const std::string socket_path = dir.file("agent.sock");
  auto agent = ChildProcess::spawn({MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", socket_path, "--output",
                                    "/dev/null", "--registry", registry, "--dc", "dc1", "--spool-dir",
                                    dir.file("agent-spool"), "--no-self-metrics", "--metrics-listen",
                                    "127.0.0.1:" + std::to_string(agent_metrics)},
                                   "", dir.file("agent.log"));
  REQUIRE(wait_until([&] { return std::filesystem::exists(socket_path); }, 10s));

  // 50 reports of one series, each its own second's worth: the agent counts
  // 50 socket lines, and what it forwards reaches Bonnie and the judger.
  std::string lines;
  for (int i = 0; i < 50; ++i) lines += "Shop.Api Orders.Placed 7 1 SUM 0\n";
  send_lines(socket_path, lines);
  INFO("agent:\n" << read_file(dir.file("agent.log")) << "\nbonnie:\n" << read_file(dir.file("bonnie.log"))
                  << "\njudger:\n" << read_file(dir.file("judger.log")));
  REQUIRE(wait_until([&] { return samples(agent_metrics)["monitor_agent_reports_socket_total"] == 50; }, 15s));
  REQUIRE(wait_until([&] { return samples(proxy_metrics)["monitor_proxy_reports_in_total"] >= 1; }, 30s));
  REQUIRE(wait_until([&] {
    const auto health = boost::json::parse(monitor::test::http_get(query_port, "/api/health").body);
    const double records = health.at("records").to_number<double>();
    return records >= 1 && samples(query_port)["monitor_judger_reports_stored_total"] == records;
  }, 30s));
  CHECK(samples(agent_metrics)["monitor_agent_socket_bad_lines_total"] == 0);
  CHECK(samples(agent_metrics)["process_resident_memory_bytes"] > 0);
  CHECK(samples(proxy_metrics)["monitor_proxy_reports_dropped_total"] == 0);

  for (const int port : {agent_metrics, proxy_metrics, query_port}) {
    INFO("port " << port << ":\n" << monitor::test::http_get(port, "/metrics").body);
    std::string said;
    CHECK(promtool_check(dir, port, "/metrics", said) == 0);
    CHECK(said == "");
    CHECK(samples(port).size() >= 10);
  }
  CHECK(monitor::test::http_get(agent_metrics, "/other").status == 404);

  // A port already taken is a clear error at start, not a daemon without metrics.
  auto second = ChildProcess::spawn({MONITOR_PROXY_PATH, "--role", "bonnie", "--name", "bonnie-2", "--listen",
                                     "127.0.0.1:" + std::to_string(free_port()), "--registry", registry, "--data-dir",
                                     dir.file("bonnie-2"), "--metrics-listen", "127.0.0.1:" + std::to_string(proxy_metrics)},
                                    "", dir.file("bonnie-2.log"));
  CHECK(second.wait_for(10s) == 2);
  CHECK_THAT(read_file(dir.file("bonnie-2.log")), Catch::Contains("metrics: listen on"));
  for (auto* p : {&agent, &bonnie, &judger}) p->signal(SIGTERM);
  for (auto* p : {&agent, &bonnie, &judger}) CHECK(p->wait_for(20s) == 0);
}
