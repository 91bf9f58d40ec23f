// Rule templates (docs/rules.md, "Templates and groups"): a set of per-server
// rules with no servers of their own, which `monitorctl group bind` applies to
// a group of hosts. A template may extend another and override any of its
// rules by name, line by line (a threshold, a pending, the notify targets).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alarm/rule.hpp"

namespace monitor::alarm {

/// One `rule NAME` block of a template file: whole, or for a rule the parent
/// has, only the lines that change.
struct TemplateRuleBlock {
  std::string name;
  int line = 0;
  std::vector<std::pair<std::string, std::string>> lines;  // (key, the line without its indent)
};

/// A template file: `template NAME [extends PARENT]` first, then rule blocks
/// and test cases (docs/rules.md).
struct RuleTemplate {
  std::string name;
  std::string extends;  // empty: none
  std::vector<TemplateRuleBlock> rules;
  std::string tests_text;  // the file's `test` blocks, run against the resolved rules
  std::vector<int> test_lines;  // the file's line of each test, in order
  std::string source;
};

/// True when the file's first line that is not blank or a comment starts with `template`.
bool is_template_text(std::string_view text) noexcept;

struct TemplateParse {
  std::optional<RuleTemplate> parsed;
  std::optional<ParseError> error;
};
TemplateParse parse_template(std::string_view text);

/// A line of a resolved rule and the template that set it (and the one whose
/// line it replaced, if any).
struct ResolvedLine {
  std::string text;
  std::string from;
  std::string overrides;  // empty: not an override
};

struct ResolvedRule {
  std::string name;
  std::vector<ResolvedLine> lines;
  /// The rule's text, as a rule file holds it.
  std::string text() const;
};

struct ResolvedTemplate {
  std::string name;
  std::vector<std::string> chain;  // the template, its parent, the parent's parent...
  std::vector<ResolvedRule> rules;
  RuleFile file;  // the resolved rules parsed, with the template's own test cases
};

/// Resolves `t` over its ancestors (`lookup` gives a stored template by
/// name), and checks that every resolved rule parses, is per server and picks
/// no group of its own (the caller runs the test cases of `file`). Nullopt with
/// `error` set otherwise (a missing parent, a cycle, a rule that does not parse).
std::optional<ResolvedTemplate> resolve_template(
    const RuleTemplate& t, const std::function<std::optional<RuleTemplate>(const std::string&)>& lookup,
    std::string& error);

/// The name of a template rule bound to a group: "<rule>.<Group>".
std::string bound_rule_name(const std::string& rule, const std::string& group);

/// The text of a template rule bound to a group: the resolved rule renamed,
/// with `group` and `template` lines.
std::string bound_rule_text(const ResolvedRule& rule, const std::string& group, const std::string& template_name);

}  // namespace monitor::alarm
