// Issue 10's dashboard figures, each beside its peer measured in the same run:
//
//  1. the dashboard API answering one series of 24 h of minutes, median of
//     RUNS requests, beside the judger's own /api/series for the same series
//     (what the dashboard adds: sign-in check, registry lookup, fan-out);
//  2. a chart of 100 servers x 24 h of minutes opened in Debian's headless
//     Chromium, from the page starting to load to the chart drawn, beside the
//     same /api/series request fetched alone in that page
//     (bench/chart_open_bench.py).
//
// A real monitor-judger serves minutes written into its store beforehand (as
// rule_test_bench does); a real monitor-dashboard in front of it.
//
//   dashboard_bench [servers, default 100] [runs, default 50]
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

#include <boost/json.hpp>

#include "judger/minute_store.hpp"
#include "support/wire_client.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

pid_t start(std::vector<std::string> argv, const std::string& out = "/dev/null") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, (out + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int run(std::vector<std::string> argv, const std::string& out = "/dev/null") {
  const pid_t pid = start(std::move(argv), out);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int servers = argc > 1 ? std::atoi(argv[1]) : 100;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 50;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("dashboard-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "registry");
  std::filesystem::create_directories(dir / "judger");
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t last = now_s / 60 * 60 - 120, first = last - 86400;
  {
    auto store = monitor::judger::MinuteStore::open(dir / "judger" / "judger.db");
    if (!store) return 1;
    std::fprintf(stderr, "dashboard_bench: writing 24 h x %d servers of minutes...\n", servers);
    for (int64_t m = first; m <= last; m += 60) {
      std::vector<monitor::judger::MinutePoint> points;
      double total = 0;
      for (int64_t s = 0; s < servers; ++s) {
        const double v = 100.0 + static_cast<double>((m / 60 * 7 + s * 13) % 50);
        points.push_back({"Bench.Dash", "Latency.Ms", 1, s, m, v});
        total += v;
      }
      points.push_back({"Bench.Dash", "Latency.Ms", 1, -1, m, total});
      if (!(*store)->finish_minute(m, points)) return 1;
    }
  }
  const std::string registry = "file:" + (dir / "registry").string(), ctl = MONITORCTL_PATH;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"judger", "add", "judger-1"},
           {"service", "add", "Bench.Dash", "--judger", "judger-1"},
           {"attr", "add", "Bench.Dash", "Latency.Ms"},
           {"role", "add", "all", "*"},
           {"user", "add", "bench", "--new-password", "bench-pw", "--role", "all"}}) {
    std::vector<std::string> full = {ctl};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"--registry", registry});
    if (run(full) != 0) {
      std::fprintf(stderr, "dashboard_bench: monitorctl %s failed\n", args[0].c_str());
      return 1;
    }
  }
  const int query_port = monitor::test::free_port(), web_port = monitor::test::free_port();
  const pid_t judger = start({MONITOR_JUDGER_PATH, "--name", "judger-1", "--listen", "127.0.0.1:0", "--query-listen",
                              "127.0.0.1:" + std::to_string(query_port), "--data-dir", (dir / "judger").string(),
                              "--registry", registry, "--no-self-metrics", "--no-placement", "--log-level", "warn"},
                             (dir / "judger.log").string());
  const pid_t dashboard = start({MONITOR_DASHBOARD_PATH, "--listen", "127.0.0.1:" + std::to_string(web_port),
                                 "--registry", registry, "--no-self-metrics", "--log-level", "warn"},
                                (dir / "dashboard.log").string());
  int rc = 1;
  const std::string range = "&from=" + std::to_string(last - 86400 + 60) + "&to=" + std::to_string(last + 60);
  const std::string one = "service=Bench.Dash&attr=Latency.Ms&op=SUM" + range;
  for (int i = 0; i < 300; ++i) {
    if (monitor::test::http_get(query_port, "/api/series?" + one).status == 200 &&
        monitor::test::http_get(web_port, "/api/health").status == 200) {
      rc = 0;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (rc == 0) {
    const auto login = monitor::test::http_request(web_port, "POST", "/api/login",
                                                   R"({"user": "bench", "password": "bench-pw"})",
                                                   "Content-Type: application/json\r\n");
    const size_t at = login.headers.find("Set-Cookie: ");
    std::string cookie = at == std::string::npos ? "" : login.headers.substr(at + 12);
    cookie = cookie.substr(0, cookie.find(';'));
    std::vector<double> direct, through;
    size_t points = 0;
    for (int i = 0; i < runs; ++i) {
      auto t = Clock::now();
      const auto a = monitor::test::http_get(query_port, "/api/series?" + one + "&server=total");
      direct.push_back(std::chrono::duration<double>(Clock::now() - t).count());
      t = Clock::now();
      std::string header("Cookie: ");
      header.append(cookie).append("\r\n");
      const auto b = monitor::test::http_request(web_port, "GET", "/api/series?" + one + "&servers=total", "", header);
      through.push_back(std::chrono::duration<double>(Clock::now() - t).count());
      if (a.status != 200 || b.status != 200) {
        std::fprintf(stderr, "dashboard_bench: HTTP %d / %d: %s\n", a.status, b.status, b.body.c_str());
        rc = 1;
        break;
      }
      points = boost::json::parse(b.body).at("series").at(0).at("points").as_array().size();
    }
    if (rc == 0) {
      std::printf("%-58s %10s %10s %8s\n", "figure", "ours", "peer", "ratio");
      std::printf("%-58s %8.2f ms %8.2f ms %7.2fx   (goal <= 20 ms; peer: the judger's own /api/series)\n",
                  ("dashboard /api/series, 1 series x 24 h (" + std::to_string(points) + " minutes), median").c_str(),
                  median(through) * 1e3, median(direct) * 1e3, median(through) / median(direct));
      std::string servers_list = "total";
      for (int s = 0; s < servers; ++s) servers_list.append(",").append(std::to_string(s));
      const std::string out = (dir / "chart.json").string();
      const int chart_rc = run({"/usr/bin/python3", std::string(MONITOR_BENCH_DIR) + "/chart_open_bench.py",
                                "http://127.0.0.1:" + std::to_string(web_port), "bench", "bench-pw",
                                "#/chart?service=Bench.Dash&attr=Latency.Ms&op=SUM&servers=" + servers_list +
                                    "&range=24h",
                                "5"},
                               out);
      std::ifstream in(out);
      const std::string text((std::istreambuf_iterator<char>(in)), {});
      if (chart_rc == 0 && !text.empty()) {
        const auto r = boost::json::parse(text).as_object();
        const double drawn = r.at("drawn_s").to_number<double>(), fetched = r.at("fetch_s").to_number<double>();
        std::printf("%-58s %8.3f s  %8.3f s  %7.2fx   (goal <= 1 s; peer: the same /api/series fetched alone)\n",
                    ("Chromium: open a chart of " + std::to_string(servers + 1) + " lines x 24 h (" +
                     std::to_string(r.at("points").to_number<int64_t>()) + " points), median of 5")
                        .c_str(),
                    drawn, fetched, drawn / fetched);
      } else {
        std::fprintf(stderr, "dashboard_bench: the Chromium part failed (%d): %s\n", chart_rc, text.c_str());
        rc = 1;
      }
    }
  } else {
    std::fprintf(stderr, "dashboard_bench: the judger or the dashboard did not come up (logs in %s)\n", dir.c_str());
  }
  kill(dashboard, SIGTERM);
  kill(judger, SIGTERM);
  waitpid(dashboard, nullptr, 0);
  waitpid(judger, nullptr, 0);
  if (rc == 0) std::filesystem::remove_all(dir);
  return rc;
}
