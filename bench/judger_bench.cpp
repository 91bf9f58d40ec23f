// Judger ingest on one core with 100 000 live series: every batch stored in
// SQLite (before its ACK) and rolled up, beside the roll-up alone (the limit
// of the in-memory part).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/ratio_reporter.hpp"
#include "judger/minute_rollup.hpp"
#include "judger/minute_store.hpp"

namespace {

using namespace monitor::judger;

constexpr int kSeries = 100000;  // 10 attrs x 10 000 servers
constexpr int kBatch = 1000;     // records per batch, as an agent sends per second

std::vector<std::vector<PendingRecord>> make_batches(NameTable& names, int64_t second) {
  std::vector<std::vector<PendingRecord>> batches(kSeries / kBatch);
  for (int i = 0; i < kSeries; ++i) {
    PendingRecord p{names.intern("Bench.Judger", "Attr.N" + std::to_string(i % 10)), {}};
    p.record.second = second;
    p.record.server_id = i / 10;
    p.record.ops = 1 | 64;  // SUM and COUNT, as the daemon bench sends
    p.record.stats.add(i, second * 1'000'000'000);
    batches[static_cast<size_t>(i / kBatch)].push_back(std::move(p));
  }
  return batches;
}

void BM_RollupOnly(benchmark::State& state) {
  const int64_t now = 1'732'176'000;
  NameTable names;
  const auto batches = make_batches(names, now);
  MinuteRollup rollup({10, 120}, names);
  size_t records = 0;
  for (auto _ : state) {
    for (const auto& batch : batches) {
      for (const auto& r : batch) rollup.add(r, now);
      records += batch.size();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
}

void BM_JudgerIngest(benchmark::State& state) {
  const std::string dir = "/tmp/bench-judger-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  auto store = std::move(*MinuteStore::open(dir + "/judger.db"));
  const int64_t now = 1'732'176'000;
  const auto batches = make_batches(store->names(), now);
  MinuteRollup rollup({10, 120}, store->names());
  uint64_t sequence = 0;
  size_t records = 0;
  for (auto _ : state) {
    for (const auto& batch : batches) {
      if (!store->append_batch(1, ++sequence, batch, 0)) state.SkipWithError("append failed");
      for (const auto& r : batch) rollup.add(r, now);
      records += batch.size();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
  store.reset();
  std::filesystem::remove_all(dir);
}

// Storing a finished minute of 100 000 series (points, mergeable cells and the
// re-derived archives, one transaction): time the io thread is not ingesting.
void BM_FinishMinute(benchmark::State& state) {
  const std::string dir = "/tmp/bench-judger-finish-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  auto store = std::move(*MinuteStore::open(dir + "/judger.db"));
  int64_t minute = 1'732'176'000;
  MinuteRollup rollup({10, 120}, store->names());
  uint64_t sequence = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (const auto& batch : make_batches(store->names(), minute)) {
      if (!store->append_batch(1, ++sequence, batch, 0)) state.SkipWithError("append failed");
      for (const auto& r : batch) rollup.add(r, minute);
    }
    state.ResumeTiming();
    for (const auto& finished : rollup.due(minute + 70)) {
      if (!store->finish_minute(finished.minute, finished.points, finished.cells)) state.SkipWithError("finish failed");
      rollup.stored(finished.minute);
    }
    minute += 60;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kSeries);
  store.reset();
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_RollupOnly)->UseRealTime()->Iterations(30);
BENCHMARK(BM_FinishMinute)->UseRealTime()->Iterations(3);
BENCHMARK(BM_JudgerIngest)->UseRealTime()->Iterations(100);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  monitor::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const auto rollup = reporter.get("BM_RollupOnly/iterations:30/real_time");
  const auto ingest = reporter.get("BM_JudgerIngest/iterations:100/real_time");
  monitor::bench::print_header("Judger ingest, one core, 100 000 live series (M reports/s)");
  monitor::bench::print_row("store (SQLite) + roll-up", ingest.items_per_second / 1e6, "M/s",
                            "roll-up alone (in memory)", rollup.items_per_second / 1e6,
                            ingest.items_per_second / rollup.items_per_second, ">= 3 M/s");
  const auto finish = reporter.get("BM_FinishMinute/iterations:3/real_time");
  const double finish_ms = finish.items_per_second > 0 ? 1e3 * kSeries / finish.items_per_second : 0;
  monitor::bench::print_row("storing one finished minute, 100 000 series", finish_ms, "ms", "the minute it covers (ms)",
                            60000, finish_ms / 60000, "(a share of the io thread)");
  return 0;
}
