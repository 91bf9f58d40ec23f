// The judger as it runs: a real `monitor-judger` process (one io thread)
// receives batches over TCP from a client playing agents, decodes them,
// stores each in SQLite before acknowledging it, and rolls it up; 100 000 live
// series (10 attrs x 10 000 servers), every second of data stamped with the
// wall clock so minutes finish (and are stored) during the run as they would
// in production. Beside it: the same bytes into a loopback TCP sink that only
// reads and discards.
//
//   judger_daemon_bench [seconds per run, default 16] [runs, default 5]
//   (JUDGER_LOG=debug shows the judger's log, with when each minute is stored)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/loopback.hpp"
#include "bench/ratio_reporter.hpp"

namespace {

using namespace monitor::bench;

constexpr int kAttrs = 10;
constexpr int kServers = 10000;
constexpr int kRecordsPerBatch = 1000;
constexpr int kBatchesPerRound = kAttrs * kServers / kRecordsPerBatch;  // one second of every series
constexpr int kWindow = 32;

int64_t wall_second() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hello_and_names(uint64_t sender) {
  std::string out;
  wire::encode(out, wire::Hello{sender, wire::Role::kAgent, "bench-agent"});
  std::vector<wire::DictEntry> names;
  for (int i = 0; i < kAttrs; ++i) names.push_back({static_cast<uint32_t>(i + 1), "Bench.Judger", "Attr.N" + std::to_string(i)});
  wire::encode(out, names);
  return out;
}

// Batch `index` of a round: records of servers [index * 100, index * 100 + 100)
// for every attr, SUM and COUNT of 2 reports each.
std::string batch_frame(uint64_t sender, uint64_t sequence, int64_t second, int index) {
  wire::Batch batch{sender, sequence, {}};
  batch.records.reserve(kRecordsPerBatch);
  for (int i = 0; i < kRecordsPerBatch; ++i) {
    wire::BatchRecord r;
    r.second = second;
    r.name_id = static_cast<uint32_t>(i % kAttrs + 1);
    r.server_id = index * (kRecordsPerBatch / kAttrs) + i / kAttrs;
    r.ops = 1 | 64;
    r.stats.add(i, second * 1'000'000'000);
    r.stats.add(i + 1, second * 1'000'000'000 + 1);
    batch.records.push_back(r);
  }
  std::string out;
  if (wire::encode(out, batch) != wire::WireError::kOk) std::abort();  // the bench builds batches under the limit
  return out;
}

// Reports per second through `port` for `seconds`: acknowledged ones (the
// judger), or bytes a discarding sink took.
double run_client(int port, uint64_t sender, uint64_t& sequence, const Sink* discard, double seconds,
                  int64_t* longest_gap_us = nullptr) {
  const int fd = connect_to(port, 10s);
  const std::string hello = hello_and_names(sender);
  if (!write_all(fd, hello.data(), hello.size())) throw std::runtime_error("send hello");
  AckCounter acked(fd, discard == nullptr);
  int64_t sent = 0;
  uint64_t sent_bytes = 0;
  const uint64_t bytes_before = discard != nullptr ? discard->bytes() : 0;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  for (int index = 0; std::chrono::steady_clock::now() < end; index = (index + 1) % kBatchesPerRound) {
    while (discard == nullptr && sent - acked.count() >= kWindow) std::this_thread::sleep_for(50us);
    const std::string frame = batch_frame(sender, ++sequence, wall_second(), index);
    if (!write_all(fd, frame.data(), frame.size())) throw std::runtime_error("send batch");
    ++sent;
    sent_bytes += frame.size();
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double batches;
  if (discard == nullptr) {
    batches = static_cast<double>(acked.count());
  } else {
    batches = static_cast<double>(discard->bytes() - bytes_before) / (static_cast<double>(sent_bytes) / static_cast<double>(sent));
  }
  ::shutdown(fd, SHUT_RDWR);  // ends the counter's thread
  acked.join();
  if (longest_gap_us != nullptr) *longest_gap_us = acked.longest_gap_us();
  ::close(fd);
  return batches * kRecordsPerBatch / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  // 5 runs of 16 s (and 2 s of the sink each) span more than a minute.
  const double seconds = argc > 1 ? std::atof(argv[1]) : 16.0;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  const auto dir = std::filesystem::temp_directory_path() / ("judger-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  Sink discard(Sink::Mode::kDiscard);
  int judger_port = 0, query_port = 0;
  ::close(listen_any(judger_port));
  ::close(listen_any(query_port));
  std::vector<double> through_judger, limit, judger_cpu;
  int64_t longest_gap_us = 0;
  {
    DaemonProcess judger({MONITOR_JUDGER_PATH, "--listen", "127.0.0.1:" + std::to_string(judger_port), "--query-listen",
                          "127.0.0.1:" + std::to_string(query_port), "--data-dir", (dir / "judger").string(),
                          "--registry", "file:" + (dir / "registry").string(), "--no-self-metrics", "--log-level",
                          std::getenv("JUDGER_LOG") ? std::getenv("JUDGER_LOG") : "warn"});
    uint64_t judger_sequence = 0, sink_sequence = 0;
    for (int run = 0; run < runs; ++run) {
      limit.push_back(run_client(discard.port(), 7, sink_sequence, &discard, 2.0));
      const double cpu_before = cpu_seconds(judger.pid());
      const auto t0 = std::chrono::steady_clock::now();
      int64_t gap_us = 0;
      through_judger.push_back(run_client(judger_port, 42, judger_sequence, nullptr, seconds, &gap_us));
      longest_gap_us = std::max(longest_gap_us, gap_us);
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      judger_cpu.push_back((cpu_seconds(judger.pid()) - cpu_before) / wall);
      std::printf("run %d: judger %.2f M reports/s (%.0f%% of a core, longest pause between ACKs %.0f ms), "
                  "loopback sink %.2f M reports/s\n",
                  run + 1, through_judger.back() / 1e6, judger_cpu.back() * 100, static_cast<double>(gap_us) / 1e3,
                  limit.back() / 1e6);
    }
  }
  const double ours = median(through_judger), peer = median(limit);
  print_header("Judger daemon ingest (decode + store before ACK + roll-up + minutes stored), medians");
  print_row("monitor-judger, 100 000 live series", ours / 1e6, "M rep/s", "loopback TCP sink, read + discard",
            peer / 1e6, ours / peer, ">= 3 M reports/s");
  std::printf("The judger used %.0f%% of one core (median); the client has the other.\n", median(judger_cpu) * 100);
  std::printf("Longest pause between ACKs: %.0f ms (the runs span a minute's end, so a minute of 100 000 series\n"
              "was stored meanwhile).\n",
              static_cast<double>(longest_gap_us) / 1e3);
  std::filesystem::remove_all(dir);
  return 0;
}
