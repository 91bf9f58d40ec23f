// The judger's deduplication state under senders shaped like real agents:
// 1 000 of them, an hour of traffic, one batch a second each (one in twenty
// seconds cut in two, as a large second is), and a restart now and then. The
// sequences are the agent's: dense from an epoch (now), beside the scheme they
// replaced, max(next, second << 10), measured in the same run. Prints the size
// of the state and the pause its maintenance (SeenSequences::expire, run by
// the judger's retention every minute on its io thread) costs.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "judger/seen_sequences.hpp"

namespace {

using monitor::judger::SeenSequences;
using Clock = std::chrono::steady_clock;

constexpr int kSenders = 1000;
constexpr int kSeconds = 3600;
constexpr int64_t kStart = 1'800'000'000;

struct Outcome {
  size_t intervals = 0;
  double ingest_ns_per_batch = 0;
  double expire_scan_us = 0;     // the minute's maintenance with nothing to forget
  double expire_forget_us = 0;   // forgetting the first half hour
  uint64_t batches = 0;
};

// `dense`: the agent's sequences now; otherwise the seconds-shifted scheme.
Outcome run(bool dense) {
  SeenSequences seen;
  std::mt19937_64 rng(42);
  std::vector<uint64_t> next(kSenders);
  for (int s = 0; s < kSenders; ++s) next[s] = dense ? (static_cast<uint64_t>(kStart) << 20) + s : 1;
  Outcome out;
  const auto start = Clock::now();
  for (int t = 0; t < kSeconds; ++t) {
    const int64_t second = kStart + t;
    for (int s = 0; s < kSenders; ++s) {
      const int batches = rng() % 20 == 0 ? 2 : 1;
      if (rng() % 100'000 == 0) {
        // A restart: the dense scheme keeps its place (next-sequence file).
        if (!dense) next[s] = 1;
      }
      for (int b = 0; b < batches; ++b) {
        uint64_t sequence;
        if (dense) {
          sequence = next[s]++;
        } else {
          sequence = std::max(next[s], static_cast<uint64_t>(second) << 10);
          next[s] = sequence + 1;
        }
        if (auto change = seen.plan_add(static_cast<uint64_t>(s) + 1, sequence, second)) seen.apply(*change);
        ++out.batches;
      }
    }
  }
  const auto ingested = Clock::now();
  out.intervals = seen.intervals();
  out.ingest_ns_per_batch =
      std::chrono::duration<double, std::nano>(ingested - start).count() / static_cast<double>(out.batches);
  auto t0 = Clock::now();
  const auto none = seen.expire(kStart - 1);
  out.expire_scan_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  t0 = Clock::now();
  const auto half = seen.expire(kStart + kSeconds / 2);
  out.expire_forget_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  if (!none.empty()) std::printf("(unexpected: %zu intervals expired early)\n", none.size());
  (void)half;
  return out;
}

}  // namespace

int main() {
  const Outcome dense = run(true);
  const Outcome shifted = run(false);
  std::printf("\njudger deduplication state, %d agent-shaped senders, %d s of traffic (%llu batches each run)\n\n",
              kSenders, kSeconds, static_cast<unsigned long long>(dense.batches));
  std::printf("%-44s %14s %14s %10s\n", "figure", "dense (now)", "second<<10", "ratio");
  auto row = [](const char* name, double ours, double peer) {
    std::printf("%-44s %14.1f %14.1f %9.4fx\n", name, ours, peer, peer > 0 ? ours / peer : 0.0);
  };
  row("intervals held (= seen rows in the store)", static_cast<double>(dense.intervals),
      static_cast<double>(shifted.intervals));
  row("ingest: plan_add + apply, ns per batch", dense.ingest_ns_per_batch, shifted.ingest_ns_per_batch);
  row("maintenance pause: expire() scan, us", dense.expire_scan_us, shifted.expire_scan_us);
  row("maintenance pause: expire() half an hour, us", dense.expire_forget_us, shifted.expire_forget_us);
  std::printf("\nintervals per sender: %.2f (dense) vs %.1f (second<<10)\n",
              static_cast<double>(dense.intervals) / kSenders, static_cast<double>(shifted.intervals) / kSenders);
  return 0;
}
