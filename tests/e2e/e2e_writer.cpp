// A writer process for the end-to-end tests.
//   e2e_writer workload <process_index> <socket_path> <reports_per_thread>
//   e2e_writer forever          write flat out until killed
//   e2e_writer late <count>     reports stamped a minute ago
//   e2e_writer steady <server_id> <per_second> <seconds>
//                               E2e.Test Steady.Count SUM 1 at a steady rate;
//                               prints "ok=N" (calls that returned MONITOR_OK)
//                               and keeps going until the time is up or SIGTERM
//   e2e_writer wide <servers>   E2e.Test Wide.Count SUM|COUNT 1 for servers
//                               0..n-1, all stamped with one second (the
//                               current one); prints "second=S ok=N"
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "e2e/workload.hpp"
#include "monitor/monitor.hpp"

using namespace monitor::e2e;

namespace {

std::atomic<long> g_full_retries{0};

// The test wants every report delivered, so a full lane is waited out here;
// the retries are printed so the test can match them to the agent's drop count.
void report_until_accepted(const monitor::Attr& attr, const Report& r) {
  while (attr.report(r.server_id, r.value, r.ops) == monitor::Errc::kRingFull) {
    ++g_full_retries;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void names_until_accepted(const Report& r) {
  while (monitor::report(kService, r.attr, r.server_id, r.value, r.ops) == monitor::Errc::kRingFull) {
    ++g_full_retries;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::string ops_text(int32_t ops) { return std::to_string(ops); }

int run_workload(int p, const char* socket_path, int per_thread) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path, sizeof addr.sun_path - 1);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
      const monitor::Attr handle_attr(monitor::Name(kService), monitor::Name("Sdk.Handle"));
      const monitor::Attr seq_attr(monitor::Name(kService), monitor::Name("Seq.Order"));
      if (handle_attr.error() != monitor::Errc::kOk || seq_attr.error() != monitor::Errc::kOk) {
        ++failures;
        return;
      }
      std::string datagram;
      int lines = 0;
      auto flush = [&] {
        if (lines == 0) return;
        if (sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) !=
            static_cast<ssize_t>(datagram.size())) {
          ++failures;
        }
        datagram.clear();
        lines = 0;
      };
      for (int i = 0; i < per_thread; ++i) {
        const Report r = workload_report(p, t, i);
        switch (r.path) {
          case Path::kHandle:
            report_until_accepted(std::string_view(r.attr) == "Seq.Order" ? seq_attr : handle_attr, r);
            break;
          case Path::kNames: names_until_accepted(r); break;
          case Path::kSocketNative:
            datagram += std::string(kService) + " " + r.attr + " " + std::to_string(r.server_id) + " " +
                        std::to_string(r.value) + " " + ops_text(r.ops) + " 0\n";
            if (++lines == 32) flush();
            break;
          case Path::kSocketStatsd:
            datagram += "e2e.test.socket.statsd:" + std::to_string(r.value) + "|c|#server_id:" +
                        std::to_string(r.server_id) + "\n";
            if (++lines == 32) flush();
            break;
        }
        if (i % 512 == 511) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      flush();
      close(fd);
    });
  }
  for (auto& th : threads) th.join();
  std::printf("full_retries=%ld\n", g_full_retries.load());
  return failures.load();
}

volatile sig_atomic_t g_stop = 0;
extern "C" void on_term(int) { g_stop = 1; }

// Report i goes to server `server_id + i % servers`: one series, or many (a
// link's load grows with the series of each second).
int run_steady(int64_t server_id, int per_second, int seconds, int servers) {
  signal(SIGTERM, on_term);
  const monitor::Attr attr("E2e.Test", "Steady.Count");
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  const auto gap = std::chrono::nanoseconds(1'000'000'000 / per_second);
  long ok = 0;
  long failed = 0;
  auto next = start;
  while (g_stop == 0 && std::chrono::steady_clock::now() < end) {
    if (attr.report(server_id + (ok + failed) % servers, 1, monitor::kSum) == monitor::Errc::kOk) {
      ++ok;
    } else {
      ++failed;
    }
    next += gap;
    std::this_thread::sleep_until(next);
  }
  std::printf("ok=%ld failed=%ld\n", ok, failed);
  std::fflush(stdout);
  return 0;
}

int run_wide(int servers) {
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int64_t second = now_ns / 1'000'000'000;
  long ok = 0;
  for (int server = 0; server < servers; ++server) {
    int rc = 0;
    while ((rc = monitor_at("E2e.Test", "Wide.Count", server, 1, MONITOR_OP_SUM | MONITOR_OP_COUNT,
                            second * 1'000'000'000 + 500'000'000)) == MONITOR_ERR_RING_FULL) {
      ++g_full_retries;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    ok += rc == MONITOR_OK;
  }
  std::printf("second=%lld ok=%ld full_retries=%ld\n", static_cast<long long>(second), ok, g_full_retries.load());
  return ok == servers ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "workload" && argc == 5) return run_workload(std::atoi(argv[2]), argv[3], std::atoi(argv[4]));
  if (mode == "forever") {
    const monitor::Attr attr("E2e.Test", "Killed.Writer");
    // The first report counts (1, not 0): a writer killed right after it,
    // before any other (a loaded host may not run it again in between), has
    // still put something in the ring that the agent must not lose.
    while (attr.report(1, 1, monitor::kSum) != monitor::Errc::kOk) {
    }
    std::puts("reporting");  // the test kills it once it holds a lane
    std::fflush(stdout);
    for (int64_t i = 2;; ++i) (void)attr.report(1, i, monitor::kSum);
  }
  if (mode == "late" && argc == 3) {
    const auto minute_ago = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch() - std::chrono::seconds(60))
                                .count();
    int failures = 0;
    for (int i = 0; i < std::atoi(argv[2]); ++i) {
      failures += monitor_at("E2e.Test", "Late.Report", 1, 1, MONITOR_OP_SUM, minute_ago) != MONITOR_OK;
    }
    return failures;
  }
  if (mode == "wide" && argc == 3) return run_wide(std::atoi(argv[2]));
  if (mode == "steady" && (argc == 5 || argc == 6)) {
    return run_steady(std::atoll(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), argc == 6 ? std::max(1, std::atoi(argv[5])) : 1);
  }
  std::fprintf(stderr, "usage: e2e_writer workload <p> <socket> <n> | forever | late <n> | steady <server> <rate> <s>\n");
  return 2;
}
