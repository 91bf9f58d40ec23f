// Acknowledging alarms in the registry: the one compare-and-set loop that
// monitorctl and the dashboard share.
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "alarm/admin.hpp"
#include "alarm/records.hpp"
#include "registry/registry.hpp"
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

namespace {

std::vector<alarm::Rule> parse_rules(const std::string& text) {
  auto parsed = alarm::parse_rule_file(text);
  REQUIRE_FALSE(parsed.error);
  return parsed.file.rules;
}

const std::string kRuleText =
    "rule Shop.Api.Down\n  service Shop.Api\n  attr Request.Count\n  op SUM\n  per total\n  when value < 1\n";

}  // namespace

TEST_CASE("issue 22: rules are stored, refused when they exist unless replaced, switched and removed with their "
          "alarms",
          "[alarms][admin][issue22]") {
  test::TempDir dir;
  auto r = registry::open_registry("file:" + dir.path()).value();
  using Status = alarm::ChangeOutcome::Status;
  const auto rules = parse_rules(kRuleText);
  CHECK(alarm::store_rules(*r, rules, false).status == Status::kDone);
  const auto again = alarm::store_rules(*r, rules, false);
  CHECK(again.status == Status::kExists);
  CHECK(again.name == "Shop.Api.Down");
  CHECK(alarm::store_rules(*r, rules, true).status == Status::kDone);

  CHECK(alarm::set_rule_enabled(*r, "Shop.Api.Down", false).status == Status::kDone);
  CHECK(r->get(std::string(alarm::kRulesKind), "Shop.Api.Down").value()->value.at("enabled") == false);
  CHECK(alarm::set_rule_enabled(*r, "No.Such", true).status == Status::kNotFound);

  store_firing(*r, "Shop.Api.Down", {1});
  CHECK(alarm::remove_rule(*r, "Shop.Api.Down").status == Status::kDone);
  CHECK_FALSE(r->get(std::string(alarm::kRulesKind), "Shop.Api.Down").value());
  CHECK_FALSE(r->get(std::string(alarm::kAlarmsKind), "Shop.Api.Down").value());  // not left behind
  CHECK(alarm::remove_rule(*r, "Shop.Api.Down").status == Status::kNotFound);
}

TEST_CASE("issue 22: a silence gets a fresh id, the same id twice is refused, and removing one that is not there says "
          "so",
          "[alarms][admin][issue22]") {
  test::TempDir dir;
  auto r = registry::open_registry("file:" + dir.path()).value();
  using Status = alarm::ChangeOutcome::Status;
  alarm::Silence s;
  s.service = "Shop.Api";
  s.start_s = 100;
  s.end_s = 200;
  CHECK(alarm::add_silence(*r, s, 1234).status == Status::kDone);
  CHECK(s.id == "s1234");
  alarm::Silence same = s;
  CHECK(alarm::add_silence(*r, same, 1234).status == Status::kExists);
  CHECK(alarm::remove_silence(*r, "s1234").status == Status::kDone);
  CHECK(alarm::remove_silence(*r, "s1234").status == Status::kNotFound);
}
