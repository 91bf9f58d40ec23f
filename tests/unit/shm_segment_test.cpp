#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include <catch2/catch.hpp>

#include "support/catch_result.hpp"

#include "ring/ring_errc.hpp"
#include "ring/shm_segment.hpp"
#include "support/temp_names.hpp"

using monitor::ring::Geometry;
using monitor::ring::RingErrc;
using monitor::ring::ShmSegment;

namespace {
Geometry small_geometry() { return Geometry{4, 1, 64, 64}; }

// A shm object of 4 KiB that no libmonitor made, every byte `fill`.
void make_foreign_object(const std::string& name, unsigned char fill) {
  const int fd = shm_open(name.c_str(), O_RDWR | O_CREAT, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 4096) == 0);
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(p != MAP_FAILED);
  std::memset(p, fill, 4096);
  munmap(p, 4096);
  close(fd);
}
}  // namespace

TEST_CASE("the first side creates the segment and the second attaches to it", "[shm]") {
  monitor::test::TempRing ring("create");
  auto first = ShmSegment::open_or_create(ring.name(), small_geometry());
  REQUIRE(first);
  CHECK(first->created());
  auto second = ShmSegment::open_or_create(ring.name(), Geometry{});  // geometry of the creator wins
  REQUIRE(second);
  CHECK_FALSE(second->created());
  CHECK(second->header().slots_per_lane == 64);
  CHECK(second->header().lane_count == 4);
  CHECK(second->size() == first->size());
}

TEST_CASE("a segment of another version is refused", "[shm][failure]") {
  monitor::test::TempRing ring("version");
  {
    auto created = ShmSegment::open_or_create(ring.name(), small_geometry());
    REQUIRE(created);
    created->header().version = monitor::ring::kRingVersion + 1;
  }
  auto attached = ShmSegment::open_or_create(ring.name(), small_geometry());
  REQUIRE_FALSE(attached);
  CHECK(attached.error() == RingErrc::kVersionMismatch);
}

TEST_CASE("a segment with inconsistent sizes is refused", "[shm][failure]") {
  monitor::test::TempRing ring("geometry");
  {
    auto created = ShmSegment::open_or_create(ring.name(), small_geometry());
    REQUIRE(created);
    created->header().name_capacity = 1u << 30;  // points far past the object's end
  }
  auto attached = ShmSegment::open_or_create(ring.name(), small_geometry());
  REQUIRE_FALSE(attached);
  CHECK(attached.error() == RingErrc::kBadGeometry);
}

TEST_CASE("a shm object that is not a ring is refused", "[shm][failure]") {
  monitor::test::TempRing ring("junk");
  make_foreign_object(ring.name(), 0x5A);
  auto attached = ShmSegment::open_or_create(ring.name(), small_geometry());
  REQUIRE_FALSE(attached);
  CHECK(attached.error() == RingErrc::kBadMagic);
}

TEST_CASE("a segment whose creator never finished it times out as not ready", "[shm][failure]") {
  monitor::test::TempRing ring("unfinished");
  make_foreign_object(ring.name(), 0);  // sized, but its magic is still 0
  auto attached = ShmSegment::open_or_create(ring.name(), small_geometry(), 5);
  REQUIRE_FALSE(attached);
  CHECK(attached.error() == RingErrc::kNotReady);
}

TEST_CASE("a segment larger than /dev/shm fails with ENOSPC instead of crashing later", "[shm][failure]") {
  monitor::test::TempRing ring("huge");
  // 65536 lanes x 1 Mi slots x 64 B = 4 PiB: beyond any tmpfs.
  auto created = ShmSegment::open_or_create(ring.name(), Geometry{65536, 8, 1u << 20, 64});
  REQUIRE_FALSE(created);
  CHECK((created.error().value() == ENOSPC || created.error().value() == EFBIG ||
         created.error().value() == ENOMEM));
}

TEST_CASE("bad ring names are rejected", "[shm][failure]") {
  CHECK_FALSE(ShmSegment::open_or_create("no-slash", small_geometry()));
  CHECK_FALSE(ShmSegment::open_or_create("/a/b", small_geometry()));
  CHECK_FALSE(ShmSegment::open_or_create("/", small_geometry()));
}
