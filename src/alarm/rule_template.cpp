#include "alarm/rule_template.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "monitor/monitor.hpp"

namespace monitor::alarm {
namespace {

constexpr size_t kMaxTemplateDepth = 8;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string_view first_word(std::string_view s) {
  s = trim(s);
  const size_t end = s.find_first_of(" \t");
  return s.substr(0, end);
}

// Splits `text` into lines with their numbers.
template <class OnLine>
void for_each_line(std::string_view text, OnLine&& on_line) {
  int number = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    on_line(text.substr(start, end - start), ++number);
    if (end == text.size()) break;
    start = end + 1;
  }
}

bool blank_or_comment(std::string_view line) {
  const std::string_view t = trim(line);
  return t.empty() || t.front() == '#';
}

}  // namespace

bool is_template_text(std::string_view text) noexcept {
  bool found = false;
  bool decided = false;
  for_each_line(text, [&](std::string_view line, int) {
    if (decided || blank_or_comment(line)) return;
    decided = true;
    found = first_word(line) == "template";
  });
  return found;
}

TemplateParse parse_template(std::string_view text) {
  TemplateParse out;
  RuleTemplate t;
  t.source = std::string(text);
  enum class In { kNothing, kRule, kTest } in = In::kNothing;
  bool have_header = false;
  auto fail = [&](int line, int column, std::string reason) {
    if (!out.error) out.error = ParseError{line, column, std::move(reason)};
  };
  for_each_line(text, [&](std::string_view line, int number) {
    if (out.error || blank_or_comment(line)) return;
    const bool indented = line.front() == ' ' || line.front() == '\t';
    if (!indented) {
      std::vector<std::string_view> words;
      std::string_view rest = trim(line);
      if (const size_t hash = rest.find(" #"); hash != std::string_view::npos) rest = trim(rest.substr(0, hash));
      while (!rest.empty()) {
        const size_t end = rest.find_first_of(" \t");
        words.push_back(rest.substr(0, end));
        rest = end == std::string_view::npos ? std::string_view{} : trim(rest.substr(end));
      }
      if (!have_header) {
        if (words[0] != "template") return fail(number, 1, "a template file starts with 'template NAME [extends PARENT]'");
        if (words.size() != 2 && !(words.size() == 4 && words[2] == "extends")) {
          return fail(number, 1, "expected 'template NAME [extends PARENT]'");
        }
        t.name = std::string(words[1]);
        if (words.size() == 4) t.extends = std::string(words[3]);
        for (const std::string& name : {t.name, t.extends}) {
          if (!name.empty() && !is_valid_group_name(name)) {
            return fail(number, 10, fmt::format("'{}' is not a template name (a capital letter, then letters and "
                                                "digits, at most 32 bytes)", name));
          }
        }
        if (t.name == t.extends) return fail(number, 1, "a template cannot extend itself");
        have_header = true;
        return;
      }
      if (words[0] == "rule") {
        if (words.size() != 2 || !is_valid_name(words[1])) {
          return fail(number, 1, "expected 'rule NAME' with a name like Host.DiskFull");
        }
        for (const auto& r : t.rules) {
          if (r.name == words[1]) return fail(number, 6, fmt::format("rule {} twice in one template", r.name));
        }
        t.rules.push_back(TemplateRuleBlock{std::string(words[1]), number, {}});
        in = In::kRule;
        return;
      }
      if (words[0] == "test") {
        t.test_lines.push_back(number);
        t.tests_text += std::string(line) + "\n";
        in = In::kTest;
        return;
      }
      if (words[0] == "template") return fail(number, 1, "one template per file");
      return fail(number, 1, fmt::format("unknown line '{}' (rule, test)", words[0]));
    }
    if (in == In::kNothing) return fail(number, 1, "an indented line belongs to a rule or a test");
    if (in == In::kTest) {
      t.tests_text += std::string(line) + "\n";
      return;
    }
    const std::string_view body = trim(line);
    const std::string key(first_word(body));
    if (key == "group" || key == "template") {
      return fail(number, 3, fmt::format("a template's rule takes its servers from the group it is bound to: no '{}' "
                                         "line", key));
    }
    t.rules.back().lines.emplace_back(key, std::string(body));
  });
  if (!out.error && !have_header) out.error = ParseError{1, 1, "a template file starts with 'template NAME [extends PARENT]'"};
  if (!out.error) out.parsed = std::move(t);
  return out;
}

std::string ResolvedRule::text() const {
  std::string out = "rule " + name + "\n";
  for (const auto& l : lines) out += "  " + l.text + "\n";
  return out;
}

std::optional<ResolvedTemplate> resolve_template(
    const RuleTemplate& t, const std::function<std::optional<RuleTemplate>(const std::string&)>& lookup,
    std::string& error) {
  // The chain from the root down to `t`.
  std::vector<RuleTemplate> chain{t};
  std::set<std::string> seen{t.name};
  while (!chain.back().extends.empty()) {
    const std::string parent = chain.back().extends;
    if (seen.contains(parent)) {
      error = fmt::format("template {} extends itself through {}", t.name, chain.back().name);
      return std::nullopt;
    }
    if (chain.size() >= kMaxTemplateDepth) {
      error = fmt::format("template {}: more than {} templates extend one another", t.name, kMaxTemplateDepth);
      return std::nullopt;
    }
    auto found = lookup(parent);
    if (!found) {
      error = fmt::format("template {} extends {}, which is not stored (monitorctl template add)", chain.back().name,
                          parent);
      return std::nullopt;
    }
    seen.insert(parent);
    chain.push_back(std::move(*found));
  }
  ResolvedTemplate out;
  out.name = t.name;
  for (const auto& c : chain) out.chain.push_back(c.name);
  for (auto level = chain.rbegin(); level != chain.rend(); ++level) {
    for (const TemplateRuleBlock& block : level->rules) {
      auto it = std::find_if(out.rules.begin(), out.rules.end(), [&](const auto& r) { return r.name == block.name; });
      if (it == out.rules.end()) {
        ResolvedRule rule{block.name, {}};
        for (const auto& [key, text] : block.lines) rule.lines.push_back({text, level->name, ""});
        out.rules.push_back(std::move(rule));
        continue;
      }
      // Each key the block names replaces every line of that key, where the first of them stood.
      std::vector<std::string> keys;
      for (const auto& [key, text] : block.lines) {
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
      }
      for (const std::string& key : keys) {
        auto& lines = it->lines;
        auto first = std::find_if(lines.begin(), lines.end(), [&](const auto& l) { return first_word(l.text) == key; });
        const std::string replaced = first == lines.end() ? "" : first->from;
        size_t at = static_cast<size_t>(first - lines.begin());
        lines.erase(std::remove_if(lines.begin(), lines.end(), [&](const auto& l) { return first_word(l.text) == key; }),
                    lines.end());
        at = std::min(at, lines.size());
        for (const auto& [k, text] : block.lines) {
          if (k != key) continue;
          lines.insert(lines.begin() + static_cast<ptrdiff_t>(at++), ResolvedLine{text, level->name, replaced});
        }
      }
    }
  }
  for (const auto& r : out.rules) {
    const auto alone = parse_rule_file(r.text());
    if (alone.error) {
      error = fmt::format("template {}, rule {} as resolved: {}", t.name, r.name, alone.error->reason);
      return std::nullopt;
    }
  }
  std::string whole;
  for (const auto& r : out.rules) whole += r.text();
  whole += t.tests_text;
  auto parsed = parse_rule_file(whole);
  if (parsed.error) {
    error = fmt::format("template {}, its tests: {}", t.name, parsed.error->reason);
    return std::nullopt;
  }
  for (const Rule& rule : parsed.file.rules) {
    if (!rule.per_server) {
      error = fmt::format("template {}, rule {}: a template's rules are per server (a group picks the servers)",
                          t.name, rule.name);
      return std::nullopt;
    }
  }
  out.file = std::move(parsed.file);
  return out;
}

std::string bound_rule_name(const std::string& rule, const std::string& group) { return rule + "." + group; }

std::string bound_rule_text(const ResolvedRule& rule, const std::string& group, const std::string& template_name) {
  std::string out = "rule " + bound_rule_name(rule.name, group) + "\n";
  for (const auto& l : rule.lines) out += "  " + l.text + "\n";
  out += "  group " + group + "\n  template " + template_name + "\n";
  return out;
}

}  // namespace monitor::alarm
