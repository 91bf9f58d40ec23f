// The judger's alarm engine against a real file: registry: what it writes
// there when the console changes the same entries at the same time.
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "alarm/records.hpp"
#include "alarm/rule.hpp"
#include "common/clock.hpp"
#include "registry/registry.hpp"
#include "judger/alarm_engine.hpp"
#include "judger/notifier.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace std::chrono_literals;
using monitor::test::TempDir;
using monitor::test::wait_until;
namespace rules = monitor::alarm;
namespace judger = monitor::judger;
namespace registry = monitor::registry;

namespace {

constexpr const char* kRuleText = R"(rule E2e.Test.Low
  service E2e.Test
  attr Steady.Count
  op SUM
  per total
  when value < 5
)";

int64_t evaluated_of(registry::Registry& reg) {
  auto entry = reg.get(rules::kAlarmsKind, "E2e.Test.Low");
  if (!entry || !*entry) return 0;
  return rules::alarms_from_value((*entry)->value).evaluated;
}

// The notifier and alarm engine over `reg`, made as the judger makes them:
// its data directory first (alarms.db is in it).
struct JudgerAlarms {
  JudgerAlarms(const TempDir& dir, registry::Registry& reg)
      : notifier((std::filesystem::create_directories(dir.file("judger")), dir.file("judger")), judger::NotifierOptions{}),
        engine(reg, "judger-1", notifier) {
    engine.load_rules();
  }
  judger::Notifier notifier;
  judger::AlarmEngine engine;
};

// The details of the rule's history events of one kind, newest first.
std::vector<std::string> history_details(judger::Notifier& notifier, std::string_view event, int64_t to) {
  std::vector<std::string> details;
  for (const auto& row : notifier.history("E2e.Test.Low", 0, to, 100)) {
    const auto& o = row.as_object();
    if (o.at("event").as_string() == event) details.emplace_back(o.at("detail").as_string());
  }
  return details;
}

// A file: registry under `dir` holding the rule in `rule_text`, its service
// assigned to judger-1.
std::unique_ptr<registry::Registry> registry_with_rule(const TempDir& dir, const std::string& rule_text) {
  auto opened = registry::open_registry("file:" + dir.file("registry"));
  REQUIRE(opened.has_value());
  const auto parsed = rules::parse_rule_file(rule_text);
  REQUIRE(!parsed.error);
  auto& reg = **opened;
  REQUIRE(reg.put(rules::kRulesKind, "E2e.Test.Low", rules::rule_value(parsed.file.rules[0], true)).has_value());
  REQUIRE(reg.put("assignments", "E2e.Test", boost::json::object{{"judger", "judger-1"}}).has_value());
  return std::move(*opened);
}

}  // namespace

// Regression (issue 20): `rule rm` removed rules/<r> and alarms/<r> while the
// judger was writing the rule's state: its compare-and-set failed, it re-read
// the (now absent) state and wrote it again at version 0, so alarms/<r> came
// back for a rule that no longer existed.
TEST_CASE("a rule removed while its judger writes the alarms' state stays removed, state and all",
          "[alarm][judger][registry]") {
  TempDir dir;
  auto opened = registry_with_rule(dir, kRuleText);
  registry::Registry& reg = *opened;

  JudgerAlarms judger_alarms(dir, reg);
  [[maybe_unused]] judger::Notifier& notifier = judger_alarms.notifier;
  judger::AlarmEngine& engine = judger_alarms.engine;
  const int64_t now_minute = monitor::realtime_ns() / 60'000'000'000;
  auto evaluate = [&](int64_t minute) {
    engine.minute_stored({judger::MinutePoint{"E2e.Test", "Steady.Count", 1, -1, minute * 60, 10}});
    engine.final_before((minute + 1) * 60);
  };
  // The first minute only starts the rule's state; the second is evaluated and written.
  evaluate(now_minute - 3);
  evaluate(now_minute - 2);
  REQUIRE(wait_until([&] { return evaluated_of(reg) == now_minute - 2; }, 5s));

  // What `monitorctl rule rm` does, then the next minute at once: the judger
  // evaluates it before its watch (polled every 500 ms) has seen the removal.
  const auto removed = reg.commit({}, {{std::string(rules::kRulesKind), "E2e.Test.Low", std::nullopt},
                                       {std::string(rules::kAlarmsKind), "E2e.Test.Low", std::nullopt}});
  REQUIRE((removed.has_value() && *removed));
  const uint64_t evaluations = engine.figures().evaluations;
  evaluate(now_minute - 1);
  REQUIRE(wait_until([&] { return engine.figures().evaluations > evaluations; }, 5s));
  // Later minutes until the watch has seen the rule go and the engine dropped it.
  int64_t next = now_minute;
  REQUIRE(wait_until([&] {
    evaluate(next++);
    return engine.figures().rules == 0;
  }, 5s));
  auto alarms = reg.get(rules::kAlarmsKind, "E2e.Test.Low");
  REQUIRE(alarms.has_value());
  CHECK_FALSE(alarms->has_value());
  CHECK(engine.figures().state_write_failures == 0);
}

// Regression (issue 20): silences were matched at the wall clock. A judger
// catching up on minutes it missed (down, or the registry out of reach)
// paged for a minute that a silence, expired since, had covered.
TEST_CASE("a minute judged late is matched against the silences in force at its time, not the wall clock's",
          "[alarm][judger][silence]") {
  TempDir dir;
  auto opened = registry_with_rule(dir, std::string(kRuleText) + "  notify webhook:http://127.0.0.1:9/low\n");
  registry::Registry& reg = *opened;
  const int64_t now_minute = monitor::realtime_ns() / 60'000'000'000;
  rules::Silence maintenance;
  maintenance.id = "s1";
  maintenance.rule = "E2e.Test.Low";
  maintenance.start_s = (now_minute - 30) * 60;
  maintenance.end_s = (now_minute - 5) * 60;  // over before the judger gets to the minute below
  REQUIRE(reg.put(rules::kSilencesKind, "s1", rules::silence_value(maintenance)).has_value());

  JudgerAlarms judger_alarms(dir, reg);
  [[maybe_unused]] judger::Notifier& notifier = judger_alarms.notifier;
  judger::AlarmEngine& engine = judger_alarms.engine;
  auto evaluate = [&](int64_t minute, double value) {
    engine.minute_stored({judger::MinutePoint{"E2e.Test", "Steady.Count", 1, -1, minute * 60, value}});
    engine.final_before((minute + 1) * 60);
  };
  evaluate(now_minute - 12, 10);
  evaluate(now_minute - 11, 1);  // faulty, inside the silence: judged 11 minutes late
  // The firing count is set once the whole minute is evaluated, after the transition.
  REQUIRE(wait_until([&] { return engine.figures().transitions >= 1 && engine.figures().firing == 1; }, 5s));
  CHECK(engine.figures().notices == 0);
  CHECK(notifier.counters().queued == 0);
}

// Regression (issue 20): a per-server alarm of a server that stopped
// reporting for good stayed firing for ever (while `rule test` forgot it
// after a day). After the watch period it resolves as `gone`, notified as
// such, and is forgotten.
TEST_CASE("an alarm of a server that stopped for good resolves as gone after a day, notified once",
          "[alarm][judger]") {
  TempDir dir;
  auto opened = registry_with_rule(dir, R"(rule E2e.Test.Low
  service E2e.Test
  attr Steady.Count
  op SUM
  when nodata(3)
  notify webhook:http://127.0.0.1:9/silent
)");
  registry::Registry& reg = *opened;
  JudgerAlarms judger_alarms(dir, reg);
  [[maybe_unused]] judger::Notifier& notifier = judger_alarms.notifier;
  judger::AlarmEngine& engine = judger_alarms.engine;
  const int64_t base = monitor::realtime_ns() / 60'000'000'000 - 1500;
  // Server 3 reports for three minutes (the first only starts the rule's state), then never again.
  for (int64_t minute = base; minute < base + 3; ++minute) {
    engine.minute_stored({judger::MinutePoint{"E2e.Test", "Steady.Count", 1, 3, minute * 60, 10}});
    engine.final_before((minute + 1) * 60);
  }
  REQUIRE(wait_until([&] { return evaluated_of(reg) == base + 2; }, 5s));
  // A day and more later (the engine catches up on the last hour of it).
  engine.final_before((base + 2 + 1441 + 1) * 60);
  REQUIRE(wait_until([&] { return evaluated_of(reg) == base + 2 + 1441; }, 5s));
  auto history = notifier.history("E2e.Test.Low", 0, (base + 1500) * 60, 100);
  std::vector<std::string> events;
  for (const auto& row : history) {
    const auto& o = row.as_object();
    // Newest first.
    if (o.at("server").to_number<int64_t>() == 3) events.emplace(events.begin(), o.at("event").as_string());
  }
  CHECK(events == std::vector<std::string>{"firing", "gone"});
  CHECK(notifier.counters().queued == 2);  // the firing and the gone notices
  auto alarms = reg.get(rules::kAlarmsKind, "E2e.Test.Low");
  REQUIRE((alarms.has_value() && alarms->has_value()));
  CHECK(rules::alarms_from_value((*alarms)->value).alarms.count(3) == 0);  // forgotten
}

TEST_CASE("issue 20: a minute amended after it was judged is counted and told in the rule's history, once per change",
          "[alarm][judger][issue20]") {
  TempDir dir;
  auto opened = registry_with_rule(dir, kRuleText);  // per total, when value < 5
  registry::Registry& reg = *opened;
  JudgerAlarms judger_alarms(dir, reg);
  [[maybe_unused]] judger::Notifier& notifier = judger_alarms.notifier;
  judger::AlarmEngine& engine = judger_alarms.engine;
  const int64_t now_minute = monitor::realtime_ns() / 60'000'000'000;
  auto store = [&](int64_t minute, double value) {
    engine.minute_stored({judger::MinutePoint{"E2e.Test", "Steady.Count", 1, -1, minute * 60, value},
                          judger::MinutePoint{"E2e.Test", "Other.Count", 1, -1, minute * 60, 7}});
  };
  store(now_minute - 3, 10);
  engine.final_before((now_minute - 2) * 60);
  store(now_minute - 2, 10);
  engine.final_before((now_minute - 1) * 60);
  REQUIRE(wait_until([&] { return evaluated_of(reg) == now_minute - 2; }, 5s));
  // The same minute stored again, unchanged for this series (another series of it changed): nothing to tell.
  store(now_minute - 2, 10);
  // Late data: the minute the rule judged at 10 is 12 now.
  store(now_minute - 2, 12);
  store(now_minute - 1, 10);
  engine.final_before(now_minute * 60);
  REQUIRE(wait_until([&] { return evaluated_of(reg) == now_minute - 1; }, 5s));
  CHECK(engine.figures().amended_after_evaluation == 1);
  std::vector<std::string> amended;
  for (const auto& row : notifier.history("E2e.Test.Low", 0, (now_minute + 1) * 60, 100)) {
    const auto& o = row.as_object();
    if (o.at("event").as_string() != "amended") continue;
    CHECK(o.at("time").to_number<int64_t>() == (now_minute - 2) * 60);
    amended.emplace_back(o.at("detail").as_string());
  }
  REQUIRE(amended.size() == 1);
  CHECK(amended[0].find("value 10 judged, 12 now") != std::string::npos);
}

// Issue 20: a firing caused only by a partial minute is taken back once the
// late data amends the minute: those paged are told it resolved, as a
// correction. Before, the amendment was only recorded and the alarm fired on.
TEST_CASE("issue 20: a firing that the amended minute does not bear out resolves as a correction, notified",
          "[alarm][judger][issue20]") {
  TempDir dir;
  auto opened = registry_with_rule(dir, std::string(kRuleText) + "  notify webhook:http://127.0.0.1:9/low\n");
  registry::Registry& reg = *opened;
  JudgerAlarms judger_alarms(dir, reg);
  [[maybe_unused]] judger::Notifier& notifier = judger_alarms.notifier;
  judger::AlarmEngine& engine = judger_alarms.engine;
  const int64_t now_minute = monitor::realtime_ns() / 60'000'000'000;
  auto store = [&](int64_t minute, double value) {
    engine.minute_stored({judger::MinutePoint{"E2e.Test", "Steady.Count", 1, -1, minute * 60, value}});
  };
  auto alarm_state = [&] {
    auto entry = reg.get(rules::kAlarmsKind, "E2e.Test.Low");
    REQUIRE((entry.has_value() && entry->has_value()));
    return rules::alarms_from_value((*entry)->value).alarms.at(-1);
  };
  store(now_minute - 3, 10);
  engine.final_before((now_minute - 2) * 60);
  store(now_minute - 2, 3);  // judged on part of the minute: fires (when value < 5)
  engine.final_before((now_minute - 1) * 60);
  REQUIRE(wait_until([&] { return evaluated_of(reg) == now_minute - 2; }, 5s));
  REQUIRE(alarm_state().state == rules::State::kFiring);
  REQUIRE(notifier.counters().queued == 1);
  store(now_minute - 2, 12);  // the rest of the minute: the condition never held
  REQUIRE(wait_until([&] { return engine.figures().corrected == 1; }, 5s));
  CHECK(alarm_state().state == rules::State::kResolved);
  CHECK(notifier.counters().queued == 2);  // the firing and its correction
  const auto resolved = history_details(notifier, "resolved", (now_minute + 1) * 60);
  REQUIRE(resolved.size() == 1);
  CHECK(resolved[0].find("correction: value 3 judged, 12 now") != std::string::npos);
  // An amendment that still meets the condition changes nothing.
  store(now_minute - 1, 2);
  engine.final_before(now_minute * 60);
  REQUIRE(wait_until([&] { return evaluated_of(reg) == now_minute - 1; }, 5s));
  store(now_minute - 1, 4);
  REQUIRE(wait_until([&] { return engine.figures().amended_after_evaluation == 2; }, 5s));
  CHECK(engine.figures().corrected == 1);
  CHECK(alarm_state().state == rules::State::kFiring);
}
