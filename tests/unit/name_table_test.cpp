#include <catch2/catch.hpp>

#include "support/catch_result.hpp"

#include "monitor/monitor.h"
#include "ring/name_table.hpp"
#include "ring/shm_segment.hpp"
#include "support/temp_names.hpp"

using namespace monitor::ring;

TEST_CASE("interning a pair twice gives one id that resolves to its names", "[names]") {
  monitor::test::TempRing ring("names");
  auto seg = ShmSegment::open_or_create(ring.name(), Geometry{2, 1, 64, 64});
  REQUIRE(seg);
  NameTable names(*seg);
  const InternResult a = names.intern("Shop.Api", "Orders.Placed");
  const InternResult b = names.intern("Shop.Api", "Orders.Placed");
  const InternResult c = names.intern("Shop.Api", "Orders.Cancelled");
  REQUIRE(a.id != 0);
  CHECK(a.id == b.id);
  CHECK(c.id != a.id);
  CHECK(names.find("Shop.Api", "Orders.Placed") == a.id);
  CHECK(names.find("Shop.Api", "Orders.Unknown") == 0);
  std::string_view service, attr;
  REQUIRE(names.resolve(c.id, service, attr));
  CHECK(service == "Shop.Api");
  CHECK(attr == "Orders.Cancelled");
}

TEST_CASE("ids out of range or never published do not resolve", "[names][failure]") {
  monitor::test::TempRing ring("names-bad");
  auto seg = ShmSegment::open_or_create(ring.name(), Geometry{2, 1, 64, 64});
  REQUIRE(seg);
  NameTable names(*seg);
  std::string_view service, attr;
  CHECK_FALSE(names.resolve(0, service, attr));
  CHECK_FALSE(names.resolve(65, service, attr));
  CHECK_FALSE(names.resolve(3, service, attr));  // in range, empty
  // A claimed entry whose writer died before publishing stays unresolvable and
  // does not stop later inserts.
  atomic_field(seg->names()[0].state).store(kNameClaimed | (12345ull << 8));
  CHECK_FALSE(names.resolve(1, service, attr));
  for (int i = 0; i < 20; ++i) CHECK(names.intern("Shop.Api", "Attr.N" + std::to_string(i)).id != 0);
}

TEST_CASE("a full name table refuses new pairs and counts them", "[names][failure]") {
  monitor::test::TempRing ring("names-full");
  auto seg = ShmSegment::open_or_create(ring.name(), Geometry{2, 1, 64, 64});
  REQUIRE(seg);
  NameTable names(*seg);
  int accepted = 0;
  for (int i = 0; i < 64; ++i) accepted += names.intern("Shop.Api", "Attr.N" + std::to_string(i)).id != 0;
  CHECK(accepted == 64);
  const InternResult overflow = names.intern("Shop.Api", "Attr.Overflow");
  CHECK(overflow.id == 0);
  CHECK(overflow.error == MONITOR_ERR_NAMES_FULL);
  CHECK(seg->header().names_full_drops == 1);
  CHECK(names.intern("Shop.Api", "Attr.N5").id != 0);  // known pairs still resolve
}
