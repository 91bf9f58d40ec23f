#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support/catch_result.hpp"

#include "common/clock.hpp"
#include "common/process_info.hpp"
#include "ring/ring_reader.hpp"
#include "ring/ring_writer.hpp"
#include "ring/shm_segment.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace monitor::ring;
using monitor::test::ChildProcess;
using monitor::test::TempRing;

namespace {

uint64_t owner_id(uint32_t tid) { return (static_cast<uint64_t>(getpid()) << 32) | tid; }

ShmSegment make(const TempRing& ring, Geometry g = Geometry{4, 1, 64, 64}) {
  auto s = ShmSegment::open_or_create(ring.name(), g);
  REQUIRE(s);
  return std::move(*s);
}

RingReader reader_for(const TempRing& ring) {
  auto seg = ShmSegment::open_or_create(ring.name(), Geometry{});
  REQUIRE(seg);
  auto r = RingReader::open(std::move(*seg));
  REQUIRE(r);
  return std::move(*r);
}

ReportFields report(int64_t value, int64_t server = 1) {
  return ReportFields{static_cast<uint64_t>(value), value, server, 1, 1};
}

std::vector<int64_t> drain_values(RingReader& reader) {
  std::vector<int64_t> values;
  while (reader.drain([&](const Slot& s) { values.push_back(s.value); }) != 0) {
  }
  return values;
}

// A small ring with one writer holding a lane, as most single-lane cases need.
struct OneWriter {
  explicit OneWriter(const std::string& tag) : ring(tag), seg(make(ring)), writer(seg) {
    REQUIRE(writer.acquire(lane, owner_id(1)));
  }
  void push_values(int from, int to) {
    for (int i = from; i < to; ++i) REQUIRE(RingWriter::push(lane, report(i)) == PushResult::kOk);
  }
  TempRing ring;
  ShmSegment seg;
  RingWriter writer;
  WriterLane lane;
};

}  // namespace

TEST_CASE("reports pushed on one lane are drained in order", "[ring]") {
  OneWriter w("order");
  auto& [ring, seg, writer, lane] = w;
  w.push_values(0, 50);
  RingReader reader = reader_for(ring);
  const auto values = drain_values(reader);
  REQUIRE(values.size() == 50);
  for (int i = 0; i < 50; ++i) CHECK(values[static_cast<size_t>(i)] == i);
}

TEST_CASE("a lane wraps around many times without loss", "[ring]") {
  OneWriter w("wrap");
  auto& [ring, seg, writer, lane] = w;
  RingReader reader = reader_for(ring);
  int64_t next_expected = 0, next_value = 0;
  for (int round = 0; round < 100; ++round) {  // 64-slot lane, 40 per round: wraps ~60 times
    for (int i = 0; i < 40; ++i) REQUIRE(RingWriter::push(lane, report(next_value++)) == PushResult::kOk);
    for (int64_t v : drain_values(reader)) REQUIRE(v == next_expected++);
  }
  CHECK(next_expected == 4000);
}

TEST_CASE("a full lane drops the report and counts it", "[ring][failure]") {
  OneWriter w("full");
  auto& [ring, seg, writer, lane] = w;
  RingReader reader = reader_for(ring);
  w.push_values(0, 64);
  CHECK(RingWriter::push(lane, report(64)) == PushResult::kFull);
  CHECK(RingWriter::push(lane, report(65)) == PushResult::kFull);
  CHECK(lane.lane->dropped == 2);

  const SweepResult swept = reader.sweep(0);
  CHECK(swept.new_drops == 2);
  REQUIRE(swept.drops_by_writer.size() == 1);  // attributed to the writer process
  CHECK(swept.drops_by_writer[0].pid == getpid());
  CHECK(swept.drops_by_writer[0].drops == 2);
  CHECK(reader.sweep(0).new_drops == 0);  // counted once
  CHECK(drain_values(reader).size() == 64);
  // Room again once drained.
  CHECK(RingWriter::push(lane, report(66)) == PushResult::kOk);
}

TEST_CASE("threads beyond the exclusive lanes share the shared lanes", "[ring]") {
  TempRing ring("shared");
  ShmSegment seg = make(ring, Geometry{3, 1, 64, 64});  // 2 exclusive + 1 shared
  RingWriter writer(seg);
  WriterLane a, b, c;
  REQUIRE(writer.acquire(a, owner_id(1)));
  REQUIRE(writer.acquire(b, owner_id(2)));
  CHECK_FALSE(writer.acquire(c, owner_id(3)));
  CHECK(writer.push_shared(report(7), owner_id(3), 0) == PushResult::kOk);
  CHECK(writer.push_shared(report(8), owner_id(4), 0) == PushResult::kOk);
  RingReader reader = reader_for(ring);
  CHECK(drain_values(reader) == std::vector<int64_t>{7, 8});

  writer.release(a);
  WriterLane d;
  CHECK(writer.acquire(d, owner_id(5)));  // a released lane is reusable
}

TEST_CASE("writers in several processes and threads lose nothing", "[ring]") {
  TempRing ring("multi");
  ShmSegment seg = make(ring, Geometry{16, 2, 1024, 64});
  RingReader reader = reader_for(ring);
  constexpr int kProcesses = 3, kThreads = 2, kPerThread = 20000;

  std::vector<ChildProcess> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(ChildProcess::fork_run([&, p] {
      auto child_seg = ShmSegment::open_or_create(ring.name(), Geometry{});
      if (!child_seg) return 10;
      RingWriter w(*child_seg);
      std::vector<std::thread> threads;
      std::atomic<int> failures{0};
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
          WriterLane lane;
          if (!w.acquire(lane, (static_cast<uint64_t>(getpid()) << 32) | static_cast<uint32_t>(t + 1))) {
            ++failures;
            return;
          }
          for (int i = 0; i < kPerThread; ++i) {
            const int64_t server = p * 10 + t;
            while (RingWriter::push(lane, report(i, server)) != PushResult::kOk) std::this_thread::yield();
          }
          w.release(lane);
        });
      }
      for (auto& th : threads) th.join();
      return failures.load() == 0 ? 0 : 11;
    }));
  }
  std::map<int64_t, std::vector<int64_t>> per_writer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  size_t total = 0;
  while (total < size_t{kProcesses} * kThreads * kPerThread && std::chrono::steady_clock::now() < deadline) {
    total += reader.drain([&](const Slot& s) { per_writer[s.server_id].push_back(s.value); });
  }
  for (auto& c : children) CHECK(c.wait_for(std::chrono::seconds(10)) == 0);
  REQUIRE(total == size_t{kProcesses} * kThreads * kPerThread);
  REQUIRE(per_writer.size() == size_t{kProcesses} * kThreads);
  for (const auto& [server, values] : per_writer) {
    REQUIRE(values.size() == size_t{kPerThread});
    for (int i = 0; i < kPerThread; ++i) REQUIRE(values[static_cast<size_t>(i)] == i);  // per-writer order kept
  }
}

TEST_CASE("a writer killed mid-write does not wedge the reader", "[ring][failure][crash]") {
  TempRing ring("killed");
  ShmSegment seg = make(ring);
  RingReader reader = reader_for(ring);

  SECTION("killed between claiming a slot and publishing it") {
    // The child publishes 10 reports, then claims slot 10 exactly as push()
    // does (seq = busy) and stops there, as if killed inside push().
    auto child = ChildProcess::fork_run([&] {
      auto s = ShmSegment::open_or_create(ring.name(), Geometry{});
      RingWriter w(*s);
      WriterLane lane;
      if (!w.acquire(lane, (static_cast<uint64_t>(getpid()) << 32) | 1)) return 1;
      for (int i = 0; i < 10; ++i) RingWriter::push(lane, report(i));
      Slot& slot = lane.slots[lane.head & lane.mask];
      atomic_field(slot.seq).store(seq_busy(lane.head), std::memory_order_release);
      slot.value = 999;  // half-written
      raise(SIGSTOP);
      return 0;
    });
    REQUIRE(monitor::test::wait_until([&] {
      int status = 0;
      return waitpid(child.pid(), &status, WNOHANG | WUNTRACED) == child.pid() && WIFSTOPPED(status);
    }, std::chrono::seconds(5)));
    CHECK(drain_values(reader).size() == 10);
    CHECK(reader.sweep(0).abandoned_slots == 0);  // owner alive: its slot may still be published

    child.signal(SIGKILL);
    REQUIRE(child.wait_for(std::chrono::seconds(5)) == 128 + SIGKILL);

    const SweepResult swept = reader.sweep(0);
    CHECK(swept.abandoned_slots == 1);
    CHECK(swept.lanes_reclaimed == 1);
    CHECK(reader.abandoned_total() == 1);
  }

  SECTION("killed at a random moment while writing flat out") {
    auto child = ChildProcess::fork_run([&] {
      auto s = ShmSegment::open_or_create(ring.name(), Geometry{});
      RingWriter w(*s);
      WriterLane lane;
      if (!w.acquire(lane, (static_cast<uint64_t>(getpid()) << 32) | 1)) return 1;
      for (int64_t i = 0;; ++i) {
        while (RingWriter::push(lane, report(i)) != PushResult::kOk) {
        }
      }
    });
    // The reader keeps draining while the writer is killed, so the writer is
    // killed while writing (not spinning on a full lane), at a random moment.
    std::atomic<bool> draining{true};
    std::atomic<size_t> before_kill{0};
    std::thread drainer([&] {
      while (draining) before_kill += reader.drain([](const Slot&) {});
    });
    std::mt19937 rng(std::random_device{}());
    std::this_thread::sleep_for(std::chrono::microseconds(20'000 + rng() % 20'000));
    child.signal(SIGKILL);
    REQUIRE(child.wait_for(std::chrono::seconds(5)) == 128 + SIGKILL);
    draining = false;
    drainer.join();
    drain_values(reader);
    const SweepResult swept = reader.sweep(0);
    CHECK(swept.lanes_reclaimed == 1);
    CHECK(swept.abandoned_slots <= 1);
    CHECK(before_kill > 0);
  }

  // Either way the lane is free again and a new writer's reports get through.
  RingWriter w(seg);
  WriterLane lane;
  uint32_t acquired = 0;
  while (acquired < 3 && w.acquire(lane, owner_id(100 + acquired))) {
    REQUIRE(RingWriter::push(lane, report(42)) == PushResult::kOk);
    ++acquired;
  }
  CHECK(acquired == 3);  // all 3 exclusive lanes usable, including the dead writer's
  const auto values = drain_values(reader);
  CHECK(values == std::vector<int64_t>{42, 42, 42});
}

TEST_CASE("a new reader resumes at the tails the last one left", "[ring]") {
  OneWriter w("resume");
  auto& [ring, seg, writer, lane] = w;
  w.push_values(0, 5);
  {
    RingReader first = reader_for(ring);
    CHECK(drain_values(first).size() == 5);
  }
  w.push_values(5, 8);
  RingReader second = reader_for(ring);
  CHECK(drain_values(second) == std::vector<int64_t>{5, 6, 7});
}

