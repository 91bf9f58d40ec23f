// The agent's TSC-to-wall-clock conversion (issue 7, item 7).
#include <catch2/catch.hpp>

#include "common/clock.hpp"

using monitor::TscClock;

namespace {

// A fake machine: 3 ticks per ns, a monotonic clock, and a wall clock that an
// operator steps by +1 h once `g_stepped` is set.
uint64_t g_ticks = 1'000'000;
bool g_stepped = false;
constexpr int64_t kWallStart = 1'800'000'000'000'000'000;
constexpr int64_t kStep = int64_t{3600} * 1'000'000'000;

uint64_t fake_tsc() noexcept { return g_ticks += 3; }  // every read moves time a little
int64_t fake_monotonic() noexcept { return static_cast<int64_t>(g_ticks / 3); }
int64_t fake_realtime() noexcept { return kWallStart + fake_monotonic() + (g_stepped ? kStep : 0); }

}  // namespace

TEST_CASE("issue 7: a wall-clock step after start moves converted times but never skews the tick rate",
          "[clock][issue7][failure]") {
  TscClock clock(0, TscClock::Sources{fake_tsc, fake_realtime, fake_monotonic});
  g_ticks += 3'000'000'000;  // one second
  clock.recalibrate();
  CHECK(clock.ticks_per_second() == Approx(3e9).epsilon(1e-6));

  g_stepped = true;  // the operator sets the clock an hour ahead
  g_ticks += 3'000'000'000;
  clock.recalibrate();
  // The rate stays (measured on the monotonic clock): it used to become
  // (1 h + 2 s) / 2 s times too slow, skewing every later timestamp.
  CHECK(clock.ticks_per_second() == Approx(3e9).epsilon(1e-6));
  // Times follow the wall clock, step included.
  const uint64_t later = g_ticks + 3'000'000'000;  // one second after the last anchor
  const int64_t expected = kWallStart + kStep + static_cast<int64_t>(later / 3);
  CHECK(std::llabs(clock.to_ns(later) - expected) < 1'000);
}
