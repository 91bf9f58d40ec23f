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

TscClock::Pair TscClock::sample() noexcept {
  // Bracket the clock read with two tick reads and keep the tightest of a few
  // tries, so a preemption between the reads does not skew the pair.
  Pair best{};
  uint64_t best_width = ~uint64_t{0};
  for (int i = 0; i < 5; ++i) {
    const uint64_t before = read_tsc();
    const int64_t ns = realtime_ns();
    const uint64_t after = read_tsc();
    if (after - before < best_width) {
      best_width = after - before;
      best = {before + (after - before) / 2, ns};
    }
  }
  return best;
}

TscClock::TscClock(int warmup_ms) noexcept {
  origin_ = sample();
  timespec ts{0, static_cast<long>(warmup_ms) * 1000000L};
  nanosleep(&ts, nullptr);
  recalibrate();
}

void TscClock::recalibrate() noexcept {
  const Pair now = sample();
  const double ticks = static_cast<double>(now.tsc - origin_.tsc);
  if (ticks > 0 && now.ns > origin_.ns) ns_per_tick_ = static_cast<double>(now.ns - origin_.ns) / ticks;
  anchor_tsc_ = now.tsc;
  anchor_ns_ = now.ns;
}

}  // namespace monitor
