// What collecting the host costs: the agent's HostSampler (every /proc file
// and statvfs of a round, as the agent's collector thread does once a
// second) beside Debian's prometheus-node-exporter scraped once for the same
// host (its own CPU and the scrape's), same run; and the memory the
// collector adds. Twice: this host as it is, and the reference host,
// 8 mounts, 8 disks and 8 interfaces: a /proc of this host's files with
// those devices, read by both (node_exporter through --path.procfs). The figure is CPU per round: at one round a second,
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
#include <vector>

#include <fmt/format.h>

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

// CPU per round of the agent's sampler reading `options`, and its heap added.
struct Ours {
  double us = 0;
  size_t samples = 0;
  double heap_mib = 0;
};
Ours measure_ours(const monitor::agent::HostMetricsOptions& options, int rounds) {
  const uint64_t heap_before = monitor::read_rss().anon_bytes;
  monitor::agent::HostSampler sampler(options);
  Ours out;
  (void)sampler.collect();
  const int64_t cpu0 = self_cpu_ns();
  for (int i = 0; i < rounds; ++i) out.samples = sampler.collect().samples.size();
  out.us = static_cast<double>(self_cpu_ns() - cpu0) / 1e3 / rounds;
  const uint64_t heap_after = monitor::read_rss().anon_bytes;
  out.heap_mib = static_cast<double>(heap_after > heap_before ? heap_after - heap_before : 0) / (1 << 20);
  return out;
}

// node_exporter's CPU and the scrape's per scrape, reading `extra` paths; 0 when it is not installed.
double measure_node_exporter(const std::vector<std::string>& extra, int scrapes) {
  const char* exporter = "/usr/bin/prometheus-node-exporter";
  if (!std::filesystem::exists(exporter)) return 0;
  int port = 0;
  ::close(listen_any(port));
  std::vector<std::string> args{exporter, "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=error"};
  args.insert(args.end(), extra.begin(), extra.end());
  DaemonProcess node(args);
  for (int i = 0; i < 200 && monitor::test::http_get(port, "/metrics").status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  (void)monitor::test::http_get(port, "/metrics");
  const int64_t node0 = process_cpu_ns_of(node.pid()), self0 = self_cpu_ns();
  for (int i = 0; i < scrapes; ++i) {
    if (monitor::test::http_get(port, "/metrics").status != 200) {
      std::fprintf(stderr, "node_exporter did not answer\n");
      std::exit(1);
    }
  }
  return static_cast<double>(process_cpu_ns_of(node.pid()) - node0 + self_cpu_ns() - self0) / 1e3 / scrapes;
}

// A /proc of this host with 8 mounts (directories under `root`, so statvfs
// answers), 8 whole disks and 8 interfaces: the reference host.
void make_reference_proc(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  fs::create_directories(root / "net");
  fs::create_directories(root / "sys/fs");
  fs::create_directories(root / "self");
  fs::create_directories(root / "1");
  for (const char* file : {"stat", "loadavg", "meminfo", "uptime", "net/snmp", "net/netstat", "net/sockstat",
                           "sys/fs/file-nr"}) {
    fs::copy_file(fs::path("/proc") / file, root / file, fs::copy_options::overwrite_existing);
  }
  std::ofstream mounts(root / "self/mounts");
  for (int i = 0; i < 8; ++i) {
    const fs::path point = root / fmt::format("m{}", i);
    fs::create_directories(point);
    mounts << "/dev/sd" << static_cast<char>('a' + i) << "1 " << point.string() << " ext4 rw,relatime 0 0\n";
  }
  mounts.close();
  fs::copy_file(root / "self/mounts", root / "1/mounts", fs::copy_options::overwrite_existing);
  std::ofstream disks(root / "diskstats");
  for (int i = 0; i < 8; ++i) {
    disks << "   8       " << i * 16 << " sd" << static_cast<char>('a' + i)
          << " 52938 13110 4173258 21655 190377 114537 6590378 236549 0 161676 272893 0 0 0 0 4361 14688\n";
  }
  std::ofstream dev(root / "net/dev");
  dev << "Inter-|   Receive                                                |  Transmit\n"
         " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
         "carrier compressed\n";
  for (int i = 0; i < 8; ++i) {
    dev << "  eth" << i << ": 2917468    2734    0    0    0     0          0         0   244138    2204    0    0    0"
                          "     0       0          0\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 200;
  const int scrapes = std::max(rounds / 4, 20);
  const Ours here = measure_ours(monitor::agent::HostMetricsOptions{}, rounds);
  const double peer_here = measure_node_exporter({}, scrapes);
  const std::filesystem::path root = std::filesystem::temp_directory_path() /
                                     (std::string("hmb").append(std::to_string(::getpid())));  // short: mount points become attr segments of at most 24 bytes
  make_reference_proc(root);
  monitor::agent::HostMetricsOptions reference;
  reference.proc_root = root.string();
  const Ours ours_ref = measure_ours(reference, rounds);
  // node_exporter reads the same files: /proc/1/mounts, diskstats, net/dev of the reference /proc.
  const double peer_ref = measure_node_exporter({"--path.procfs=" + root.string()}, scrapes);
  std::filesystem::remove_all(root);
  if (peer_here == 0) std::printf("(no prometheus-node-exporter: apt-get install prometheus-node-exporter for the peer)\n");
  print_header("Host metrics: CPU per round (one round a second: us / 10 000 = share of a core)");
  print_row("this host: agent's collector, one round", here.us, "us", "node_exporter scrape (+ client)",
            peer_here, peer_here > 0 ? here.us / peer_here : 0, "");
  print_row("8 mounts, 8 disks, 8 interfaces: one round", ours_ref.us, "us", "node_exporter, same /proc",
            peer_ref, peer_ref > 0 ? ours_ref.us / peer_ref : 0, "<= 0.5x");
  print_row("  as a share of a core at 1 s", ours_ref.us / 1e4, "%", "node_exporter at 1 s",
            peer_ref / 1e4, peer_ref > 0 ? ours_ref.us / peer_ref : 0, "<= 0.3 %");
  std::printf("%zu figures a round here, %zu on the reference host; heap added by the collector: %.2f MiB "
              "(goal <= 4 MiB)\n",
              here.samples, ours_ref.samples, here.heap_mib);
  return 0;
}
