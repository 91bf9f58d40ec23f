// Agent drain + aggregation on one core with 10 000 live series, beside a
// drain that only sums (the ring's limit) and drain + std::unordered_map.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <benchmark/benchmark.h>

#include "agent/aggregator.hpp"
#include "agent/ingest.hpp"
#include "agent/name_registry.hpp"
#include "agent/recovery_journal.hpp"
#include "bench/ratio_reporter.hpp"
#include "common/clock.hpp"
#include "model/stats.hpp"
#include "monitor/monitor.hpp"
#include "ring/name_table.hpp"
#include "ring/ring_reader.hpp"
#include "ring/ring_writer.hpp"

namespace {

using namespace monitor;

constexpr uint32_t kLanes = 64;
constexpr uint32_t kSlots = 4096;
constexpr int kNames = 100;
constexpr int kServersPerName = 100;  // 100 x 100 = 10 000 live series

struct Fixture {
  std::string name = "/bench-agent-" + std::to_string(getpid());
  ring::ShmSegment writer_segment;
  std::optional<ring::RingReader> reader;
  std::vector<uint32_t> name_ids;
  std::vector<ring::WriterLane> lanes;
  int64_t now_s = realtime_ns() / 1'000'000'000;
  uint64_t cursor = 0;

  Fixture() {
    shm_unlink(name.c_str());
    const ring::Geometry g{kLanes + 1, 1, kSlots, 1024};
    writer_segment = std::move(*ring::ShmSegment::open_or_create(name, g));
    reader.emplace(std::move(*ring::RingReader::open(std::move(*ring::ShmSegment::open_or_create(name, g)))));
    shm_unlink(name.c_str());
    ring::NameTable names(writer_segment);
    for (int n = 0; n < kNames; ++n) {
      name_ids.push_back(names.intern("Bench.Agent", "Attr.N" + std::to_string(n)).id);
    }
    ring::RingWriter writer(writer_segment);
    lanes.resize(kLanes);
    for (uint32_t l = 0; l < kLanes; ++l) writer.acquire(lanes[l], (uint64_t{1} << 32) | (l + 1));
  }

  // Fills every lane: 262 144 reports over 10 000 series in a scattered order,
  // with the op mixes a service typically asks for.
  size_t fill() {
    size_t n = 0;
    const auto base_ns = static_cast<uint64_t>(now_s) * 1'000'000'000;
    for (auto& lane : lanes) {
      for (uint32_t i = 0; i < kSlots; ++i, ++cursor) {
        const uint64_t mixed = cursor * 0x9E3779B97F4A7C15ULL;
        const auto name_index = static_cast<uint32_t>((mixed >> 20) % kNames);
        const auto server = static_cast<int64_t>((mixed >> 40) % kServersPerName);
        const uint32_t ops = name_index % 10 == 9   ? (MONITOR_OP_HIST | MONITOR_OP_AVG)
                             : name_index % 10 >= 7 ? (MONITOR_OP_MAX | MONITOR_OP_MIN | MONITOR_OP_AVG)
                                                    : (MONITOR_OP_SUM | MONITOR_OP_COUNT);
        const ring::ReportFields r{base_ns + (cursor & 0xFFFFFF), static_cast<int64_t>(cursor & 0xFFFF), server,
                                   name_ids[name_index], ops};
        ring::RingWriter::push(lane, r);
        ++n;
      }
    }
    return n;
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Per iteration: fill every lane (not timed), then drain it all through
// on_slot, calling after_drain() after each drain pass. Returns the reports drained.
template <class OnSlot, class AfterDrain>
size_t fill_and_drain(benchmark::State& state, Fixture& f, OnSlot&& on_slot, AfterDrain&& after_drain) {
  size_t items = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const size_t filled = f.fill();
    state.ResumeTiming();
    size_t drained = 0;
    while (drained < filled) {
      drained += f.reader->drain(on_slot, kSlots);
      after_drain();
    }
    items += drained;
  }
  state.SetItemsProcessed(static_cast<int64_t>(items));
  return items;
}

void BM_DrainOnly(benchmark::State& state) {
  int64_t sum = 0;
  fill_and_drain(state, fixture(), [&](const ring::Slot& s) { sum += s.value; }, [] {});
  benchmark::DoNotOptimize(sum);
}

void BM_DrainUnorderedMap(benchmark::State& state) {
  std::unordered_map<uint64_t, model::Stats> map;
  fill_and_drain(
      state, fixture(),
      [&](const ring::Slot& s) {
        map[(uint64_t{s.name_id()} << 40) ^ (uint64_t{s.ops()} << 32) ^ static_cast<uint64_t>(s.server_id)].add(
            s.value, static_cast<int64_t>(s.time_value()));
      },
      [] {});
  state.counters["series"] = static_cast<double>(map.size());
}

void BM_AgentDrainAggregate(benchmark::State& state) {
  Fixture& f = fixture();
  agent::Aggregator aggregator({2, 2}, f.now_s);
  agent::NameRegistry names;
  ring::NameTable ring_names(f.reader->segment());
  agent::Ingest ingest(aggregator, names, &ring_names, 0);
  ingest.set_now(f.now_s);
  TscClock tsc(1);
  fill_and_drain(state, f, [&](const ring::Slot& s) { ingest.on_slot(s, tsc); }, [&] { ingest.flush(); });
  state.counters["series"] = static_cast<double>(aggregator.live_cells());
  state.counters["rejected"] = static_cast<double>(ingest.counters().late + ingest.counters().future +
                                                   ingest.counters().bad_slots);
}

// As BM_AgentDrainAggregate, with the crash journal the agent keeps: every
// accepted report written to tmpfs, committed with the lane tails before the
// slots are released. Between iterations (not timed) the second is "written
// out", so the journal stays in its steady state instead of filling up.
void BM_AgentDrainAggregateJournaled(benchmark::State& state) {
  Fixture& f = fixture();
  agent::Aggregator aggregator({2, 2}, f.now_s);
  agent::NameRegistry names;
  ring::NameTable ring_names(f.reader->segment());
  const std::string path = "/dev/shm/bench-agent-journal-" + std::to_string(getpid());
  agent::RecoveryJournal journal(path, {}, {}, kLanes + 1, f.now_s - 10);
  names.on_new_name([&](std::string_view service, std::string_view attr) { journal.add_name(service, attr); });
  aggregator.set_journal(&journal);
  agent::Ingest ingest(aggregator, names, &ring_names, 0);
  ingest.set_now(f.now_s);
  TscClock tsc(1);
  size_t items = 0;
  int64_t written_out = f.now_s - 10;
  for (auto _ : state) {
    state.PauseTiming();
    journal.end_flush(++written_out + 10);
    const size_t filled = f.fill();
    state.ResumeTiming();
    size_t drained = 0;
    while (drained < filled) {
      drained += f.reader->drain([&](const ring::Slot& s) { ingest.on_slot(s, tsc); },
                                 [&](std::span<const ring::LanePosition> lanes) {
                                   ingest.flush();
                                   journal.commit(lanes);
                                 },
                                 kSlots);
    }
    items += drained;
  }
  state.SetItemsProcessed(static_cast<int64_t>(items));
  state.counters["unjournaled"] = static_cast<double>(journal.unjournaled());
  ::unlink((path + ".new").c_str());
}

BENCHMARK(BM_DrainOnly)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_DrainUnorderedMap)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_AgentDrainAggregate)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_AgentDrainAggregateJournaled)->UseRealTime()->MinTime(1.0);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  monitor::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const auto drain = reporter.get("BM_DrainOnly/min_time:1.000/real_time");
  const auto map = reporter.get("BM_DrainUnorderedMap/min_time:1.000/real_time");
  const auto agent = reporter.get("BM_AgentDrainAggregate/min_time:1.000/real_time");
  const auto journaled = reporter.get("BM_AgentDrainAggregateJournaled/min_time:1.000/real_time");
  monitor::bench::print_header("Agent drain + aggregation, one core, 10 000 live series (M reports/s)");
  monitor::bench::print_row("agent drain + aggregate", agent.items_per_second / 1e6, "M/s",
                            "drain only (the ring's limit)", drain.items_per_second / 1e6,
                            agent.items_per_second / drain.items_per_second, ">= 20 M/s");
  monitor::bench::print_row("agent drain + aggregate", agent.items_per_second / 1e6, "M/s",
                            "drain + std::unordered_map<Stats>", map.items_per_second / 1e6,
                            agent.items_per_second / map.items_per_second, "(peer)");
  monitor::bench::print_row("... with the crash journal", journaled.items_per_second / 1e6, "M/s",
                            "the same without it", agent.items_per_second / 1e6,
                            journaled.items_per_second / agent.items_per_second, "still >= 20 M/s");
  return 0;
}
