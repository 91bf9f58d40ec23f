// How rules, alarm states and silences are kept in the registry (docs/rules.md):
// one schema for the judgers that write them and monitorctl that reads them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "alarm/evaluator.hpp"
#include "alarm/rule.hpp"

namespace monitor::alarm {

inline constexpr std::string_view kRulesKind = "rules";        // rules/<rule>: {"text", "enabled"}
inline constexpr std::string_view kAlarmsKind = "alarms";      // alarms/<rule>: its alarms' states
inline constexpr std::string_view kSilencesKind = "silences";  // silences/<id>

boost::json::object rule_value(const Rule& rule, bool enabled);
/// The rule an entry holds, or nullopt with `error` saying why (a rule
/// stored by a newer or a broken writer).
std::optional<Rule> rule_from_value(const boost::json::value& value, std::string& error);

/// The states of one rule's alarms, by server (-1: the total).
struct RuleAlarms {
  int64_t evaluated = 0;  // the last minute evaluated
  std::map<int64_t, AlarmState> alarms;
};
boost::json::object alarms_value(const RuleAlarms& r);
RuleAlarms alarms_from_value(const boost::json::value& value);

/// A silence: notifications of the alarms it matches are not sent while it
/// holds. An empty field (server -2) matches anything.
struct Silence {
  std::string id;
  std::string rule, service, attr;
  int64_t server = -2;
  int64_t start_s = 0, end_s = 0;  // Unix seconds
  std::string comment, by;
  bool matches(const Rule& r, int64_t series_server, int64_t now_s) const noexcept;
};
boost::json::object silence_value(const Silence& s);
std::optional<Silence> silence_from_value(const std::string& id, const boost::json::value& value);

}  // namespace monitor::alarm
