// Plugins and checks against real processes, sockets and an HTTP server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "agent/host_checks.hpp"
#include "agent/plugin_runner.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace monitor::agent;
using monitor::test::ChildProcess;
using monitor::test::TempDir;
using monitor::test::wait_until;
using namespace std::chrono_literals;

namespace {

void write_plugin(const std::string& path, const std::string& body, mode_t mode = 0755) {
  {
    std::ofstream out(path);
    out << "#!/bin/sh\n" << body << "\n";
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::map<std::string, int64_t> by_attr(const std::vector<HostSample>& samples) {
  std::map<std::string, int64_t> out;
  for (const auto& s : samples) out[s.attr] = s.value;
  return out;
}

// A process that has exited and been reaped, or is a zombie nobody reaped yet: gone either way.
bool process_gone(pid_t pid) {
  const std::string stat = monitor::test::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

TEST_CASE("a plugin's file name gives its interval and attr segment", "[plugins]") {
  auto name = parse_plugin_name("60_mysql_status.sh");
  REQUIRE(name);
  CHECK(name->interval_s == 60);
  CHECK(name->segment == "MysqlStatus");
  CHECK(parse_plugin_name("5_disk")->segment == "Disk");
  CHECK(parse_plugin_name("300_nginx.stub.py")->segment == "NginxStub");
  CHECK_FALSE(parse_plugin_name("README"));
  CHECK_FALSE(parse_plugin_name("0_never.sh"));
  CHECK_FALSE(parse_plugin_name("_x.sh"));
  CHECK_FALSE(parse_plugin_name("60_"));
  CHECK_FALSE(parse_plugin_name("100000_too_rare.sh"));
  CHECK_FALSE(parse_plugin_name("60_.sh"));
}

TEST_CASE("a plugin runs without a shell's environment, and each line gets a verdict", "[plugins]") {
  TempDir dir;
  ::setenv("MONITOR_TEST_SECRET", "leaked", 1);
  write_plugin(dir.file("10_db.sh"),
               "echo \"Shop.Db Mysql.Qps $MONITOR_SERVER_ID 42 SUM 0\"\n"
               "echo 'mysql.conns:7|g|#service:Shop.Db'\n"
               "echo 'not a line'\n"
               "env >&2\n"
               "pwd >&2\n");
  const PluginRun run = run_plugin_once(dir.file("10_db.sh"), PluginOptions{}, 77, StatsdOptions{}, 10);
  ::unsetenv("MONITOR_TEST_SECRET");
  CHECK(run.outcome == PluginOutcome::kOk);
  CHECK(run.good_lines == 2);
  CHECK(run.bad_lines == 1);
  CHECK(run.lines == "Shop.Db Mysql.Qps 77 42 SUM 0\nmysql.conns:7|g|#service:Shop.Db\n");
  REQUIRE(run.verdicts.size() == 3);
  CHECK(run.verdicts[2].second == "bad_format");
  CHECK(run.stderr_head.find("MONITOR_SERVER_ID=77") != std::string::npos);
  CHECK(run.stderr_head.find("MONITOR_INTERVAL=10") != std::string::npos);
  CHECK(run.stderr_head.find("MONITOR_TEST_SECRET") == std::string::npos);
  CHECK(run.stderr_head.find(dir.path()) != std::string::npos);  // started in its directory
  CHECK(run.segment == "Db");
}

TEST_CASE("a plugin that fails still gives its lines, and says how it failed", "[plugins]") {
  TempDir dir;
  write_plugin(dir.file("10_half.sh"), "echo 'Shop.Db Mysql.Up 1 1 LAST 0'\necho 'cannot reach mysql' >&2\nexit 3");
  const PluginRun run = run_plugin_once(dir.file("10_half.sh"), PluginOptions{}, 1, StatsdOptions{}, 10);
  CHECK(run.outcome == PluginOutcome::kFailed);
  CHECK(run.reason == "exit status 3");
  CHECK(run.good_lines == 1);
  CHECK(run.stderr_head == "cannot reach mysql\n");

  write_plugin(dir.file("10_nothing.sh"), "exit 0", 0644);  // not executable
  const PluginRun not_run = run_plugin_once(dir.file("10_nothing.sh"), PluginOptions{}, 1, StatsdOptions{}, 10);
  CHECK(not_run.outcome == PluginOutcome::kFailed);
  CHECK(not_run.reason.find("could not start") == 0);
}

TEST_CASE("a plugin that hangs is killed at its timeout with every process it started", "[plugins]") {
  TempDir dir;
  write_plugin(dir.file("1_hang.sh"), "sleep 300 &\necho $! > " + dir.file("child.pid") +
                                          "\necho 'Shop.Db Mysql.Up 1 1 LAST 0'\nsleep 300");
  const auto start = std::chrono::steady_clock::now();
  const PluginRun run = run_plugin_once(dir.file("1_hang.sh"), PluginOptions{}, 1, StatsdOptions{}, 1);
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  CHECK(run.outcome == PluginOutcome::kTimedOut);
  CHECK(run.good_lines == 1);  // what it said before it hung
  const pid_t child = std::atoi(monitor::test::read_file(dir.file("child.pid")).c_str());
  REQUIRE(child > 0);
  CHECK(wait_until([&] { return process_gone(child); }, 5s));
}

TEST_CASE("a plugin that floods is killed at max_output_bytes", "[plugins]") {
  TempDir dir;
  const std::string line = "Shop.Db Flood.Line 1 1 SUM 0";
  write_plugin(dir.file("10_flood.sh"), "yes '" + line + "'");
  PluginOptions options;
  options.max_output_bytes = 64 << 10;
  const PluginRun run = run_plugin_once(dir.file("10_flood.sh"), options, 1, StatsdOptions{}, 30);
  CHECK(run.outcome == PluginOutcome::kFlooded);
  CHECK(run.ended_ns - run.started_ns < 10'000'000'000);
  // Whole lines up to the bound are taken; the one cut there is not.
  CHECK(run.good_lines == (64 << 10) / (line.size() + 1));
  CHECK(run.bad_lines <= 1);
  CHECK(run.lines.size() <= size_t{64} << 10);
}

TEST_CASE("the runner runs each plugin on its interval and counts what goes wrong", "[plugins]") {
  TempDir dir;
  write_plugin(dir.file("1_good.sh"), "echo \"Shop.Db Good.Runs $MONITOR_SERVER_ID 1 SUM 0\"");
  write_plugin(dir.file("1_fail.sh"), "echo 'junk'\nexit 1");
  write_plugin(dir.file("1_hang.sh"), "exec sleep 300");
  write_plugin(dir.file("1_open.sh"), "echo 'Shop.Db Open.Runs 1 1 SUM 0'", 0777);  // anyone could rewrite it
  write_plugin(dir.file("README"), "not a plugin");
  PluginOptions options;
  options.dir = dir.path();
  PluginRunner runner(options, 5, StatsdOptions{});
  std::vector<PluginRun> runs;
  REQUIRE(wait_until(
      [&] {
        runner.take(runs);
        return runner.counters().timed_out.load() >= 2 && runner.counters().runs.load() >= 6;
      },
      20s));
  runner.take(runs);
  const PluginCounters& c = runner.counters();
  CHECK(c.refused.load() == 1);
  CHECK(c.failed.load() >= 2);
  CHECK(c.bad_lines.load() >= 2);
  std::map<std::string, int> runs_of;
  for (const PluginRun& run : runs) {
    ++runs_of[run.file];
    if (run.file == "1_good.sh") {
      CHECK(run.outcome == PluginOutcome::kOk);
      CHECK(run.lines == "Shop.Db Good.Runs 5 1 SUM 0\n");
    }
    if (run.file == "1_hang.sh") {
      CHECK(run.outcome == PluginOutcome::kTimedOut);
      const auto health = by_attr(PluginRunner::health_round(run).samples);
      CHECK(health.at("Plugin.Hang.TimedOut") == 1);
      CHECK(health.at("Plugin.Hang.Runs") == 1);
      CHECK(health.at("Plugin.Hang.Millis") >= 900);
    }
  }
  CHECK(runs_of["1_good.sh"] >= 2);
  CHECK(runs_of["1_hang.sh"] >= 2);
  CHECK(runs_of.count("1_open.sh") == 0);
  CHECK(runs_of.count("README") == 0);
}

TEST_CASE("at most max_running plugins run at once", "[plugins]") {
  TempDir dir;
  std::filesystem::create_directory(dir.file("running"));
  for (int i = 0; i < 6; ++i) {
    write_plugin(dir.file("1_slow" + std::to_string(i) + ".sh"),
                 "touch running/$$\nsleep 0.7\nrm running/$$\necho 'Shop.Db Slow.Runs 1 1 SUM 0'");
  }
  PluginOptions options;
  options.dir = dir.path();
  options.max_running = 2;
  PluginRunner runner(options, 1, StatsdOptions{});
  size_t most = 0;
  const auto until = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < until) {
    size_t now = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.file("running"))) ++now;
    most = std::max(most, now);
    std::this_thread::sleep_for(5ms);
  }
  CHECK(most == 2);
  CHECK(runner.counters().skipped.load() > 0);  // six 0.7 s runs a second do not fit in two slots
}

TEST_CASE("checks read their config and refuse what cannot work", "[checks]") {
  auto checks = read_checks(boost::json::parse(R"([
    {"type": "tcp", "name": "Redis", "address": "127.0.0.1:6379"},
    {"type": "process", "name": "Nginx", "process": "nginx", "interval_s": 30},
    {"type": "process", "name": "Worker", "cmdline": "worker.py --queue"},
    {"type": "http", "name": "Health", "url": "http://127.0.0.1:8080/health", "timeout_ms": 2000}])"));
  REQUIRE(checks.size() == 4);
  CHECK(checks[1].interval_s == 30);
  CHECK(checks[2].match_cmdline);
  CHECK(checks[3].timeout_ms == 2000);
  auto refused = [](const char* text) {
    try {
      read_checks(boost::json::parse(text));
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(refused(R"([{"type": "tcp", "name": "redis", "address": "127.0.0.1:6379"}])").find("name") != std::string::npos);
  CHECK(refused(R"([{"type": "tcp", "name": "Redis"}])").find("address") != std::string::npos);
  CHECK(refused(R"([{"type": "http", "name": "Api", "url": "https://x/"}])").find("https") != std::string::npos);
  CHECK(refused(R"([{"type": "ping", "name": "Api"}])").find("type") != std::string::npos);
  CHECK(refused(R"([{"type": "process", "name": "P", "process": "a", "cmdline": "b"}])").find("one of") !=
        std::string::npos);
  CHECK(refused(R"([{"type": "tcp", "name": "A", "address": "1.2.3.4:5", "interval_s": 1, "timeout_ms": 5000}])")
            .find("timeout_ms") != std::string::npos);
  CHECK(refused(R"([{"type": "tcp", "name": "A", "address": "1.2.3.4:5"}, {"type": "tcp", "name": "A",
                   "address": "1.2.3.4:6"}])")
            .find("two checks") != std::string::npos);
}

TEST_CASE("a TCP check says whether the port answers", "[checks]") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  CheckSpec check{CheckSpec::Kind::kTcp, "Port", "127.0.0.1:" + std::to_string(ntohs(addr.sin_port))};
  auto up = by_attr(run_check(check));
  CHECK(up.at("Check.Port.Up") == 1);
  CHECK(up.at("Check.Port.Micros") >= 0);
  ::close(fd);
  auto down = by_attr(run_check(check));
  CHECK(down.at("Check.Port.Up") == 0);
  CHECK(down.count("Check.Port.Micros") == 0);
}

TEST_CASE("a process check counts processes by name and by command line", "[checks]") {
  TempDir dir;
  const std::string name = "mtsl" + std::to_string(::getpid() % 100000);  // comm is the file's name
  std::filesystem::copy_file("/bin/sleep", dir.file(name));
  const std::string token = "301." + std::to_string(::getpid());  // a unique sleep length, for the command line
  std::vector<ChildProcess> sleepers;
  for (int i = 0; i < 3; ++i) sleepers.push_back(ChildProcess::spawn({dir.file(name), "300"}));
  sleepers.push_back(ChildProcess::spawn({"/bin/sleep", token}));
  CheckSpec by_name{CheckSpec::Kind::kProcess, "Sleepers", name};
  CheckSpec by_cmdline{CheckSpec::Kind::kProcess, "Token", "sleep " + token, true};
  CHECK(wait_until([&] { return by_attr(run_check(by_name)).at("Check.Sleepers.Count") == 3; }, 5s));
  CHECK(wait_until([&] { return by_attr(run_check(by_cmdline)).at("Check.Token.Count") == 1; }, 5s));
  sleepers.erase(sleepers.begin());  // killed and reaped
  CHECK(wait_until([&] { return by_attr(run_check(by_name)).at("Check.Sleepers.Count") == 2; }, 5s));
  CHECK(count_processes("/proc", "no-such-process-" + token, true) == 0);
}

TEST_CASE("an HTTP check reports the status and whether it is up", "[checks]") {
  TempDir dir;
  { std::ofstream(dir.file("health")) << "ok\n"; }
  const int port = free_port();
  ChildProcess server = ChildProcess::spawn(
      {"/usr/bin/python3", "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1", "--directory", dir.path()},
      dir.file("server.out"), dir.file("server.err"));
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  CheckSpec ok{CheckSpec::Kind::kHttp, "Health", base + "/health", false, 10, 2000};
  REQUIRE(wait_until([&] { return by_attr(run_check(ok)).at("Check.Health.Up") == 1; }, 10s));
  auto up = by_attr(run_check(ok));
  CHECK(up.at("Check.Health.Status") == 200);
  CHECK(up.at("Check.Health.Micros") > 0);
  CheckSpec missing{CheckSpec::Kind::kHttp, "Missing", base + "/nothing-here", false, 10, 2000};
  auto not_found = by_attr(run_check(missing));
  CHECK(not_found.at("Check.Missing.Status") == 404);
  CHECK(not_found.at("Check.Missing.Up") == 0);
  server = ChildProcess::spawn({"/bin/true"});
  auto gone = by_attr(run_check(ok));
  CHECK(gone.at("Check.Health.Status") == 0);
  CHECK(gone.at("Check.Health.Up") == 0);
}

TEST_CASE("the check runner runs each check on its interval", "[checks]") {
  std::vector<CheckSpec> checks{{CheckSpec::Kind::kProcess, "Self", "no-such-process-anywhere", false, 1, 500},
                                {CheckSpec::Kind::kTcp, "Closed", "127.0.0.1:" + std::to_string(free_port()), false,
                                 1, 500}};
  CheckRunner runner(checks);
  std::vector<HostRound> rounds;
  REQUIRE(wait_until(
      [&] {
        runner.take(rounds);
        return rounds.size() >= 4;
      },
      10s));
  CHECK(runner.failed() >= 4);  // no such process, nothing listening
  std::map<std::string, int> seen;
  for (const HostRound& round : rounds) {
    for (const HostSample& s : round.samples) ++seen[s.attr];
  }
  CHECK(seen["Check.Self.Count"] >= 2);
  CHECK(seen["Check.Closed.Up"] >= 2);
}
