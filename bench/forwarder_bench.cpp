// Agent forwarding: the agent's Forwarder (in this process, as in the agent)
// cuts seconds of aggregates into batches, spools them and sends them to a
// sink that plays a judger (answers HELLO_ACK, ACK, heartbeats). Two figures:
//   live    - seconds written as fast as the forwarder takes them, until the
//             last batch is acknowledged (cut + spool + send + ACK);
//   replay  - a spool left full by an outage drained to a judger that is back.
// Beside each: the same number of bytes pushed into a loopback TCP sink that
// reads and discards, the limit of one TCP hop on this machine.
//
//   forwarder_bench [seconds of data per run, default 1000] [runs, default 5]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/forwarder.hpp"
#include "agent/name_registry.hpp"
#include "bench/loopback.hpp"
#include "bench/ratio_reporter.hpp"

namespace {

using namespace monitor::bench;
namespace agent = monitor::agent;

constexpr int kSeriesPerSecond = 10'000;  // a busy host: 1 000 names x 10 servers
constexpr int kNames = 1000;

struct Run {
  double reports_per_s = 0;
  double sink_reports_per_s = 0;  // the same bytes into the discarding sink
};

// Pushes `bytes` into the discarding sink in 1 MiB writes: reports/s at the
// bytes-per-report of the forwarder's run.
double sink_rate(const Sink& discard, uint64_t bytes, double reports) {
  const int fd = connect_to(discard.port(), 10s);
  const std::string chunk(1 << 20, 'x');
  const uint64_t before = discard.bytes();
  const auto start = std::chrono::steady_clock::now();
  uint64_t sent = 0;
  while (sent < bytes) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), bytes - sent));
    if (!write_all(fd, chunk.data(), n)) throw std::runtime_error("send");
    sent += n;
  }
  while (discard.bytes() - before < bytes) std::this_thread::yield();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  return reports / elapsed;
}

void write_seconds(agent::Forwarder& forwarder, int seconds, int64_t first_second) {
  monitor::model::Stats stats;
  for (int v = 0; v < 3; ++v) stats.add(v * 7, 1);
  for (int s = 0; s < seconds; ++s) {
    const int64_t second = first_second + s;
    for (int i = 0; i < kSeriesPerSecond; ++i) {
      forwarder.write(agent::AggregateRecord{second, static_cast<uint32_t>(i % kNames + 1), i / kNames, 1, &stats,
                                             nullptr});
    }
    forwarder.end_second(second);
  }
  forwarder.complete_before(first_second + seconds);
}

bool wait_sent(const agent::Forwarder& forwarder, uint64_t batches, std::chrono::seconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (forwarder.counters().batches_sent < batches) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

agent::Forwarder::Options options_for(const std::filesystem::path& spool, int port) {
  agent::Forwarder::Options options;
  options.address = port > 0 ? "127.0.0.1:" + std::to_string(port) : "127.0.0.1:1";  // :1 refuses: an outage
  options.spool_dir = spool.string();
  options.spool_max_bytes = 4ull << 30;
  options.sender_id = 4242;
  options.sender_name = "bench-agent";
  return options;
}

Run live_run(const agent::NameRegistry& names, const std::filesystem::path& spool, Sink& judger, const Sink& discard,
             int seconds) {
  std::filesystem::remove_all(spool);
  agent::Forwarder forwarder(options_for(spool, judger.port()), names);
  const uint64_t bytes_before = judger.bytes();
  const auto start = std::chrono::steady_clock::now();
  write_seconds(forwarder, seconds, 1'795'000'000);
  const uint64_t batches = forwarder.counters().batches_spooled;
  if (!wait_sent(forwarder, batches, 120s)) throw std::runtime_error("live: not all batches acknowledged");
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  forwarder.stop();
  const double reports = static_cast<double>(seconds) * kSeriesPerSecond;
  return {reports / elapsed, sink_rate(discard, judger.bytes() - bytes_before, reports)};
}

Run replay_run(const agent::NameRegistry& names, const std::filesystem::path& spool, Sink& judger, const Sink& discard,
               int seconds) {
  std::filesystem::remove_all(spool);
  uint64_t batches = 0;
  {
    agent::Forwarder outage(options_for(spool, 0), names);  // nothing answers: everything stays spooled
    write_seconds(outage, seconds, 1'796'000'000);
    batches = outage.counters().batches_spooled;
    outage.stop();
  }
  const uint64_t bytes_before = judger.bytes();
  const auto start = std::chrono::steady_clock::now();
  agent::Forwarder forwarder(options_for(spool, judger.port()), names);
  if (!wait_sent(forwarder, batches, 120s)) throw std::runtime_error("replay: not all batches acknowledged");
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  forwarder.stop();
  const double reports = static_cast<double>(seconds) * kSeriesPerSecond;
  return {reports / elapsed, sink_rate(discard, judger.bytes() - bytes_before, reports)};
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  const auto dir = std::filesystem::temp_directory_path() / ("forwarder-bench-" + std::to_string(::getpid()));
  spdlog::set_level(spdlog::level::warn);

  agent::NameRegistry names;
  for (int i = 0; i < kNames; ++i) names.intern("Bench.Forward", "Attr.N" + std::to_string(i));
  Sink judger(Sink::Mode::kJudger);
  Sink discard(Sink::Mode::kDiscard);

  std::vector<double> live, live_peer, replay, replay_peer;
  for (int run = 0; run < runs; ++run) {
    const Run l = live_run(names, dir / "live", judger, discard, seconds);
    const Run r = replay_run(names, dir / "replay", judger, discard, seconds);
    live.push_back(l.reports_per_s);
    live_peer.push_back(l.sink_reports_per_s);
    replay.push_back(r.reports_per_s);
    replay_peer.push_back(r.sink_reports_per_s);
    std::printf("run %d: live %.2f M reports/s (sink %.1f M), replay %.2f M reports/s (sink %.1f M)\n", run + 1,
                l.reports_per_s / 1e6, l.sink_reports_per_s / 1e6, r.reports_per_s / 1e6, r.sink_reports_per_s / 1e6);
  }
  monitor::bench::print_header("Agent forwarding (cut + spool + send + ACK to a judger sink), medians");
  monitor::bench::print_row("agent forwarding, live seconds", median(live) / 1e6, "M rep/s",
                            "same bytes into a loopback TCP sink", median(live_peer) / 1e6,
                            median(live) / median(live_peer), "not below the last run");
  monitor::bench::print_row("agent forwarding, spool replay", median(replay) / 1e6, "M rep/s",
                            "same bytes into a loopback TCP sink", median(replay_peer) / 1e6,
                            median(replay) / median(replay_peer), "not below the last run");
  std::filesystem::remove_all(dir);
  return 0;
}
