// Reading never stalls the data path: a real `monitor-judger` over a store
// holding a day of 1 000 servers receives batches as agents send them (a
// batch of 1 000 records every 5 ms), first alone, then while a client asks
// for the largest answer the API gives (/api/points of every server over the
// day, 1.44 M points) again and again. The figure is the longest pause
// between two ACKs in each phase, side by side (each phase spans a minute's
// end, so both include the storing of a minute); beside it, the judger's
// largest resident heap in each phase (the answer streams: it is never held
// whole).
//
//   judger_query_bench [seconds per phase, default 20]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
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
#include "common/clock.hpp"
#include "common/process_info.hpp"
#include "judger/minute_store.hpp"
#include "support/wire_client.hpp"

namespace {

using namespace monitor::bench;

constexpr int kServers = 1000;
constexpr int64_t kMinutes = 1440;
constexpr int kRecordsPerBatch = 1000;
constexpr auto kBatchEvery = std::chrono::milliseconds(5);

void fill_store(const std::filesystem::path& data_dir, int64_t end_s) {
  std::filesystem::create_directories(data_dir);
  auto store = monitor::judger::MinuteStore::open(data_dir / "judger.db");
  if (!store) throw std::runtime_error("open the store: " + store.error().message());
  std::vector<monitor::judger::MinutePoint> points;
  const int64_t first = end_s - kMinutes * 60;
  for (int64_t minute = first; minute < end_s; minute += 60) {
    for (int server = 0; server < kServers; ++server) {
      points.push_back({"Bench.Query", "Wide.Attr", 1, server, minute, static_cast<double>(server)});
    }
    if (points.size() >= 100'000 || minute + 60 == end_s) {
      if (!(*store)->put_minute_points(points)) throw std::runtime_error("fill the store");
      points.clear();
    }
  }
  for (int64_t minute = first; minute < end_s; minute += 60) {
    if (!(*store)->complete_minute(minute, (*store)->last_pending_id())) throw std::runtime_error("fill the store");
  }
}

// The largest RssAnon of `pid` while it is sampled.
class HeapPeak {
 public:
  explicit HeapPeak(pid_t pid)
      : thread_([this, pid] {
          while (!done_) {
            peak_ = std::max<uint64_t>(peak_, monitor::read_rss(pid).anon_bytes);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        }) {}
  uint64_t stop() {
    done_ = true;
    thread_.join();
    return peak_;
  }

 private:
  std::atomic<bool> done_{false};
  std::atomic<uint64_t> peak_{0};
  std::thread thread_;
};

// Both phases span a minute's end, when the judger stores the minute that
// ended: its pause is in the idle figure as in the busy one.
void wait_for_second_of_minute(int second) {
  const int64_t now_ns = monitor::realtime_ns();
  const int64_t minute_ns = 60'000'000'000;
  int64_t at = now_ns / minute_ns * minute_ns + second * int64_t{1'000'000'000};
  if (at <= now_ns) at += minute_ns;
  std::this_thread::sleep_for(std::chrono::nanoseconds(at - now_ns));
}

struct Pauses {
  int64_t longest_us = 0, p99_us = 0;
  int64_t longest_end_ns = 0;
};

// Sends a batch every kBatchEvery for `seconds` (records of the current
// second, 1 000 servers of another service); the pauses between ACKs.
Pauses ack_pauses(int port, uint64_t sender, uint64_t& sequence, double seconds) {
  wait_for_second_of_minute(50);
  const int fd = connect_to(port, std::chrono::seconds(10));
  std::string out;
  wire::encode(out, wire::Hello{sender, wire::Role::kAgent, "bench-agent"});
  wire::encode(out, std::vector<wire::DictEntry>{{1, "Bench.Ingest", "Steady.Count"}});
  if (!write_all(fd, out.data(), out.size())) throw std::runtime_error("send hello");
  AckCounter acked(fd, true);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  auto next = std::chrono::steady_clock::now();
  int64_t sent = 0;
  while (std::chrono::steady_clock::now() < end) {
    wire::Batch batch{sender, ++sequence, {}};
    const int64_t second = monitor::realtime_ns() / 1'000'000'000;
    for (int i = 0; i < kRecordsPerBatch; ++i) {
      wire::BatchRecord r;
      r.second = second;
      r.name_id = 1;
      r.server_id = i;
      r.ops = 1;
      r.stats.add(1, second * 1'000'000'000);
      batch.records.push_back(r);
    }
    std::string frame;
    if (wire::encode(frame, batch) != wire::WireError::kOk || !write_all(fd, frame.data(), frame.size())) {
      throw std::runtime_error("send batch");
    }
    ++sent;
    next += kBatchEvery;
    std::this_thread::sleep_until(next);
  }
  // The last ACKs, then the counter's thread ends with the connection.
  for (int i = 0; i < 1000 && acked.count() < sent; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::shutdown(fd, SHUT_RDWR);
  acked.join();
  ::close(fd);
  return {acked.longest_gap_us(), acked.gap_quantile_us(0.99), acked.longest_gap_end_ns()};
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 20.0;
  const auto dir = std::filesystem::temp_directory_path() / ("judger-query-bench-" + std::to_string(::getpid()));
  const int64_t end_s = monitor::realtime_ns() / 60'000'000'000 * 60 - 120;
  std::printf("filling a store with %d servers x %lld minutes...\n", kServers, static_cast<long long>(kMinutes));
  fill_store(dir / "judger", end_s);
  int port = 0, query_port = 0;
  ::close(listen_any(port));
  ::close(listen_any(query_port));
  const std::string day = "/api/points?service=Bench.Query&attr=Wide.Attr&op=SUM&from=" +
                          std::to_string(end_s - kMinutes * 60) + "&to=" + std::to_string(end_s);
  Pauses idle, busy;
  std::vector<double> query_s;
  size_t answer_bytes = 0;
  uint64_t idle_heap = 0, busy_heap = 0;
  {
    DaemonProcess judger({MONITOR_JUDGER_PATH, "--listen", "127.0.0.1:" + std::to_string(port), "--query-listen",
                          "127.0.0.1:" + std::to_string(query_port), "--data-dir", (dir / "judger").string(),
                          "--registry", "file:" + (dir / "registry").string(), "--no-self-metrics", "--no-placement",
                          "--query-timeout", "600", "--log-level", "warn"});
    for (int i = 0; i < 200 && monitor::test::http_get(query_port, "/api/health").status != 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    uint64_t sequence = 0;
    HeapPeak idle_peak(judger.pid());
    idle = ack_pauses(port, 42, sequence, seconds);
    idle_heap = idle_peak.stop();
    HeapPeak busy_peak(judger.pid());
    std::atomic<bool> querying{true};
    std::thread reader([&] {
      // The reader stands for a client on another machine: niced like the
      // judger's query threads, so on this 2-core machine it does not delay
      // the sender or the ACK counter (whose pauses are the figure).
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
      while (querying) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto reply = monitor::test::http_get(query_port, day, std::chrono::seconds(300));
        if (reply.status != 200) {
          std::fprintf(stderr, "the query answered %d: %s\n", reply.status, reply.body.substr(0, 200).c_str());
          std::exit(1);
        }
        answer_bytes = reply.body.size();
        query_s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    });
    busy = ack_pauses(port, 42, sequence, seconds);
    querying = false;
    reader.join();
    busy_heap = busy_peak.stop();
  }
  std::filesystem::remove_all(dir);
  print_header("Judger: the longest pause between batch ACKs (a batch of 1 000 records every 5 ms)");
  print_row("longest, while 1 000 servers x 24 h are read", static_cast<double>(busy.longest_us) / 1e3, "ms",
            "no query running, same judger", static_cast<double>(idle.longest_us) / 1e3,
            static_cast<double>(busy.longest_us) / static_cast<double>(std::max<int64_t>(idle.longest_us, 1)),
            "<= 100 ms and <= 2x idle");
  print_row("99th percentile, the same", static_cast<double>(busy.p99_us) / 1e3, "ms", "no query running, same judger",
            static_cast<double>(idle.p99_us) / 1e3,
            static_cast<double>(busy.p99_us) / static_cast<double>(std::max<int64_t>(idle.p99_us, 1)), "");
  print_row("judger's largest heap (RssAnon) while they are read", static_cast<double>(busy_heap) / 1e6, "MB",
            "no query running, same judger", static_cast<double>(idle_heap) / 1e6,
            static_cast<double>(busy_heap) / static_cast<double>(std::max<uint64_t>(idle_heap, 1)),
            "the answer itself is never held");
  auto second_of_minute = [](int64_t ns) { return static_cast<int>(ns / 1'000'000'000 % 60); };
  std::printf("longest pauses ended at second %d (idle) and %d (busy) of their minutes\n",
              second_of_minute(idle.longest_end_ns), second_of_minute(busy.longest_end_ns));
  std::printf("%zu answers of %.1f MB meanwhile, %.2f s each (median)\n", query_s.size(),
              static_cast<double>(answer_bytes) / 1e6, query_s.empty() ? 0.0 : median(query_s));
  return 0;
}
