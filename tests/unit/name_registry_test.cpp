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
