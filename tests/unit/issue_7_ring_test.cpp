// Issue 7, items 1 and 8: the ring is a trust boundary, and the SDK's
// contracts hold. Each case failed on the code before the fix (see the note of
// the session that added it).
#include <signal.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "support/catch_result.hpp"

#include "monitor/monitor.hpp"
#include "ring/name_table.hpp"
#include "ring/ring_errc.hpp"
#include "ring/ring_reader.hpp"
#include "ring/ring_writer.hpp"
#include "ring/shm_segment.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace monitor::ring;
using monitor::test::ChildProcess;
using monitor::test::TempRing;

namespace {

int run_in_child(const std::function<int()>& body, std::chrono::seconds limit = std::chrono::seconds(30)) {
  auto child = ChildProcess::fork_run(body);
  const auto rc = child.wait_for(limit);
  return rc ? *rc : -1;
}

ShmSegment create(const TempRing& ring, Geometry g = Geometry{8, 2, 256, 256}) {
  auto s = ShmSegment::open_or_create(ring.name(), g);
  REQUIRE(s);
  return std::move(*s);
}

// Everything a hostile process of the ring's group can reach in the header.
void scribble_header(SegmentHeader& h, std::mt19937_64& rng) {
  const uint64_t garbage = rng();
  switch (rng() % 8) {
    case 0: h.lane_count = static_cast<uint32_t>(garbage); break;
    case 1: h.shared_lane_count = static_cast<uint32_t>(garbage); break;
    case 2: h.slots_per_lane = static_cast<uint32_t>(garbage); break;
    case 3: h.name_capacity = static_cast<uint32_t>(garbage); break;
    case 4: h.lanes_offset = garbage; break;
    case 5: h.names_offset = ~uint64_t{0} - (garbage & 0xFFFF); break;
    case 6: h.lane_size = 0; break;
    default: h.segment_size = garbage; break;
  }
}

void scribble_lanes(const ShmSegment& seg, std::mt19937_64& rng) {
  const MappedGeometry& g = seg.geometry();
  Lane& lane = seg.lane(static_cast<uint32_t>(rng() % g.lane_count));
  switch (rng() % 4) {
    case 0: atomic_field(lane.head).store(rng(), std::memory_order_relaxed); break;
    case 1: atomic_field(lane.tail).store(rng(), std::memory_order_relaxed); break;
    case 2: atomic_field(lane.owner).store(rng(), std::memory_order_relaxed); break;
    default: {
      NameEntry& e = seg.names()[rng() % g.name_capacity];
      e.service_len = static_cast<uint8_t>(rng());
      e.attr_len = 0xFF;
      break;
    }
  }
}

}  // namespace

TEST_CASE("issue 7: a header whose offsets wrap past 2^64 is refused, not mapped", "[ring][issue7][failure]") {
  TempRing ring("wrap");
  {
    ShmSegment seg = create(ring);
    // names_offset + capacity * 160 wraps to a small number that fits the segment.
    seg.header().names_offset = ~uint64_t{0} - 100;
  }
  auto reopened = ShmSegment::open_or_create(ring.name(), Geometry{8, 2, 256, 256});
  REQUIRE_FALSE(reopened);
  CHECK(reopened.error() == RingErrc::kBadGeometry);

  SegmentHeader h{};
  h.version = kRingVersion;
  h.header_size = sizeof(SegmentHeader);
  h.slot_size = sizeof(Slot);
  h.name_entry_size = sizeof(NameEntry);
  h.lane_count = 4;
  h.shared_lane_count = 1;
  h.slots_per_lane = 64;
  h.lane_size = sizeof(Lane) + 64 * sizeof(Slot);
  h.name_capacity = 64;
  h.lanes_offset = ~uint64_t{0} - 4096;  // lanes_end wraps below names_offset
  h.names_offset = 1024;
  h.segment_size = 1 << 20;
  CHECK(validate_header(h, 1 << 20).error() == RingErrc::kBadGeometry);
  h.lanes_offset = sizeof(SegmentHeader);
  h.names_offset = sizeof(SegmentHeader) + 4 * h.lane_size;
  CHECK(validate_header(h, 1 << 20).has_value());
  CHECK(validate_header(h, 1000).error() == RingErrc::kBadGeometry);  // larger than the object
}

TEST_CASE("issue 7: writers and the reader survive a process rewriting the header and lane words",
          "[ring][issue7][failure][crash]") {
  TempRing ring("tamper");
  ShmSegment seg = create(ring, Geometry{});
  auto reader = RingReader::open(create(ring, Geometry{}));
  REQUIRE(reader);
  NameTable names(reader->segment());

  // Two writer processes report through the real SDK until the stop pipe closes.
  int stop[2];
  int bound[2];
  REQUIRE(pipe(stop) == 0);
  REQUIRE(pipe(bound) == 0);
  REQUIRE(fcntl(stop[0], F_SETFL, O_NONBLOCK) == 0);
  std::vector<ChildProcess> writers;
  for (int w = 0; w < 2; ++w) {
    writers.push_back(ChildProcess::fork_run([&ring, &stop, &bound, w] {
      close(stop[1]);
      if (monitor_init(ring.name().c_str()) != MONITOR_OK) return 10;
      const monitor::Attr attr("Shop.Api", "Orders.Placed");
      (void)attr.report(w, 1, monitor::kSum);
      (void)!write(bound[1], "b", 1);  // bound before the tampering starts
      for (int64_t i = 0;; ++i) {
        (void)attr.report(w, 1, monitor::kSum);
        (void)monitor::report("Shop.Api", "Orders.Failed", w, 1, monitor::kSum);
        if (i % 1024 == 0) {
          char byte = 0;
          if (read(stop[0], &byte, 1) == 0) return 0;  // EOF: the test is done
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      }
    }));
  }
  close(stop[0]);
  for (int w = 0; w < 2; ++w) {
    char byte = 0;
    REQUIRE(read(bound[0], &byte, 1) == 1);
  }
  close(bound[0]);
  close(bound[1]);
  // A hostile process of the ring's group rewrites header fields and lane
  // words for a second while the reader keeps draining and sweeping.
  auto tamperer = ChildProcess::fork_run([&ring] {
    auto s = ShmSegment::open_or_create(ring.name(), Geometry{});
    if (!s) return 1;
    std::mt19937_64 rng(7);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < until) {
      scribble_header(s->header(), rng);
      scribble_lanes(*s, rng);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    return 0;
  });
  uint64_t drained = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < until) {
    drained += reader->drain([&](const Slot& slot) {
      std::string_view service, attr;
      (void)names.resolve(slot.name_id(), service, attr);  // bounded whatever the entry says
    });
    (void)reader->sweep(0);
  }
  CHECK(tamperer.wait_for(std::chrono::seconds(10)) == 0);
  CHECK_FALSE(reader->segment().header_intact());  // the tampering shows
  // The writers are still alive (a crash would have ended them): stop them now.
  for (auto& w : writers) {
    REQUIRE(kill(w.pid(), 0) == 0);
    int status = 0;
    const pid_t ended = waitpid(w.pid(), &status, WNOHANG);
    INFO("writer ended: " << (ended == 0 ? "no" : WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exit")
                          << " status " << status);
    REQUIRE(ended == 0);
  }
  close(stop[1]);
  for (auto& w : writers) CHECK(w.wait_for(std::chrono::seconds(10)) == 0);
  CHECK(drained > 0);
}

TEST_CASE("issue 7: a lane held by a live writer in another PID namespace is never freed", "[ring][issue7]") {
  if (geteuid() != 0) {
    WARN("needs root for unshare --pid; skipped");
    return;
  }
  TempRing ring("pidns");
  auto reader = RingReader::open(create(ring, Geometry{4, 1, 64, 64}));
  REQUIRE(reader);
  // The child becomes pid 1 of a new namespace: its owner word names a pid
  // that, seen from here, is this test's own init or some unrelated process.
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  int stop[2];
  REQUIRE(pipe(stop) == 0);
  auto child = ChildProcess::fork_run([&] {
    if (unshare(CLONE_NEWPID) != 0) return 3;
    const pid_t inner = fork();
    if (inner == 0) {
      auto s = ShmSegment::open_or_create(ring.name(), Geometry{4, 1, 64, 64});
      if (!s) _exit(5);
      RingWriter w(*s);
      WriterLane lane;
      if (!w.acquire(lane, (uint64_t{1} << 32) | 1)) _exit(4);  // pid 1, tid 1: as getpid() says in there
      (void)!write(ready[1], "x", 1);
      pause();
      _exit(0);
    }
    char byte = 0;
    (void)!read(stop[0], &byte, 1);
    kill(inner, SIGKILL);  // the writer dies, as a container's process would
    int status = 0;
    waitpid(inner, &status, 0);
    return 0;
  });
  char byte = 0;
  REQUIRE(read(ready[0], &byte, 1) == 1);
  for (int i = 0; i < 3; ++i) CHECK(reader->sweep(0).lanes_reclaimed == 0);
  REQUIRE(write(stop[1], "x", 1) == 1);
  REQUIRE(child.wait_for(std::chrono::seconds(5)) == 0);
  REQUIRE(monitor::test::wait_until([&] { return reader->sweep(0).lanes_reclaimed == 1; },
                                    std::chrono::seconds(5)));
  close(stop[0]);
  close(stop[1]);
  close(ready[0]);
  close(ready[1]);
}

TEST_CASE("issue 7: a handle that was never issued is refused", "[sdk][issue7][failure]") {
  TempRing ring("unissued");
  REQUIRE(run_in_child([&] {
            if (monitor_init(ring.name().c_str()) != MONITOR_OK) return 10;
            const int64_t issued = monitor_intern("Shop.Api", "Orders.Placed");
            if (issued <= 0) return 11;
            int failures = 0;
            failures += monitor_handle_report(static_cast<monitor_handle_t>(issued), 1, 1, 1) != MONITOR_OK;
            failures += monitor_handle_report(static_cast<monitor_handle_t>(issued + 1), 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_handle_report(100, 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_handle_report(0, 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_handle_report(0xFFFFFFFFu, 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            return failures;
          }) == 0);
}

TEST_CASE("issue 7: a static Attr whose first use found no usable ring works once there is one",
          "[sdk][issue7][failure]") {
  TempRing ring("late-ring");
  // Something that is not a ring holds the name at first (say, a ring of
  // another libmonitor that its agent is about to recreate).
  const int fd = shm_open(ring.name().c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 4096) == 0);
  const uint64_t junk = 0x4B4E554A4B4E554AULL;
  REQUIRE(pwrite(fd, &junk, sizeof junk, 0) == static_cast<ssize_t>(sizeof junk));
  close(fd);
  int go[2];
  REQUIRE(pipe(go) == 0);
  auto child = ChildProcess::fork_run([&] {
    setenv(MONITOR_RING_ENV, ring.name().c_str(), 1);
    static const monitor::Attr attr("Shop.Api", "Orders.Placed");
    if (attr.report(1, 1, monitor::kSum) == monitor::Errc::kOk) return 20;  // no ring yet: must fail
    char byte = 0;
    if (read(go[0], &byte, 1) != 1) return 21;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (attr.report(1, 7, monitor::kSum) == monitor::Errc::kOk) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return 22;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the child's first call fail
  REQUIRE(ShmSegment::unlink(ring.name()).value() == 0);
  ShmSegment seg = create(ring, Geometry{});
  REQUIRE(write(go[1], "x", 1) == 1);
  CHECK(child.wait_for(std::chrono::seconds(20)) == 0);
  auto reader = RingReader::open(std::move(seg));
  REQUIRE(reader);
  int64_t total = 0;
  reader->drain([&](const Slot& s) { total += s.value; });
  CHECK(total == 7);
  close(go[0]);
  close(go[1]);
}

TEST_CASE("issue 7: a writer whose ring was removed and made anew moves to the new ring",
          "[sdk][issue7][failure]") {
  TempRing ring("rebind");
  int step[2];
  REQUIRE(pipe(step) == 0);
  // Before the fork: a child that reads the pipe before the parent made it
  // non-blocking would wait there instead of reporting into the new ring.
  REQUIRE(fcntl(step[0], F_SETFL, O_NONBLOCK) == 0);
  // The first ring exists before the child binds: a child that found it half
  // made (its creator still allocating, under load for more than the SDK's
  // 20 ms wait) would fail monitor_init and prove nothing about rebinding.
  auto first = RingReader::open(create(ring, Geometry{}));
  REQUIRE(first);
  auto child = ChildProcess::fork_run([&] {
    if (monitor_init(ring.name().c_str()) != MONITOR_OK) return 10;
    const monitor::Attr attr("Shop.Api", "Orders.Placed");
    // Report until the parent says it has seen a report in the new ring.
    for (int64_t i = 0;; ++i) {
      (void)attr.report(1, 1, monitor::kSum);
      (void)monitor::report("Shop.Api", "Orders.ByName", 1, 1, monitor::kSum);
      char byte = 0;
      if (read(step[0], &byte, 1) == 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    monitor_stats_t stats{};
    monitor_get_stats(&stats);
    return stats.rebinds >= 1 ? 0 : 30;
  });
  // The child binds to the first ring; then it is removed and a new one made,
  // as an agent with --recreate-ring does.
  REQUIRE(monitor::test::wait_until([&] { return first->drain([](const Slot&) {}) > 0; },
                                    std::chrono::seconds(5)));
  REQUIRE(ShmSegment::unlink(ring.name()).value() == 0);
  auto second = RingReader::open(create(ring, Geometry{}));
  REQUIRE(second);
  NameTable names(second->segment());
  bool by_handle = false;
  bool by_name = false;
  REQUIRE(monitor::test::wait_until(
      [&] {
        second->drain([&](const Slot& s) {
          std::string_view service, attr;
          REQUIRE(names.resolve(s.name_id(), service, attr));
          by_handle |= attr == "Orders.Placed";
          by_name |= attr == "Orders.ByName";
        });
        return by_handle && by_name;
      },
      std::chrono::seconds(10)));
  CHECK(atomic_field(second->segment().header().writer_rebinds).load() == 1);
  REQUIRE(write(step[1], "x", 1) == 1);
  CHECK(child.wait_for(std::chrono::seconds(10)) == 0);
  close(step[0]);
  close(step[1]);
}

TEST_CASE("issue 7: monitor_at refuses a negative timestamp instead of reading it as TSC ticks",
          "[sdk][issue7][failure]") {
  TempRing ring("negative-time");
  REQUIRE(run_in_child([&] {
            if (monitor_init(ring.name().c_str()) != MONITOR_OK) return 10;
            int failures = 0;
            failures += monitor_at("Shop.Api", "Orders.Placed", 1, 1, 1, -1) != MONITOR_ERR_BAD_TIME;
            failures += monitor_at("Shop.Api", "Orders.Placed", 1, 1, 1, INT64_MIN) != MONITOR_ERR_BAD_TIME;
            failures += monitor_at("Shop.Api", "Orders.Placed", 1, 1, 1, 0) != MONITOR_OK;
            monitor_stats_t stats{};
            monitor_get_stats(&stats);
            failures += stats.bad_time != 2;
            return failures;
          }) == 0);
  auto reader = RingReader::open(create(ring, Geometry{}));
  REQUIRE(reader);
  size_t slots = 0;
  reader->drain([&](const Slot& s) {
    ++slots;
    CHECK_FALSE(s.time_is_tsc());
  });
  CHECK(slots == 1);
}
