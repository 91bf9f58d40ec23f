// Running a rule over a stretch of minutes: a rule file's test cases, and
// `monitorctl rule test` over stored history.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "alarm/evaluator.hpp"
#include "alarm/rule.hpp"

namespace monitor::alarm {

/// Every minute of every series a replay reads: server (-1: the total) ->
/// minute -> value.
using History = std::map<int64_t, std::map<int64_t, double>>;

/// A judger's `/api/points` reply ({"servers": {"total"|"<id>": [[minute_s,
/// value], ...]}}) added to `out`, minutes as Unix minutes; a minute `out`
/// holds already stands. Rows that do not have that shape are skipped and
/// counted in `skipped`; false when the reply has no "servers" object.
bool add_points_reply(const boost::json::value& reply, History& out, size_t& skipped);

struct ReplayResult {
  std::vector<Transition> transitions;  // in order of minute, then server
  std::vector<Notice> notices;          // what would have been sent, no silences applied
  int64_t minutes = 0;                  // evaluated
};

/// Evaluates `rule` at every minute of [from, to] as a judger would, each
/// minute once it is final.
ReplayResult replay(const Rule& rule, const History& history, int64_t from, int64_t to);

struct TestOutcome {
  std::string name;
  int line = 0;
  std::vector<std::string> problems;  // empty: passed
};

/// Runs a rule file's test cases: each one's transitions must be exactly its expects.
std::vector<TestOutcome> run_tests(const RuleFile& file);

}  // namespace monitor::alarm
