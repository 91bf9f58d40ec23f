// `monitorctl rule test --since 7d` end to end, as a person runs it: a real
// monitor-judger serves 7 days of one series for 100 servers (the last 2
// days as minutes, the older ones as the 5-minute averages the retention
// keeps), monitorctl reads them over /api/points and replays the rule.
// Beside it, measured in the same run: the replay alone, in process, of the
// same minutes (alarm::replay), so the ratio is what reading them costs.
//
//   rule_test_bench [servers, default 100] [days, default 7]
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "alarm/replay.hpp"
#include "alarm/rule.hpp"
#include "judger/minute_store.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Runs argv to its end; its exit code. Output to `out` (or discarded).
int run(std::vector<std::string> argv, const std::string& out = "/dev/null") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) return -1;
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int servers = argc > 1 ? std::atoi(argv[1]) : 100;
  const int days = argc > 2 ? std::atoi(argv[2]) : 7;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("rule-test-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "registry");
  std::filesystem::create_directories(dir / "judger");
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t last = now_s / 60 * 60 - 120, first = last - int64_t{days} * 86400;
  // Server s peaks once a day at its own hour: the rule fires and resolves.
  auto value = [](int64_t server, int64_t minute_s) {
    const int64_t of_day = (minute_s / 60 + server * 60) % 1440;
    return of_day < 20 ? 5000.0 : 100.0 + static_cast<double>((minute_s / 60 * 7 + server * 13) % 50);
  };
  {
    auto store = monitor::judger::MinuteStore::open(dir / "judger" / "judger.db");
    if (!store) {
      std::fprintf(stderr, "rule_test_bench: %s\n", store.error().message().c_str());
      return 1;
    }
    std::fprintf(stderr, "rule_test_bench: writing %d days x %d servers of minutes...\n", days, servers);
    for (int64_t m = first; m <= last; m += 60) {
      std::vector<monitor::judger::MinutePoint> points;
      double total = 0;
      for (int64_t s = 0; s < servers; ++s) {
        points.push_back({"Bench.Rules", "Latency.Ms", 1, s, m, value(s, m)});
        total += value(s, m);
      }
      points.push_back({"Bench.Rules", "Latency.Ms", 1, -1, m, total});
      if (!(*store)->finish_minute(m, points)) return 1;
    }
    if (!(*store)->apply_retention(now_s)) return 1;  // what the judger does once a minute
  }
  const std::string rule_text = "rule Bench.Rules.Slow\n  service Bench.Rules\n  attr Latency.Ms\n  op SUM\n  per server\n"
                                "  when avg(5) > 1000\n  recover avg(5) < 500\n";
  const auto rule = monitor::alarm::parse_rule_file(rule_text).file.rules.at(0);
  const int64_t from_s = now_s / 60 * 60 - int64_t{days} * 86400;
  // The peer: the replay alone, of the minutes the judger will serve, read here from its store.
  double replay_s = 0;
  size_t points = 0, fired_in_process = 0;
  {
    auto store = monitor::judger::MinuteStore::open(dir / "judger" / "judger.db");
    const auto read = (*store)->reader().minute_points("Bench.Rules", "Latency.Ms", 1, from_s - rule.span() * 60, now_s / 60 * 60);
    if (!read) return 1;
    points = read->size();
    monitor::alarm::History history;
    for (const auto& p : *read) history[p.server_id][p.minute / 60] = p.value;
    const auto t = Clock::now();
    const auto result = monitor::alarm::replay(rule, history, from_s / 60, last / 60);
    replay_s = seconds_since(t);
    for (const auto& tr : result.transitions) fired_in_process += tr.kind == monitor::alarm::EventKind::kFiring;
  }
  const std::string registry = "file:" + (dir / "registry").string(), ctl = MONITORCTL_PATH;
  run({ctl, "judger", "add", "judger-1", "--registry", registry});
  run({ctl, "service", "add", "Bench.Rules", "--judger", "judger-1", "--registry", registry});
  run({ctl, "attr", "add", "Bench.Rules", "Latency.Ms", "--registry", registry});
  std::vector<std::string> judger_argv = {MONITOR_JUDGER_PATH, "--name", "judger-1", "--listen", "127.0.0.1:0",
                                          "--query-listen", "127.0.0.1:0", "--data-dir", (dir / "judger").string(),
                                          "--registry", registry, "--no-self-metrics", "--log-level", "warn"};
  std::vector<char*> args;
  for (auto& a : judger_argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t judger = -1;
  if (posix_spawn(&judger, args[0], nullptr, nullptr, args.data(), environ) != 0) return 1;
  for (int i = 0; i < 200 && run({ctl, "judger", "list", "--registry", registry}, (dir / "list.out").string()) == 0; ++i) {
    std::ifstream in(dir / "list.out");
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    if (text.find(" live") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string rules = (dir / "bench.rules").string();
  std::ofstream(rules) << rule_text;
  std::vector<double> runs;
  int rc = 0;
  for (int i = 0; i < 3; ++i) {
    const auto t = Clock::now();
    rc = run({ctl, "rule", "test", "Bench.Rules.Slow", "--file", rules, "--since", std::to_string(days) + "d",
              "--output", "json", "--registry", registry},
             (dir / "test.json").string());
    runs.push_back(seconds_since(t));
  }
  kill(judger, SIGTERM);
  waitpid(judger, nullptr, 0);
  std::ifstream in(dir / "test.json");
  const std::string answer((std::istreambuf_iterator<char>(in)), {});
  std::sort(runs.begin(), runs.end());
  const size_t at = answer.find("\"fired\":");
  std::printf("rule test, %d days x %d servers (%zu minute values, the last 2 days minutes, older ones 5-minute averages):\n",
              days, servers, points);
  std::printf("  monitorctl rule test --since %dd through a real judger: %.2f s (median of 3; goal <= 2 s), exit %d, %s\n",
              days, runs[1], rc, at == std::string::npos ? "no answer" : answer.substr(at, 12).c_str());
  std::printf("  the replay alone, in process, of the same minutes:  %.2f s (fired %zu) -> %.1fx\n", replay_s,
              fired_in_process, runs[1] / replay_s);
  std::filesystem::remove_all(dir);
  return rc;
}
