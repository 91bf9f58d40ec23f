// Agent memory with 100 000 live series: a real monitor-agent, fed through the
// SDK for several seconds, measured from /proc. The ring is shared memory and
// reported apart, as the goal is "<= 64 MiB plus the ring".
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_process.hpp"
#include "common/process_info.hpp"
#include "monitor/monitor.hpp"
#include "ring/ring_layout.hpp"

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 8;
  constexpr int kAttrs = 10;
  constexpr int kServers = 10000;  // 10 attrs x 10 000 servers = 100 000 live series
  const std::string ring = "/bench-rss-" + std::to_string(getpid());
  monitor::bench::AgentProcess agent(ring);
  if (monitor_init(ring.c_str()) != MONITOR_OK) return 1;
  std::vector<monitor_handle_t> handles;
  for (int a = 0; a < kAttrs; ++a) {
    handles.push_back(static_cast<monitor_handle_t>(
        monitor_intern("Bench.Rss", ("Attr.N" + std::to_string(a)).c_str())));
  }
  const monitor::RssInfo before = monitor::read_rss(agent.pid());
  uint64_t sent = 0, dropped = 0;
  monitor::RssInfo peak;
  for (int s = 0; s < seconds; ++s) {
    const auto second_end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (int server = 0; server < kServers; ++server) {
      for (int a = 0; a < kAttrs; ++a) {
        // The op mixes a service asks for: counters, gauges, one latency histogram.
        const int32_t ops = a == 9 ? (MONITOR_OP_HIST | MONITOR_OP_AVG)
                            : a >= 7 ? (MONITOR_OP_MAX | MONITOR_OP_MIN | MONITOR_OP_LAST)
                                     : (MONITOR_OP_SUM | MONITOR_OP_COUNT);
        for (int rep = 0; rep < 3; ++rep) {
          const int rc = monitor_handle_report(handles[static_cast<size_t>(a)], server, (server * 31 + rep * 977) % 5000, ops);
          ++sent;
          if (rc != MONITOR_OK) {
            ++dropped;
            std::this_thread::sleep_for(std::chrono::microseconds(50));
          }
        }
      }
      if (server % 50 == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    std::this_thread::sleep_until(second_end);
    const monitor::RssInfo now = monitor::read_rss(agent.pid());
    if (now.anon_bytes + now.file_bytes > peak.anon_bytes + peak.file_bytes) peak = now;
  }
  std::this_thread::sleep_for(std::chrono::seconds(4));  // past the late window: seconds flushed
  const monitor::RssInfo after = monitor::read_rss(agent.pid());
  if (after.anon_bytes + after.file_bytes > peak.anon_bytes + peak.file_bytes) peak = after;

  const double mib = 1024.0 * 1024.0;
  const double ring_mib = static_cast<double>(monitor::ring::segment_bytes(monitor::ring::Geometry{})) / mib;
  const double own_mib = static_cast<double>(peak.anon_bytes + peak.file_bytes) / mib;
  std::printf("\nAgent RSS with 100 000 live series (%d s, %.0f reports/s sent, %llu dropped)\n", seconds,
              static_cast<double>(sent) / seconds, static_cast<unsigned long long>(dropped));
  std::printf("| %-44s | %10s |\n", "what", "MiB");
  std::printf("| %-44s | %10.1f |\n", "agent RSS at start (anon + file)",
              static_cast<double>(before.anon_bytes + before.file_bytes) / mib);
  std::printf("| %-44s | %10.1f |\n", "agent peak RSS, anon + file (ours)", own_mib);
  std::printf("| %-44s | %10.1f |\n", "agent peak RSS, shared memory touched", static_cast<double>(peak.shmem_bytes) / mib);
  std::printf("| %-44s | %10.1f |\n", "ring segment size (the 'plus the ring')", ring_mib);
  std::printf("| %-44s | %9.2fx |\n", "ours / goal of 64 MiB", own_mib / 64.0);
  return 0;
}
