// What collecting the host costs: the agent's HostSampler (every /proc file
// and statvfs of a round, as the agent's collector thread does once a
// second) beside Debian's prometheus-node-exporter scraped once for the same
// host (its own CPU and the scrape's), same run; and the memory the
// collector adds. The figure is CPU per round: at one round a second,
// microseconds per round / 10 000 is the share of a core.
//
//   host_metrics_bench [rounds, default 200]
//   (the node_exporter peer needs `apt-get install prometheus-node-exporter`)
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "agent/host_metrics.hpp"
#include "bench/loopback.hpp"
#include "bench/ratio_reporter.hpp"
#include "common/process_info.hpp"
#include "support/wire_client.hpp"

namespace {

using namespace monitor::bench;

int64_t self_cpu_ns() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1'000'000'000LL +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000LL;
}

// utime + stime of `pid`, from /proc/<pid>/stat.
int64_t process_cpu_ns_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt
  int64_t utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) * (1'000'000'000LL / ::sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 200;
  const uint64_t heap_before = monitor::read_rss().anon_bytes;
  monitor::agent::HostSampler sampler(monitor::agent::HostMetricsOptions{});
  size_t samples = 0;
  (void)sampler.collect();
  const int64_t cpu0 = self_cpu_ns();
  for (int i = 0; i < rounds; ++i) samples = sampler.collect().samples.size();
  const double ours_us = static_cast<double>(self_cpu_ns() - cpu0) / 1e3 / rounds;
  const uint64_t heap_after = monitor::read_rss().anon_bytes;

  double peer_us = 0;
  const char* exporter = "/usr/bin/prometheus-node-exporter";
  if (std::filesystem::exists(exporter)) {
    int port = 0;
    ::close(listen_any(port));
    DaemonProcess node({exporter, "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=error"});
    for (int i = 0; i < 200 && monitor::test::http_get(port, "/metrics").status != 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    (void)monitor::test::http_get(port, "/metrics");
    const int scrapes = std::max(rounds / 4, 20);
    const int64_t node0 = process_cpu_ns_of(node.pid()), self0 = self_cpu_ns();
    for (int i = 0; i < scrapes; ++i) {
      if (monitor::test::http_get(port, "/metrics").status != 200) {
        std::fprintf(stderr, "node_exporter did not answer\n");
        return 1;
      }
    }
    peer_us = static_cast<double>(process_cpu_ns_of(node.pid()) - node0 + self_cpu_ns() - self0) / 1e3 / scrapes;
  } else {
    std::printf("(no %s: apt-get install prometheus-node-exporter for the peer)\n", exporter);
  }
  print_header("Host metrics: CPU per round (one round a second: us / 10 000 = share of a core)");
  print_row("agent's collector, one round", ours_us, "us", "node_exporter, one scrape (its CPU + the scrape's)",
            peer_us, peer_us > 0 ? ours_us / peer_us : 0, "<= 0.3 % of a core, <= 0.5x");
  print_row("  as a share of a core at 1 s", ours_us / 1e4, "%", "node_exporter scraped every second", peer_us / 1e4,
            peer_us > 0 ? ours_us / peer_us : 0, "");
  std::printf("%zu figures a round; heap added by the collector: %.2f MiB (goal <= 4 MiB)\n", samples,
              static_cast<double>(heap_after > heap_before ? heap_after - heap_before : 0) / (1 << 20));
  return 0;
}
