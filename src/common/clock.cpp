#include "common/clock.hpp"

#include <cstdio>
#include <cstring>

namespace monitor {

bool tsc_is_reliable() noexcept {
  char source[64] = {};
  if (FILE* f = std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r")) {
    if (std::fgets(source, sizeof source, f) == nullptr) source[0] = '\0';
    std::fclose(f);
  }
  if (std::strncmp(source, "tsc", 3) != 0) return false;
  bool constant = false, nonstop = false;
  if (FILE* f = std::fopen("/proc/cpuinfo", "r")) {
    char line[4096];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strncmp(line, "flags", 5) != 0) continue;
      constant = std::strstr(line, " constant_tsc") != nullptr;
      nonstop = std::strstr(line, " nonstop_tsc") != nullptr;
      break;
    }
    std::fclose(f);
  }
  return constant && nonstop;
}

TscClock::Sample TscClock::sample() const noexcept {
  // Bracket the clock reads with two tick reads and keep the tightest of a
  // few tries, so a preemption between the reads does not skew the sample.
  Sample best{};
  uint64_t best_width = ~uint64_t{0};
  for (int i = 0; i < 5; ++i) {
    const uint64_t before = sources_.tsc();
    const int64_t real = sources_.realtime();
    const int64_t mono = sources_.monotonic();
    const uint64_t after = sources_.tsc();
    if (after - before < best_width) {
      best_width = after - before;
      best = {before + (after - before) / 2, real, mono};
    }
  }
  return best;
}

TscClock::TscClock(int warmup_ms, Sources sources) noexcept : sources_(sources) {
  origin_ = sample();
  if (warmup_ms > 0) {
    timespec ts{0, static_cast<long>(warmup_ms) * 1000000L};
    nanosleep(&ts, nullptr);
  }
  recalibrate();
}

void TscClock::recalibrate() noexcept {
  const Sample now = sample();
  const double ticks = static_cast<double>(now.tsc - origin_.tsc);
  if (ticks > 0 && now.monotonic_ns > origin_.monotonic_ns) {
    ns_per_tick_ = static_cast<double>(now.monotonic_ns - origin_.monotonic_ns) / ticks;
  }
  anchor_tsc_ = now.tsc;
  anchor_ns_ = now.realtime_ns;
}

}  // namespace monitor
