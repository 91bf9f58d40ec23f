#include <cstring>
#include <string>
#include <catch2/catch.hpp>

#include "support/catch_result.hpp"

#include "monitor/monitor.h"
#include "common/hash.hpp"
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

TEST_CASE("hash_bytes stays the function rings were written with", "[names][property]") {
  // Writers and agents of different builds share a ring's name table, keyed
  // by this hash: a faster implementation must give the same values. This is
  // the original, byte by byte for the tail.
  const auto reference = [](const char* p, size_t n, uint64_t seed) {
    constexpr uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL;
    uint64_t h = seed ^ monitor::mix64(n ^ k0, k1);
    for (; n >= 8; p += 8, n -= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      h = monitor::mix64(h ^ w, k1);
    }
    if (n > 0) {
      uint64_t w = 0;
      for (size_t i = 0; i < n; ++i) w |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
      h = monitor::mix64(h ^ w ^ (uint64_t{n} << 56), k0);
    }
    return h;
  };
  std::string bytes(80, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 37 + 11);
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n = 0; n + offset <= bytes.size(); ++n) {
      INFO("offset " << offset << ", length " << n);
      REQUIRE(monitor::hash_bytes(bytes.data() + offset, n, 42) == reference(bytes.data() + offset, n, 42));
    }
  }
}
