// Unix-socket ingest: the agent's receive + parse + aggregate path (a receive
// thread and a parsing thread, as in monitor-agent) beside a bare receive
// loop that only counts datagrams (the kernel's limit here).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include <benchmark/benchmark.h>

#include "agent/aggregator.hpp"
#include "agent/datagram_pump.hpp"
#include "agent/ingest.hpp"
#include "agent/name_registry.hpp"
#include "agent/socket_receiver.hpp"
#include "bench/ratio_reporter.hpp"
#include "common/clock.hpp"

namespace {

using namespace monitor;

constexpr int kLinesPerDatagram = 32;

class NullSink final : public agent::AggregateSink {
 public:
  void write(const agent::AggregateRecord&) override {}
  void end_second(int64_t) override {}
};
constexpr int kDatagrams = 20000;

// Datagrams of 32 native lines over 1 000 series, as a client library batches them.
std::vector<std::string> make_datagrams() {
  std::vector<std::string> out;
  int n = 0;
  for (int d = 0; d < 64; ++d) {
    std::string datagram;
    for (int l = 0; l < kLinesPerDatagram; ++l, ++n) {
      datagram += "Bench.Socket Lines.N" + std::to_string(n % 10) + " " + std::to_string(n % 100) + " " +
                  std::to_string(n * 7 % 1000) + " SUM,COUNT 0\n";
    }
    out.push_back(datagram);
  }
  return out;
}

// Sends kDatagrams datagrams to `path` from another thread; sendto blocks when
// the receiver's queue is full, so the receiver's speed sets the rate.
std::thread start_sender(const std::string& path, std::atomic<bool>& stop) {
  return std::thread([path, &stop] {
    const auto datagrams = make_datagrams();
    const int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    for (size_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      const std::string& d = datagrams[i % datagrams.size()];
      timeval tv{0, 100000};
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
    close(fd);
  });
}

std::string socket_path(const char* tag) { return "/tmp/bench-" + std::string(tag) + "-" + std::to_string(getpid()); }

void BM_SocketBareReceive(benchmark::State& state) {
  auto receiver = agent::SocketReceiver::bind(socket_path("bare"), 8 << 20);
  if (!receiver) {
    state.SkipWithError("bind failed");
    return;
  }
  std::atomic<bool> stop{false};
  std::thread sender = start_sender(socket_path("bare"), stop);
  size_t datagrams = 0;
  for (auto _ : state) {
    size_t got = 0;
    while (got < kDatagrams) got += receiver->receive([](std::string_view, bool) {});
    datagrams += got;
  }
  stop = true;
  while (receiver->receive([](std::string_view, bool) {}) != 0) {
  }
  sender.join();
  state.SetItemsProcessed(static_cast<int64_t>(datagrams) * kLinesPerDatagram);
}

// As monitor-agent reads a datagram socket: its DatagramPump thread receives,
// this thread parses and aggregates what it hands over.
void BM_SocketAgentIngest(benchmark::State& state) {
  auto receiver = agent::SocketReceiver::bind(socket_path("agent"), 8 << 20);
  if (!receiver) {
    state.SkipWithError("bind failed");
    return;
  }
  const int64_t now_s = realtime_ns() / 1'000'000'000;
  agent::Aggregator aggregator({2, 2}, now_s);
  agent::NameRegistry names;
  agent::Ingest ingest(aggregator, names, nullptr, 0);
  agent::DatagramPump pump(std::move(*receiver));
  std::atomic<bool> stop{false};
  std::thread sender = start_sender(socket_path("agent"), stop);
  NullSink sink;
  size_t datagrams = 0;
  auto on_datagram = [&](std::string_view bytes, bool truncated, int64_t received_ns) {
    ingest.on_datagram(bytes, truncated, received_ns);
  };
  for (auto _ : state) {
    size_t got = 0;
    while (got < kDatagrams) {
      pollfd ready{pump.fd(), POLLIN, 0};
      ::poll(&ready, 1, 100);
      const int64_t now_ns = realtime_ns();
      ingest.set_now(now_ns / 1'000'000'000);
      got += pump.drain(on_datagram);
      aggregator.flush_until(now_ns / 1'000'000'000 - 3, sink);
    }
    datagrams += got;
  }
  stop = true;
  sender.join();
  pump.stop_and_drain(on_datagram);
  state.counters["bad_lines"] = static_cast<double>(ingest.counters().bad_lines_total());
  state.SetItemsProcessed(static_cast<int64_t>(datagrams) * kLinesPerDatagram);
}

// The same datagrams from memory: the agent's CPU per line without the kernel.
void BM_IngestFromMemory(benchmark::State& state) {
  const auto datagrams = make_datagrams();
  const int64_t now_ns = realtime_ns();
  agent::Aggregator aggregator({2, 2}, now_ns / 1'000'000'000);
  agent::NameRegistry names;
  agent::Ingest ingest(aggregator, names, nullptr, 0);
  ingest.set_now(now_ns / 1'000'000'000);
  size_t i = 0;
  for (auto _ : state) ingest.on_datagram(datagrams[i++ % datagrams.size()], false, now_ns);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kLinesPerDatagram);
}
BENCHMARK(BM_IngestFromMemory);

// statsd counter lines (100 names, a default service) from memory: the
// agent's CPU per statsd line without the kernel.
void BM_StatsdIngestFromMemory(benchmark::State& state) {
  std::vector<std::string> datagrams(64);
  int name = 0;
  for (auto& d : datagrams) {
    for (int i = 0; i < 25; ++i) d += "bench.load.c" + std::to_string(name++ % 100) + ":1|c\n";
  }
  const int64_t now_ns = realtime_ns();
  agent::Aggregator aggregator({2, 2}, now_ns / 1'000'000'000);
  agent::NameRegistry names;
  agent::StatsdOptions statsd;
  statsd.default_service = "Bench.Statsd";
  agent::Ingest ingest(aggregator, names, nullptr, 0, statsd);
  ingest.set_now(now_ns / 1'000'000'000);
  size_t i = 0;
  for (auto _ : state) ingest.on_datagram(datagrams[i++ % datagrams.size()], false, now_ns);
  state.counters["bad_lines"] = static_cast<double>(ingest.counters().bad_lines_total());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 25);
}
BENCHMARK(BM_StatsdIngestFromMemory);

BENCHMARK(BM_SocketBareReceive)->UseRealTime()->Iterations(20)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_SocketAgentIngest)->UseRealTime()->Iterations(20)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  monitor::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const auto bare = reporter.get("BM_SocketBareReceive/iterations:20/repeats:5/real_time");
  const auto agent = reporter.get("BM_SocketAgentIngest/iterations:20/repeats:5/real_time");
  const auto memory = reporter.get("BM_IngestFromMemory");
  monitor::bench::print_header("Unix-socket ingest, 32 native lines per datagram (M lines/s, medians of 5)");
  monitor::bench::print_row("agent receive, parse, aggregate: 2 threads", agent.items_per_second / 1e6, "M lines/s",
                            "bare recvmmsg loop (kernel limit)", bare.items_per_second / 1e6,
                            agent.items_per_second / bare.items_per_second, ">= 0.70x");
  monitor::bench::print_row("agent parse + aggregate, from memory", memory.items_per_second / 1e6, "M lines/s",
                            "bare recvmmsg loop (kernel limit)", bare.items_per_second / 1e6,
                            memory.items_per_second / bare.items_per_second, "(CPU cost alone)");
  return 0;
}
