// Do writer threads scale? Two writers against one, through the real SDK, with
// a light consumer (drain only, in a thread that sleeps between passes) so the
// write path, not the 2-core machine's spare CPU, is what is measured.
// sdk_bench measures the same calls with a full agent aggregating behind them.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <benchmark/benchmark.h>

#include "bench/ratio_reporter.hpp"
#include "monitor/monitor.hpp"
#include "ring/ring_reader.hpp"
#include "ring/shm_segment.hpp"

namespace {

std::atomic<uint64_t> g_not_ok{0};

void BM_AttrHandleLightConsumer(benchmark::State& state) {
  static const monitor::Attr attr("Bench.Scaling", "Calls.ByHandle");
  uint64_t not_ok = 0;
  int64_t i = 0;
  for (auto _ : state) not_ok += attr.report(state.thread_index(), ++i, monitor::kSum) != monitor::Errc::kOk;
  g_not_ok += not_ok;
  state.SetItemsProcessed(state.iterations());
  state.counters["dropped_pct"] = benchmark::Counter(
      100.0 * static_cast<double>(not_ok) / static_cast<double>(state.iterations()), benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_AttrHandleLightConsumer)->Threads(1)->Threads(2)->UseRealTime()->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) {
  const std::string name = "/bench-scaling-" + std::to_string(getpid());
  // Lanes of 256 Ki slots hold ~4 ms of one writer flat out, so a consumer that
  // sleeps 100 us between passes keeps up while using little CPU.
  auto segment = monitor::ring::ShmSegment::open_or_create(name, monitor::ring::Geometry{4, 1, 1u << 18, 1024});
  if (!segment) return 1;
  auto reader = monitor::ring::RingReader::open(std::move(*segment));
  if (!reader || monitor_init(name.c_str()) != MONITOR_OK) return 1;
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    uint64_t sum = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      while (reader->drain([&](const monitor::ring::Slot& s) { sum += static_cast<uint64_t>(s.value); }, 1u << 18) != 0) {
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    benchmark::DoNotOptimize(sum);
  });
  benchmark::Initialize(&argc, argv);
  monitor::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  stop = true;
  consumer.join();
  monitor::ring::ShmSegment::unlink(name);

  const auto one = reporter.get("BM_AttrHandleLightConsumer/repeats:5/real_time/threads:1");
  const auto two = reporter.get("BM_AttrHandleLightConsumer/repeats:5/real_time/threads:2");
  monitor::bench::print_header("Writer scaling with a light consumer (drain only)");
  monitor::bench::print_row("Attr handle, 2 threads, aggregate", two.items_per_second / 1e6, "M calls/s",
                            "1 thread, M calls/s", one.items_per_second / 1e6,
                            two.items_per_second / one.items_per_second, ">= 1.5x");
  std::printf("\nCalls that did not return kOk: %llu\n", static_cast<unsigned long long>(g_not_ok.load()));
  return 0;
}
