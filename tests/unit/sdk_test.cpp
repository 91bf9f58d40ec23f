// SDK tests run each case in a forked child: the SDK binds a process to one
// ring for life, so the test process itself never calls it.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support/catch_result.hpp"

#include "common/clock.hpp"
#include "monitor/monitor.hpp"
#include "ring/name_table.hpp"
#include "ring/ring_reader.hpp"
#include "ring/shm_segment.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace monitor::ring;
using monitor::test::ChildProcess;
using monitor::test::TempRing;

namespace {

int run_in_child(const std::function<int()>& body) {
  auto child = ChildProcess::fork_run(body);
  const auto rc = child.wait_for(std::chrono::seconds(20));
  return rc ? *rc : -1;
}

struct Drained {
  std::string service, attr;
  int64_t server_id, value;
  uint32_t ops;
  bool time_is_tsc;
  uint64_t time;
};

std::vector<Drained> drain_all(const TempRing& ring) {
  auto seg = ShmSegment::open_or_create(ring.name(), Geometry{});
  REQUIRE(seg);
  auto reader = RingReader::open(std::move(*seg));
  REQUIRE(reader);
  NameTable names(reader->segment());
  std::vector<Drained> out;
  reader->drain([&](const Slot& s) {
    std::string_view service, attr;
    REQUIRE(names.resolve(s.name_id(), service, attr));
    out.push_back({std::string(service), std::string(attr), s.server_id, s.value, s.ops(), s.time_is_tsc(),
                   s.time_value()});
  });
  return out;
}

}  // namespace

TEST_CASE("with no agent running the SDK creates the ring and the report waits there", "[sdk]") {
  TempRing ring("sdk-create");
  REQUIRE(run_in_child([&] {
            setenv(MONITOR_RING_ENV, ring.name().c_str(), 1);
            return monitor_report("Shop.Api", "Orders.Placed", 7, 5, MONITOR_OP_SUM | MONITOR_OP_MAX) == MONITOR_OK
                       ? 0
                       : 1;
          }) == 0);
  const auto drained = drain_all(ring);
  REQUIRE(drained.size() == 1);
  CHECK(drained[0].service == "Shop.Api");
  CHECK(drained[0].attr == "Orders.Placed");
  CHECK(drained[0].server_id == 7);
  CHECK(drained[0].value == 5);
  CHECK(drained[0].ops == (MONITOR_OP_SUM | MONITOR_OP_MAX));
}

TEST_CASE("monitor_at keeps the caller's timestamp", "[sdk]") {
  TempRing ring("sdk-at");
  REQUIRE(run_in_child([&] {
            return monitor_init(ring.name().c_str()) == MONITOR_OK &&
                           monitor_at("Shop.Api", "Orders.Placed", 1, 2, MONITOR_OP_SUM, 1'700'000'000'123'456'789) ==
                               MONITOR_OK
                       ? 0
                       : 1;
          }) == 0);
  const auto drained = drain_all(ring);
  REQUIRE(drained.size() == 1);
  CHECK_FALSE(drained[0].time_is_tsc);
  CHECK(drained[0].time == 1'700'000'000'123'456'789ULL);
}

TEST_CASE("bad calls return an error code and are counted and write nothing", "[sdk][failure]") {
  TempRing ring("sdk-bad");
  REQUIRE(run_in_child([&] {
            if (monitor_init(ring.name().c_str()) != MONITOR_OK) return 1;
            int failures = 0;
            const std::string long_name = "Shop." + std::string(70, 'A');
            failures += monitor_report(nullptr, "Orders.Placed", 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_report("Shop.Api", nullptr, 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_report("shop.api", "Orders.Placed", 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_report("Shop", "Orders.Placed", 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_report("Shop.Api", "Orders.", 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_report("Shop.Api", "Orders Placed", 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_report(long_name.c_str(), "Orders.Placed", 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_report("Shop.Api", "Orders.Placed", 1, 1, 0) != MONITOR_ERR_BAD_OPS;
            failures += monitor_report("Shop.Api", "Orders.Placed", 1, 1, 256) != MONITOR_ERR_BAD_OPS;
            failures += monitor_report("Shop.Api", "Orders.Placed", 1, 1, -1) != MONITOR_ERR_BAD_OPS;
            failures += monitor_handle_report(0, 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_handle_report(1u << 30, 1, 1, 1) != MONITOR_ERR_BAD_NAME;
            failures += monitor_intern("Shop.Api", "bad") != MONITOR_ERR_BAD_NAME;
            monitor_stats_t stats;
            monitor_get_stats(&stats);
            failures += stats.bad_name != 10;
            failures += stats.bad_ops != 3;
            monitor_get_stats(nullptr);  // tolerated
            return failures;
          }) == 0);
  CHECK(drain_all(ring).empty());
}

TEST_CASE("an unusable ring name gives MONITOR_ERR_UNAVAILABLE and no crash", "[sdk][failure]") {
  REQUIRE(run_in_child([] {
            setenv(MONITOR_RING_ENV, "/no/such/dir", 1);
            int failures = 0;
            failures += monitor_report("Shop.Api", "Orders.Placed", 1, 1, 1) != MONITOR_ERR_UNAVAILABLE;
            failures += monitor_report("Shop.Api", "Orders.Placed", 1, 1, 1) != MONITOR_ERR_UNAVAILABLE;
            const monitor::Attr attr("Shop.Api", "Orders.Placed");
            failures += attr.error() != monitor::Errc::kOk;  // the handle is the process's own
            failures += attr.report(1, 1, monitor::kSum) != monitor::Errc::kUnavailable;
            monitor_stats_t stats;
            monitor_get_stats(&stats);
            failures += stats.unavailable < 3;
            return failures;
          }) == 0);
}

TEST_CASE("a ring the process may not write gives MONITOR_ERR_UNAVAILABLE", "[sdk][failure]") {
  TempRing ring("sdk-readonly");
  // Read-only for its owner; a child that is not root cannot open it for writing.
  const int fd = shm_open(ring.name().c_str(), O_RDWR | O_CREAT | O_EXCL, 0400);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 4096) == 0);
  close(fd);
  REQUIRE(run_in_child([&] {
            if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 100;  // become nobody
            setenv(MONITOR_RING_ENV, ring.name().c_str(), 1);
            int failures = monitor_report("Shop.Api", "Orders.Placed", 1, 1, 1) != MONITOR_ERR_UNAVAILABLE;
            monitor_stats_t stats;
            monitor_get_stats(&stats);
            return failures + (stats.unavailable != 1);
          }) == 0);
}

TEST_CASE("a ring of another version gives MONITOR_ERR_VERSION", "[sdk][failure]") {
  TempRing ring("sdk-version");
  {
    auto seg = ShmSegment::open_or_create(ring.name(), Geometry{4, 1, 64, 64});
    REQUIRE(seg);
    seg->header().version = kRingVersion + 7;
  }
  REQUIRE(run_in_child([&] {
            setenv(MONITOR_RING_ENV, ring.name().c_str(), 1);
            return monitor_report("Shop.Api", "Orders.Placed", 1, 1, 1) == MONITOR_ERR_VERSION ? 0 : 1;
          }) == 0);
}

TEST_CASE("a full lane returns MONITOR_ERR_RING_FULL and counts the drop", "[sdk][failure]") {
  TempRing ring("sdk-full");
  REQUIRE(ShmSegment::open_or_create(ring.name(), Geometry{4, 1, 64, 64}));
  REQUIRE(run_in_child([&] {
            if (monitor_init(ring.name().c_str()) != MONITOR_OK) return 100;
            const monitor::Attr attr("Shop.Api", "Orders.Placed");
            int ok = 0, full = 0;
            for (int i = 0; i < 100; ++i) {
              const monitor::Errc rc = attr.report(1, i, monitor::kSum);
              ok += rc == monitor::Errc::kOk;
              full += rc == monitor::Errc::kRingFull;
            }
            monitor_stats_t stats;
            monitor_get_stats(&stats);
            return ok == 64 && full == 36 && stats.ring_full == 36 ? 0 : 1;
          }) == 0);
  auto seg = ShmSegment::open_or_create(ring.name(), Geometry{});
  REQUIRE(seg);
  auto reader = RingReader::open(std::move(*seg));
  REQUIRE(reader);
  CHECK(reader->sweep(0).new_drops == 0);  // a new reader starts from the current count
  uint64_t dropped = 0;
  for (uint32_t i = 0; i < 4; ++i) dropped += reader->segment().lane(i).dropped;
  CHECK(dropped == 36);
}

TEST_CASE("threads that exit give their lanes back, and extra threads use shared lanes", "[sdk]") {
  TempRing ring("sdk-threads");
  REQUIRE(ShmSegment::open_or_create(ring.name(), Geometry{3, 1, 64, 64}));  // 2 exclusive + 1 shared
  REQUIRE(run_in_child([&] {
            if (monitor_init(ring.name().c_str()) != MONITOR_OK) return 100;
            int failures = 0;
            for (int t = 0; t < 6; ++t) {  // one after another: each reuses a freed lane
              std::thread([&, t] {
                failures += monitor_report("Shop.Api", "Orders.Placed", t, t, 1) != MONITOR_OK;
              }).join();
            }
            // Leaked lanes would not fail a report (the shared lane takes it),
            // so look: both exclusive lanes free again, the shared one unused.
            auto seg = ShmSegment::open_or_create(ring.name(), Geometry{3, 1, 64, 64});
            if (!seg) return 101;
            for (uint32_t lane = 0; lane < 2; ++lane) failures += atomic_field(seg->lane(lane).owner).load() != 0;
            failures += atomic_field(seg->lane(2).head).load() != 0;
            return failures;
          }) == 0);
  const auto drained = drain_all(ring);
  CHECK(drained.size() == 6);
}

TEST_CASE("a forked child writes to a lane of its own and not to its parent lane", "[sdk]") {
  TempRing ring("sdk-fork");
  REQUIRE(run_in_child([&] {
            if (monitor_init(ring.name().c_str()) != MONITOR_OK) return 100;
            if (monitor_report("Shop.Api", "Orders.Placed", 1, 1, 1) != MONITOR_OK) return 101;
            auto grandchild = ChildProcess::fork_run([] {
              return monitor_report("Shop.Api", "Orders.Placed", 2, 2, 1) == MONITOR_OK ? 0 : 1;
            });
            if (grandchild.wait_for(std::chrono::seconds(5)) != 0) return 102;
            return monitor_report("Shop.Api", "Orders.Placed", 1, 3, 1) == MONITOR_OK ? 0 : 103;
          }) == 0);
  auto drained = drain_all(ring);
  REQUIRE(drained.size() == 3);
  // Per-lane order: the parent's lane holds 1 then 3; the grandchild's holds 2.
  std::vector<int64_t> parent_values;
  for (const auto& d : drained) {
    if (d.server_id == 1) parent_values.push_back(d.value);
  }
  CHECK(parent_values == std::vector<int64_t>{1, 3});
}

TEST_CASE("names are checked at compile time", "[sdk]") {
  static_assert(monitor::is_valid_name("Shop.Api"));
  static_assert(monitor::is_valid_name("A.B2.C3d"));
  static_assert(!monitor::is_valid_name("Shop"));
  static_assert(!monitor::is_valid_name("shop.Api"));
  static_assert(!monitor::is_valid_name("Shop..Api"));
  static_assert(!monitor::is_valid_name("Shop.Api."));
  static_assert(!monitor::is_valid_name("Shop.api"));
  static_assert(!monitor::is_valid_name("Shop.Api_v2"));
  constexpr monitor::Name ok("Shop.Api");  // monitor::Name bad("shop"); would not compile
  CHECK(ok.valid());
  CHECK_FALSE(monitor::Name::checked("shop").valid());
}
