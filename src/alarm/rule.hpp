// Alarm rules: their language (docs/rules.md), parsed into what the evaluator runs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace monitor::alarm {

/// A comparison of a number against a threshold.
enum class Cmp { kGt, kGe, kLt, kLe, kEq, kNe };

/// One node of a condition. Leaves read the rule's series; `and`, `or` and
/// `not` combine them.
struct Cond {
  enum class Kind {
    kAnd, kOr, kNot,
    kValue,    // value cmp X
    kWindow,   // max|min|avg|sum|count(N) cmp X
    kAll,      // all(N) cmp X: every minute of the window has data and passes
    kAny,      // any(N) cmp X: some minute with data passes
    kLookup,   // lookup(M, N) cmp X: at least M of the last N minutes pass
    kChange,   // diff|pdiff|ratio(BACK [, W]) cmp X
    kNoData,   // nodata(N): no data in any of the last N minutes
  };
  enum class Fn { kNone, kMax, kMin, kAvg, kSum, kCount, kDiff, kPdiff, kRatio };

  Kind kind = Kind::kValue;
  Fn fn = Fn::kNone;
  Cmp cmp = Cmp::kGt;
  double threshold = 0;
  int64_t window = 1;   // minutes: N of a window, W of a change
  int64_t back = 0;     // minutes: BACK of a change
  int64_t at_least = 0; // M of lookup
  std::vector<std::unique_ptr<Cond>> children;  // kAnd, kOr: two or more; kNot: one

  /// How many minutes back from the evaluated one this condition reads (1: only it).
  int64_t span() const noexcept;
  bool uses_nodata() const noexcept;
};

enum class Severity { kInfo, kWarning, kCritical };
std::string_view severity_name(Severity s) noexcept;

/// Where a notification goes: `webhook:URL`, `email:ADDRESS`, `command:PATH ARGS…`.
struct Target {
  enum class Kind { kWebhook, kEmail, kCommand };
  Kind kind = Kind::kWebhook;
  std::string address;            // URL, mail address, or the program's path
  std::vector<std::string> args;  // a command's arguments (no shell)
  std::string text() const;       // as written in a rule: an argument with spaces or quotes quoted
};

/// A `command:` target's text (after the scheme, as Target::text() writes
/// it) split back into the program and its arguments, quoted ones whole, as
/// the rule parser splits them; nullopt if a quote is not closed.
std::optional<std::vector<std::string>> command_words(std::string_view text);

struct Rule {
  std::string name;
  std::string service;
  std::string attr;
  uint32_t op = 1;        // one op bit, or a HIST quantile code (judger/minute_rollup.hpp)
  bool per_server = true; // false: the total
  std::shared_ptr<const Cond> when;
  std::shared_ptr<const Cond> recover;  // null: the alarm recovers when `when` no longer holds
  std::string when_text, recover_text;
  int64_t pending = 1;    // fires at the pending-th consecutive minute `when` holds
  int64_t keep = 0;       // stays firing for this many recovered minutes
  Severity severity = Severity::kWarning;
  std::string summary, description;
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<Target> notify;
  std::optional<Target> escalate_to;
  int64_t escalate_after = 0;  // minutes firing unacknowledged; 0: never
  int64_t repeat = 60;         // minutes between repeats of a firing alarm; 0: never
  int64_t max_notifications = 10;  // per alarm episode, repeats and escalation included
  bool enabled = true;
  // Only the servers of this group (groups/<group>: host name globs and id
  // ranges), resolved when evaluated; per-server rules only. Empty: every server.
  std::string group;
  std::string from_template;  // the template the rule was made from (`group bind`), for people
  std::string source;  // the rule's own text, as stored in the registry

  /// Minutes of history a judger keeps to evaluate it.
  int64_t span() const noexcept;
};

/// Synthetic minutes in, expected firings out (like `promtool test rules`).
struct RuleTest {
  struct Series {
    int64_t server = -1;  // -1: the total
    int64_t first_minute = 1;
    std::vector<std::optional<double>> values;  // one per minute; nullopt: no data
  };
  struct Expect {
    std::string event;  // "firing" or "resolved"
    int64_t minute = 0;
    int64_t server = -1;
  };
  std::string name;
  std::string rule;
  std::vector<Series> series;
  std::vector<Expect> expects;
  int line = 0;
};

struct ParseError {
  int line = 0;
  int column = 0;
  std::string reason;
  std::string text() const;  // "line L, column C: reason"
};

struct RuleFile {
  std::vector<Rule> rules;
  std::vector<RuleTest> tests;
};

/// Parses a rule file: rules and test cases. Names are checked by docs/design.md's
/// rule; whether the service, attr and op exist is the caller's to check
/// against the registry (check_against()).
struct ParseResult {
  RuleFile file;
  std::optional<ParseError> error;
};
ParseResult parse_rule_file(std::string_view text);

/// Parses one condition (a `when` or `recover` line), for tests and tools.
std::shared_ptr<const Cond> parse_condition(std::string_view text, ParseError& error);

/// A group's or a template's name: a capital letter, then letters and digits, at most 32 bytes.
bool is_valid_group_name(std::string_view name) noexcept;

/// Name of an op code a rule may name: SUM … COUNT, HIST_P50 … HIST_P999 (as the query API names them).
std::optional<uint32_t> parse_rule_op(std::string_view text) noexcept;
std::string rule_op_name(uint32_t op);

}  // namespace monitor::alarm
