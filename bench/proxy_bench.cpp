// Bonnie forwarding on one core: a real `monitor-proxy --role bonnie` process
// (one thread) receives batches from a client, checks every record against the
// registry's services and attrs, re-encodes them for the judger that owns the
// service and acknowledges each batch once that judger did. The judger here is
// a sink that only answers (HELLO_ACK, ACK, heartbeats). Beside it: the same
// batch bytes pushed into a loopback TCP sink that only reads and discards,
// the limit of one TCP hop on this machine.
//
//   proxy_bench [seconds per run, default 3] [runs, default 3]
// PROXY_BENCH_BINARY=<monitor-proxy> runs another build (a before/after comparison).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "bench/loopback.hpp"
#include "bench/proxy_workload.hpp"
#include "bench/ratio_reporter.hpp"
#include "registry/registry.hpp"
#include "wire/byte_io.hpp"
#include "wire/frame.hpp"
#include "wire/messages.hpp"

namespace {

using namespace monitor::bench;

constexpr int kWindow = 64;  // batches in flight from the client

// Reports per second through `port`: with acknowledgements (a proxy), or
// counted as bytes taken by a discarding sink.
double run_client(int port, bool acknowledged, const Sink* discard, double seconds) {
  const int fd = connect_to(port, 10s);
  const std::string hello = proxy_hello_and_names();
  const std::string batch = proxy_batch_frame(1);
  if (!write_all(fd, hello.data(), hello.size())) throw std::runtime_error("send hello");
  AckCounter acked(fd, acknowledged);
  int64_t sent = 0;
  const uint64_t bytes_before = discard ? discard->bytes() : 0;
  const int64_t acked_before = acked.count();
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (acknowledged && sent - acked.count() >= kWindow) {
      std::this_thread::yield();
      continue;
    }
    if (!write_all(fd, batch.data(), batch.size())) throw std::runtime_error("send batch");
    ++sent;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double batches;
  if (acknowledged) {
    batches = static_cast<double>(acked.count() - acked_before);
  } else {
    batches = static_cast<double>(discard->bytes() - bytes_before) / static_cast<double>(batch.size());
  }
  ::shutdown(fd, SHUT_RDWR);  // ends the counter's thread
  acked.join();
  ::close(fd);
  return batches * kRecordsPerBatch / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  const auto dir = std::filesystem::temp_directory_path() / ("proxy-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  Sink judger(Sink::Mode::kJudger);
  Sink discard(Sink::Mode::kDiscard);
  {
    auto registry = monitor::registry::open_registry("file:" + (dir / "registry").string());
    if (!registry) throw std::runtime_error("registry");
    boost::json::object attrs;
    for (int i = 0; i < kProxyNames; ++i) attrs["Attr.N" + std::to_string(i)] = i + 1;
    (void)(*registry)->put("services", "Bench.Proxy", boost::json::object{{"id", 1}, {"attrs", attrs}});
    (void)(*registry)->put("assignments", "Bench.Proxy", boost::json::object{{"judger", "sink"}});
    (void)(*registry)->put_live("judgers", "sink",
                                boost::json::object{{"address", "127.0.0.1:" + std::to_string(judger.port())}}, 1h);
  }
  int bonnie_port = 0;
  ::close(listen_any(bonnie_port));
  const char* binary = std::getenv("PROXY_BENCH_BINARY");
  DaemonProcess bonnie({binary != nullptr ? binary : MONITOR_PROXY_PATH, "--role", "bonnie", "--name", "bench-bonnie", "--listen",
                       "127.0.0.1:" + std::to_string(bonnie_port), "--registry", "file:" + (dir / "registry").string(),
                       "--data-dir", (dir / "bonnie").string(), "--no-self-metrics", "--log-level", "warn"});
  std::this_thread::sleep_for(1500ms);  // it reads the registry and connects to the sink judger

  std::vector<double> through_bonnie, limit, bonnie_cpu;
  for (int run = 0; run < runs; ++run) {
    limit.push_back(run_client(discard.port(), false, &discard, seconds));
    const double cpu_before = cpu_seconds(bonnie.pid());
    const auto t0 = std::chrono::steady_clock::now();
    through_bonnie.push_back(run_client(bonnie_port, true, nullptr, seconds));
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bonnie_cpu.push_back((cpu_seconds(bonnie.pid()) - cpu_before) / wall);
    std::printf("run %d: Bonnie %.2f M reports/s (%.0f%% of a core), loopback sink %.2f M reports/s\n", run + 1,
                through_bonnie.back() / 1e6, bonnie_cpu.back() * 100, limit.back() / 1e6);
  }
  const double ours = median(through_bonnie), peer = median(limit);
  monitor::bench::print_header("Bonnie forwarding (validate + route + re-encode + ACK), medians");
  monitor::bench::print_row("Bonnie forwarding, 1 000-record batches", ours / 1e6, "M rep/s",
                            "loopback TCP sink, read + discard", peer / 1e6, ours / peer, ">= 5 M reports/s");
  std::printf("Bonnie used %.0f%% of one core (median); the client and the sink judger share the other.\n",
              median(bonnie_cpu) * 100);
  std::filesystem::remove_all(dir);
  return 0;
}
