// The agent's name registry: dense ids, and a bound on what input can make it hold.
#include <string>

#include <catch2/catch.hpp>

#include "agent/name_registry.hpp"

using monitor::agent::NameRegistry;

TEST_CASE("issue 7: the agent's name registry holds at most max_names names and counts what it refuses",
          "[agent][issue7][failure]") {
  NameRegistry names(64);
  for (int i = 0; i < 64; ++i) CHECK(names.intern("Shop.Api", "Attr.N" + std::to_string(i)) == static_cast<uint32_t>(i + 1));
  CHECK(names.intern("Shop.Api", "Attr.N64") == 0);
  CHECK(names.intern("Shop.Api", "Attr.N65") == 0);
  CHECK(names.refused() == 2);
  CHECK(names.size() == 64);
  CHECK(names.intern("Shop.Api", "Attr.N7") == 8);  // known names still resolve
  CHECK(names.service_of_names().size() == 65);     // [0] unused
}

TEST_CASE("issue 23: names first seen in lines have a budget of their own, so a flood of them leaves the SDK's room",
          "[agent][issue23][failure]") {
  NameRegistry names(100, 40);
  // A statsd client sending a new name per line: 40 taken, the rest refused.
  for (int i = 0; i < 1000; ++i) {
    const uint32_t id = names.intern("Statsd.Flood", "Name.N" + std::to_string(i), monitor::agent::NameSource::kLines);
    CHECK((id != 0) == (i < 40));
  }
  CHECK(names.refused() == 960);
  // The SDK's names (the ring's) still have the other 60.
  for (int i = 0; i < 60; ++i) CHECK(names.intern("Shop.Api", "Attr.N" + std::to_string(i)) != 0);
  CHECK(names.intern("Shop.Api", "Attr.Over") == 0);
  // A line of a name the ring brought first is not a new name: it resolves.
  CHECK(names.intern("Shop.Api", "Attr.N3", monitor::agent::NameSource::kLines) != 0);
  // By default, lines get half.
  CHECK(NameRegistry(64).max_line_names() == 32);
}
