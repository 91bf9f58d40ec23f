// When a judger takes a minute's data to be in (judger/feeders.hpp).
#include <fstream>

#include <catch2/catch.hpp>

#include "judger/feeders.hpp"
#include "support/temp_names.hpp"

using monitor::judger::Feeders;
using Bound = Feeders::Bound;

namespace {

constexpr int64_t kNow = 1'732'176'000 + 62;  // two seconds into a minute
const Feeders::Options kOptions{7, 30, 5, 300};
// Sessions are told apart by address only.
const int kAgentA = 0, kAgentB = 0, kBonnie = 0;

}  // namespace

TEST_CASE("issue 20: a minute is complete once every live sender's watermark has passed its end", "[feeders][issue20]") {
  monitor::test::TempDir dir;
  Feeders feeders(dir.file("feeders"), kOptions, kNow);

  SECTION("nobody sends: the fixed grace") {
    const auto v = feeders.complete_before(kNow, false);
    CHECK(v.bound == Bound::kGrace);
    CHECK(v.complete_before == kNow - 7);
  }
  SECTION("every sender marked: as far as the slowest says, not past the judger's clock") {
    feeders.connected(&kAgentA, 1, "a", kNow);
    feeders.connected(&kAgentB, 2, "b", kNow);
    feeders.marked(&kAgentA, kNow - 2, kNow);
    feeders.marked(&kAgentB, kNow - 3, kNow);
    auto v = feeders.complete_before(kNow, false);
    CHECK(v.bound == Bound::kWatermarks);
    CHECK(v.complete_before == kNow - 3);
    CHECK(v.slowest_sender == 2);
    feeders.marked(&kAgentB, kNow + 40, kNow);  // a clock far ahead ends no minute early
    feeders.marked(&kAgentA, kNow + 40, kNow);
    CHECK(feeders.complete_before(kNow, false).complete_before == kNow - 1);
  }
  SECTION("a sender that says nothing gets the grace, but a marked one behind it still holds") {
    feeders.connected(&kAgentA, 1, "a", kNow);
    feeders.connected(&kAgentB, 2, "b-old-version", kNow);
    feeders.marked(&kAgentA, kNow - 2, kNow);
    auto v = feeders.complete_before(kNow, false);
    CHECK(v.bound == Bound::kGrace);
    CHECK(v.complete_before == kNow - 7);
    feeders.marked(&kAgentA, kNow - 12, kNow);
    v = feeders.complete_before(kNow, false);
    CHECK(v.bound == Bound::kWatermarks);
    CHECK(v.complete_before == kNow - 12);
  }
  SECTION("a watermark not renewed for fresh_s no longer counts") {
    feeders.connected(&kAgentA, 1, "a", kNow);
    feeders.marked(&kAgentA, kNow - 2, kNow);
    CHECK(feeders.complete_before(kNow + 5, false).bound == Bound::kWatermarks);
    const auto v = feeders.complete_before(kNow + 6, false);
    CHECK(v.bound == Bound::kGrace);
    CHECK(v.complete_before == kNow + 6 - 7);
  }
  SECTION("a lagging sender holds minutes at most wait_s") {
    feeders.connected(&kAgentA, 1, "a", kNow);
    feeders.marked(&kAgentA, kNow - 25, kNow);
    CHECK(feeders.complete_before(kNow, false).complete_before == kNow - 25);
    feeders.marked(&kAgentA, kNow - 25, kNow + 6);  // renewed, still behind
    const auto v = feeders.complete_before(kNow + 10, false);
    CHECK(v.bound == Bound::kWaitOver);
    CHECK(v.complete_before == kNow + 10 - 30);
    CHECK(v.slowest_sender == 1);
  }
  SECTION("a sender that went away gets the grace until it is forgotten") {
    feeders.connected(&kAgentA, 1, "a", kNow);
    feeders.connected(&kBonnie, 9, "bonnie", kNow);
    feeders.marked(&kAgentA, kNow - 2, kNow);
    feeders.marked(&kBonnie, kNow - 2, kNow);
    feeders.disconnected(&kBonnie, kNow);
    CHECK(feeders.complete_before(kNow, false).bound == Bound::kGrace);
    feeders.marked(&kAgentA, kNow + 299, kNow + 301);
    const auto v = feeders.complete_before(kNow + 301, false);
    CHECK(v.bound == Bound::kWatermarks);
    CHECK(v.complete_before == kNow + 299);
  }
}

TEST_CASE("issue 20: a judger started again waits for the senders that fed it, until each is back and marked",
          "[feeders][issue20]") {
  monitor::test::TempDir dir;
  {
    Feeders before(dir.file("feeders"), kOptions, kNow);
    CHECK_FALSE(before.knew_feeders());
    before.connected(&kBonnie, 9, "bonnie-1", kNow);
    before.connected(&kAgentA, 1, "agent with\nnewline", kNow);
    before.save(kNow);
    before.disconnected(&kAgentA, kNow + 1);
    before.save(kNow + 1);
  }
  const int64_t later = kNow + 600;  // down for ten minutes
  Feeders after(dir.file("feeders"), kOptions, later);
  REQUIRE(after.knew_feeders());
  CHECK(after.awaited() == 2);
  CHECK(after.complete_before(later, true).bound == Bound::kCatchingUp);
  // Back, but replaying its spool (unmarked): still nothing.
  after.connected(&kBonnie, 9, "bonnie-1", later + 1);
  CHECK(after.complete_before(later + 1, true).bound == Bound::kCatchingUp);
  after.marked(&kBonnie, later - 2, later + 2);
  CHECK(after.awaited() == 1);
  CHECK(after.complete_before(later + 2, true).bound == Bound::kCatchingUp);  // the agent is not back
  after.connected(&kAgentA, 1, "a", later + 3);
  after.marked(&kAgentA, later - 300, later + 3);  // back, with a backlog: catches up minute by minute
  auto v = after.complete_before(later + 3, true);
  CHECK(v.bound == Bound::kWatermarks);
  CHECK(v.complete_before == later - 300);
  CHECK(after.awaited() == 0);

  SECTION("a feeder that never comes back is waited for only while catching up") {
    Feeders again(dir.file("feeders"), kOptions, later);
    const auto off = again.complete_before(later + 25, false);
    CHECK(off.bound == Bound::kGrace);
    CHECK(off.complete_before == later + 25 - 7);
  }
  SECTION("a file line that does not parse is skipped") {
    std::ofstream(dir.file("feeders"), std::ios::app) << "garbage\n";
    Feeders again(dir.file("feeders"), kOptions, later);
    CHECK(again.awaited() == 2);
  }
}
