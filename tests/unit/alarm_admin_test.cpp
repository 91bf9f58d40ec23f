// Acknowledging alarms in the registry: the one compare-and-set loop that
// monitorctl and the dashboard share.
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "alarm/admin.hpp"
#include "alarm/records.hpp"
#include "common/registry/registry.hpp"
#include "support/temp_names.hpp"

using namespace monitor;

namespace {

void store_firing(registry::Registry& r, const std::string& rule, std::vector<int64_t> servers) {
  alarm::RuleAlarms state;
  state.evaluated = 100;
  for (const int64_t s : servers) {
    state.alarms[s].state = alarm::State::kFiring;
    state.alarms[s].fired_at = 99;
  }
  state.alarms[42].state = alarm::State::kPending;
  REQUIRE(r.commit({}, {{std::string(alarm::kAlarmsKind), rule, alarm::alarms_value(state)}}).value());
}

alarm::RuleAlarms read(registry::Registry& r, const std::string& rule) {
  return alarm::alarms_from_value(r.get(std::string(alarm::kAlarmsKind), rule).value()->value);
}

}  // namespace

TEST_CASE("acknowledging marks the firing alarms asked for, and says when there is nothing to do", "[alarms][admin]") {
  test::TempDir dir;
  auto r = registry::open_registry("file:" + dir.path()).value();
  using Status = alarm::AckOutcome::Status;
  CHECK(alarm::acknowledge(*r, "Shop.Api.Down", std::nullopt, "alice", 101).status == Status::kNoAlarms);
  store_firing(*r, "Shop.Api.Down", {1, 2, 3});
  const auto one = alarm::acknowledge(*r, "Shop.Api.Down", 2, "alice", 101);
  CHECK(one.status == Status::kDone);
  CHECK(one.acknowledged == 1);
  const auto rest = alarm::acknowledge(*r, "Shop.Api.Down", std::nullopt, "bob", 102);
  CHECK(rest.acknowledged == 2);
  const auto state = read(*r, "Shop.Api.Down");
  CHECK(state.alarms.at(2).acked_by == "alice");
  CHECK(state.alarms.at(2).acked_at == 101);
  CHECK(state.alarms.at(1).acked_by == "bob");
  CHECK(state.alarms.at(42).acked_at == 0);  // pending: not acknowledged
  CHECK(alarm::acknowledge(*r, "Shop.Api.Down", std::nullopt, "carol", 103).status == Status::kNothingToAcknowledge);
}

TEST_CASE("acknowledgements racing each other from many consoles are all kept", "[alarms][admin]") {
  test::TempDir dir;
  auto setup = registry::open_registry("file:" + dir.path()).value();
  std::vector<int64_t> servers;
  for (int64_t s = 0; s < 16; ++s) servers.push_back(s);
  store_firing(*setup, "Shop.Api.Down", servers);
  std::vector<std::thread> consoles;
  std::vector<int> acknowledged(servers.size());
  for (const int64_t s : servers) {
    consoles.emplace_back([&, s] {
      auto r = registry::open_registry("file:" + dir.path()).value();  // each console its own client
      acknowledged[s] = alarm::acknowledge(*r, "Shop.Api.Down", s, "user" + std::to_string(s), 101).acknowledged;
    });
  }
  for (auto& t : consoles) t.join();
  const auto state = read(*setup, "Shop.Api.Down");
  for (const int64_t s : servers) {
    INFO("server " << s);
    CHECK(acknowledged[s] == 1);
    CHECK(state.alarms.at(s).acked_by == "user" + std::to_string(s));
  }
}
