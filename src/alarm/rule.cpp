#include "alarm/rule.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "model/op.hpp"
#include "monitor/monitor.hpp"

namespace monitor::alarm {
namespace {

constexpr int64_t kMaxSpan = 5 * 7 * 1440;  // five weeks of minutes: bounds what a rule makes a judger keep
constexpr size_t kMaxConditionNodes = 64;
// A '(' makes no node, so the node cap alone would not bound the parser's
// recursion: a rule from the registry could overflow a judger's stack.
constexpr size_t kMaxParenDepth = 32;
constexpr size_t kMaxTestMinutes = 12 * 7 * 1440;

struct Failure {
  int column;
  std::string reason;
};

// A condition's tokens, with the column each starts at (1-based).
struct Token {
  enum class Kind { kWord, kNumber, kOp, kEnd } kind;
  std::string text;
  int column;
};

std::vector<Token> tokenize(std::string_view s, int first_column) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const int column = first_column + static_cast<int>(i);
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Token::Kind::kWord, std::string(s.substr(i, j - i)), column});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
               (c == '-' && i + 1 < s.size() && (std::isdigit(static_cast<unsigned char>(s[i + 1])) || s[i + 1] == '.'))) {
      size_t j = i + 1;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
      out.push_back({Token::Kind::kNumber, std::string(s.substr(i, j - i)), column});
      i = j;
    } else if (c == '(' || c == ')' || c == ',') {
      out.push_back({Token::Kind::kOp, std::string(1, c), column});
      ++i;
    } else if (c == '>' || c == '<' || c == '=' || c == '!') {
      size_t j = i + 1;
      if (j < s.size() && s[j] == '=') ++j;
      out.push_back({Token::Kind::kOp, std::string(s.substr(i, j - i)), column});
      i = j;
    } else {
      throw Failure{column, fmt::format("unexpected character '{}'", c)};
    }
  }
  out.push_back({Token::Kind::kEnd, "", first_column + static_cast<int>(s.size())});
  return out;
}

// "5" (minutes), "5m", "2h", "1d", "1w".
std::optional<int64_t> parse_minutes(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t unit = 1;
  switch (text.back()) {
    case 'm': unit = 1; text.remove_suffix(1); break;
    case 'h': unit = 60; text.remove_suffix(1); break;
    case 'd': unit = 1440; text.remove_suffix(1); break;
    case 'w': unit = 10080; text.remove_suffix(1); break;
    default: break;
  }
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < 0 || n > kMaxSpan / unit) return std::nullopt;
  return n * unit;
}

std::optional<double> parse_number(std::string_view text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

class ConditionParser {
 public:
  explicit ConditionParser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  std::unique_ptr<Cond> parse() {
    auto c = parse_or();
    if (peek().kind != Token::Kind::kEnd) fail(peek(), fmt::format("unexpected '{}' after a whole condition", peek().text));
    return c;
  }

 private:
  const Token& peek() const { return tokens_[pos_]; }
  const Token& next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  [[noreturn]] static void fail(const Token& t, std::string reason) { throw Failure{t.column, std::move(reason)}; }
  bool accept_word(std::string_view w) {
    if (peek().kind == Token::Kind::kWord && peek().text == w) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect_op(std::string_view op) {
    const Token& t = next();
    if (t.kind != Token::Kind::kOp || t.text != op) {
      fail(t, fmt::format("expected '{}', found {}", op, t.kind == Token::Kind::kEnd ? "the end" : "'" + t.text + "'"));
    }
  }
  std::unique_ptr<Cond> node(Cond::Kind kind) {
    if (++nodes_ > kMaxConditionNodes) fail(peek(), fmt::format("more than {} terms in one condition", kMaxConditionNodes));
    auto c = std::make_unique<Cond>();
    c->kind = kind;
    return c;
  }

  std::unique_ptr<Cond> parse_or() {
    auto left = parse_and();
    if (peek().kind != Token::Kind::kWord || peek().text != "or") return left;
    auto c = node(Cond::Kind::kOr);
    c->children.push_back(std::move(left));
    while (accept_word("or")) c->children.push_back(parse_and());
    return c;
  }
  std::unique_ptr<Cond> parse_and() {
    auto left = parse_not();
    if (peek().kind != Token::Kind::kWord || peek().text != "and") return left;
    auto c = node(Cond::Kind::kAnd);
    c->children.push_back(std::move(left));
    while (accept_word("and")) c->children.push_back(parse_not());
    return c;
  }
  std::unique_ptr<Cond> parse_not() {
    if (accept_word("not")) {
      auto c = node(Cond::Kind::kNot);
      c->children.push_back(parse_not());
      return c;
    }
    return parse_primary();
  }

  int64_t minutes_arg(bool allow_zero) {
    const Token& t = next();
    const auto m = t.kind == Token::Kind::kNumber || t.kind == Token::Kind::kWord ? parse_minutes(t.text) : std::nullopt;
    if (!m || (*m == 0 && !allow_zero)) {
      fail(t, fmt::format("expected a number of minutes (5, 5m, 2h, 1d, 1w; at most 5 weeks), found '{}'", t.text));
    }
    return *m;
  }
  int64_t count_arg() {
    const Token& t = next();
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), n);
    if (t.kind != Token::Kind::kNumber || ec != std::errc() || end != t.text.data() + t.text.size() || n < 1) {
      fail(t, fmt::format("expected a count of minutes (1 or more), found '{}'", t.text));
    }
    return n;
  }
  void comparison(Cond& c) {
    const Token& t = next();
    static constexpr std::pair<std::string_view, Cmp> kCmps[] = {
        {">", Cmp::kGt}, {">=", Cmp::kGe}, {"<", Cmp::kLt}, {"<=", Cmp::kLe}, {"==", Cmp::kEq}, {"!=", Cmp::kNe}};
    const auto* found = std::find_if(std::begin(kCmps), std::end(kCmps), [&](const auto& p) { return p.first == t.text; });
    if (t.kind != Token::Kind::kOp || found == std::end(kCmps)) {
      fail(t, fmt::format("expected a comparison (> >= < <= == !=), found {}",
                          t.kind == Token::Kind::kEnd ? "the end" : "'" + t.text + "'"));
    }
    c.cmp = found->second;
    const Token& n = next();
    const auto v = n.kind == Token::Kind::kNumber ? parse_number(n.text) : std::nullopt;
    if (!v) fail(n, fmt::format("expected a number, found {}", n.kind == Token::Kind::kEnd ? "the end" : "'" + n.text + "'"));
    c.threshold = *v;
  }

  std::unique_ptr<Cond> parse_primary() {
    const Token& t = peek();
    if (t.kind == Token::Kind::kOp && t.text == "(") {
      if (depth_ == kMaxParenDepth) fail(t, fmt::format("parentheses nested deeper than {}", kMaxParenDepth));
      ++pos_;
      ++depth_;
      auto c = parse_or();
      --depth_;
      expect_op(")");
      return c;
    }
    if (t.kind != Token::Kind::kWord) {
      fail(t, fmt::format("expected a term (value, avg(5), nodata(3), …), found {}",
                          t.kind == Token::Kind::kEnd ? "the end" : "'" + t.text + "'"));
    }
    const std::string word = next().text;
    static constexpr std::pair<std::string_view, Cond::Fn> kWindows[] = {
        {"max", Cond::Fn::kMax}, {"min", Cond::Fn::kMin}, {"avg", Cond::Fn::kAvg},
        {"sum", Cond::Fn::kSum}, {"count", Cond::Fn::kCount}};
    static constexpr std::pair<std::string_view, Cond::Fn> kChanges[] = {
        {"diff", Cond::Fn::kDiff}, {"pdiff", Cond::Fn::kPdiff}, {"ratio", Cond::Fn::kRatio}};
    auto in = [&](const auto& table) {
      const auto* f = std::find_if(std::begin(table), std::end(table), [&](const auto& p) { return p.first == word; });
      return f == std::end(table) ? Cond::Fn::kNone : f->second;
    };
    if (word == "value") {
      auto c = node(Cond::Kind::kValue);
      comparison(*c);
      return c;
    }
    if (const Cond::Fn fn = in(kWindows); fn != Cond::Fn::kNone) {
      auto c = node(Cond::Kind::kWindow);
      c->fn = fn;
      expect_op("(");
      c->window = minutes_arg(false);
      expect_op(")");
      comparison(*c);
      return c;
    }
    if (word == "all" || word == "any") {
      auto c = node(word == "all" ? Cond::Kind::kAll : Cond::Kind::kAny);
      expect_op("(");
      c->window = minutes_arg(false);
      expect_op(")");
      comparison(*c);
      return c;
    }
    if (word == "lookup") {
      auto c = node(Cond::Kind::kLookup);
      expect_op("(");
      const Token& m_token = peek();
      c->at_least = count_arg();
      expect_op(",");
      c->window = minutes_arg(false);
      expect_op(")");
      if (c->at_least > c->window) fail(m_token, fmt::format("lookup({}, {}): more minutes asked for than the window has", c->at_least, c->window));
      comparison(*c);
      return c;
    }
    if (const Cond::Fn fn = in(kChanges); fn != Cond::Fn::kNone) {
      auto c = node(Cond::Kind::kChange);
      c->fn = fn;
      expect_op("(");
      c->back = minutes_arg(false);
      if (peek().kind == Token::Kind::kOp && peek().text == ",") {
        ++pos_;
        c->window = minutes_arg(false);
      }
      expect_op(")");
      comparison(*c);
      return c;
    }
    if (word == "nodata") {
      auto c = node(Cond::Kind::kNoData);
      expect_op("(");
      c->window = minutes_arg(false);
      expect_op(")");
      return c;
    }
    fail(t, fmt::format("unknown term '{}' (value, max, min, avg, sum, count, all, any, lookup, diff, pdiff, ratio, nodata)", word));
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  size_t nodes_ = 0;
  size_t depth_ = 0;  // parentheses open
};

std::unique_ptr<Cond> parse_cond_at(std::string_view text, int first_column) {
  return ConditionParser(tokenize(text, first_column)).parse();
}

// One line of a rule file, split into words; quoted words keep their spaces.
struct Word {
  std::string text;
  int column;
};

std::vector<Word> split_words(std::string_view line) {
  std::vector<Word> out;
  size_t i = 0;
  while (i < line.size()) {
    if (std::isspace(static_cast<unsigned char>(line[i]))) {
      ++i;
      continue;
    }
    if (line[i] == '#') break;
    const int column = static_cast<int>(i) + 1;
    if (line[i] == '"') {
      std::string text;
      size_t j = i + 1;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) ++j;
        text.push_back(line[j]);
      }
      if (j >= line.size()) throw Failure{column, "a quoted text is not closed"};
      out.push_back({std::move(text), column});
      i = j + 1;
    } else {
      size_t j = i;
      while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      out.push_back({std::string(line.substr(i, j - i)), column});
      i = j;
    }
  }
  return out;
}

// The rest of a line after its key, without a trailing comment (outside quotes).
std::string_view rest_of(std::string_view line, const Word& key, int& column) {
  size_t start = static_cast<size_t>(key.column - 1) + key.text.size();
  while (start < line.size() && std::isspace(static_cast<unsigned char>(line[start]))) ++start;
  size_t end = line.find('#', start);
  if (end == std::string_view::npos) end = line.size();
  while (end > start && std::isspace(static_cast<unsigned char>(line[end - 1]))) --end;
  column = static_cast<int>(start) + 1;
  return line.substr(start, end - start);
}

std::optional<Target> parse_target(const std::vector<Word>& words, size_t first, Failure& failure) {
  const Word& w = words[first];
  const size_t colon = w.text.find(':');
  const std::string scheme = colon == std::string::npos ? "" : w.text.substr(0, colon);
  Target t;
  t.address = colon == std::string::npos ? "" : w.text.substr(colon + 1);
  if (scheme == "webhook") {
    t.kind = Target::Kind::kWebhook;
    if (!t.address.starts_with("http://") && !t.address.starts_with("https://")) {
      failure = {w.column, "a webhook needs an http:// or https:// URL"};
      return std::nullopt;
    }
  } else if (scheme == "email") {
    t.kind = Target::Kind::kEmail;
    const size_t at = t.address.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == t.address.size() ||
        t.address.find_first_of("<>\r\n\" ,") != std::string::npos) {
      failure = {w.column, "email: needs one plain address, e.g. email:ops@example.com"};
      return std::nullopt;
    }
  } else if (scheme == "command") {
    t.kind = Target::Kind::kCommand;
    if (!t.address.starts_with("/")) {
      failure = {w.column, "command: needs an absolute path (it runs without a shell)"};
      return std::nullopt;
    }
  } else {
    failure = {w.column, fmt::format("unknown target '{}' (webhook:URL, email:ADDRESS, command:/PATH)", w.text)};
    return std::nullopt;
  }
  for (size_t i = first + 1; i < words.size(); ++i) {
    if (t.kind != Target::Kind::kCommand) {
      failure = {words[i].column, "only a command takes arguments; one target per notify line"};
      return std::nullopt;
    }
    t.args.push_back(words[i].text);
  }
  return t;
}

void finish_rule(Rule& r, int line) {
  auto missing = [&](std::string_view key) { return Failure{1, fmt::format("rule {} (line {}) has no '{}'", r.name, line, key)}; };
  if (r.service.empty()) throw missing("service");
  if (r.attr.empty()) throw missing("attr");
  if (!r.when) throw missing("when");
  if (r.escalate_to && r.escalate_after == 0) throw Failure{1, fmt::format("rule {}: escalate needs a delay", r.name)};
  if (!r.group.empty() && !r.per_server) {
    throw Failure{1, fmt::format("rule {}: a group picks servers, so the rule must be 'per server'", r.name)};
  }
}

}  // namespace

int64_t Cond::span() const noexcept {
  int64_t s = 1;
  switch (kind) {
    case Kind::kAnd:
    case Kind::kOr:
    case Kind::kNot:
      for (const auto& c : children) s = std::max(s, c->span());
      return s;
    case Kind::kValue: return 1;
    case Kind::kChange: return back + window;
    default: return window;
  }
}

bool Cond::uses_nodata() const noexcept {
  if (kind == Kind::kNoData) return true;
  return std::any_of(children.begin(), children.end(), [](const auto& c) { return c->uses_nodata(); });
}

bool is_valid_group_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 32 || name[0] < 'A' || name[0] > 'Z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

int64_t Rule::span() const noexcept {
  return std::max(when ? when->span() : 1, recover ? recover->span() : 1);
}

std::string_view severity_name(Severity s) noexcept {
  switch (s) {
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kCritical: return "critical";
  }
  return "warning";
}

std::string Target::text() const {
  std::string out;
  switch (kind) {
    case Kind::kWebhook: out = "webhook:"; break;
    case Kind::kEmail: out = "email:"; break;
    case Kind::kCommand: out = "command:"; break;
  }
  out += address;
  for (const auto& a : args) {
    const bool plain = !a.empty() && a[0] != '#' &&
                       std::none_of(a.begin(), a.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\\'; });
    if (plain) {
      out += " " + a;
      continue;
    }
    out += " \"";
    for (const char c : a) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  return out;
}

std::optional<std::vector<std::string>> command_words(std::string_view text) {
  try {
    std::vector<std::string> out;
    for (auto& w : split_words(text)) out.push_back(std::move(w.text));
    return out;
  } catch (const Failure&) {
    return std::nullopt;
  }
}

std::string ParseError::text() const { return fmt::format("line {}, column {}: {}", line, column, reason); }

std::optional<uint32_t> parse_rule_op(std::string_view text) noexcept {
  static constexpr std::pair<std::string_view, uint32_t> kQuantiles[] = {
      {"HIST_P50", model::kOpHistP50}, {"HIST_P90", model::kOpHistP90},
      {"HIST_P99", model::kOpHistP99}, {"HIST_P999", model::kOpHistP999}};
  for (const auto& [name, code] : kQuantiles) {
    if (text == name) return code;
  }
  for (const auto& op : model::kOps) {
    if (op.name == text && op.bit != 128) return op.bit;  // HIST is read through a quantile
  }
  return std::nullopt;
}

std::string rule_op_name(uint32_t op) {
  switch (op) {
    case model::kOpHistP50: return "HIST_P50";
    case model::kOpHistP90: return "HIST_P90";
    case model::kOpHistP99: return "HIST_P99";
    case model::kOpHistP999: return "HIST_P999";
    default: return std::string(model::op_name(op));
  }
}

std::shared_ptr<const Cond> parse_condition(std::string_view text, ParseError& error) {
  try {
    return parse_cond_at(text, 1);
  } catch (const Failure& f) {
    error = {1, f.column, f.reason};
    return nullptr;
  }
}

namespace {

const Word& one_value(const std::vector<Word>& words) {
  if (words.size() != 2) throw Failure{words[0].column, fmt::format("'{}' takes one value", words[0].text)};
  return words[1];
}

int64_t minutes_value(const std::vector<Word>& words, bool allow_zero) {
  const Word& w = one_value(words);
  const auto m = parse_minutes(w.text);
  if (!m || (*m == 0 && !allow_zero)) throw Failure{w.column, fmt::format("'{}' is not a number of minutes (5, 5m, 2h, 1d)", w.text)};
  return *m;
}

// series server=N|total [from=MINUTE] VALUES…
RuleTest::Series parse_test_series(const std::vector<Word>& words) {
  const Word& key = words[0];
  if (words.size() < 2) throw Failure{key.column, "expected 'series server=N|total [from=MINUTE] VALUES…'"};
  RuleTest::Series s;
  size_t i = 1;
  if (words[1].text == "total") {
    s.server = -1;
  } else if (words[1].text.starts_with("server=")) {
    const auto v = parse_number(std::string_view(words[1].text).substr(7));
    if (!v || *v < 0 || *v != std::floor(*v)) throw Failure{words[1].column, "server= needs a server id (0 or more)"};
    s.server = static_cast<int64_t>(*v);
  } else {
    throw Failure{words[1].column, "expected server=N or total"};
  }
  ++i;
  if (i < words.size() && words[i].text.starts_with("from=")) {
    const std::string_view from = std::string_view(words[i].text).substr(5);
    const bool negative = from.starts_with("-");
    const auto m = parse_minutes(negative ? from.substr(1) : from);
    if (!m) throw Failure{words[i].column, "from= needs a minute (1, or -1d for a day before minute 1)"};
    s.first_minute = negative ? 1 - *m : *m;
    ++i;
  }
  for (; i < words.size(); ++i) {
    if (s.values.size() >= kMaxTestMinutes) throw Failure{words[i].column, "too many minutes in one series"};
    // "5x3": five, three minutes running; "_x3": three minutes without data.
    const size_t x = words[i].text.find('x');
    const std::string_view value_text = std::string_view(words[i].text).substr(0, x);
    const bool no_data = value_text == "_";
    const auto v = no_data ? std::optional<double>(0) : parse_number(value_text);
    int64_t repeat = 1;
    if (x != std::string::npos) {
      const auto r = parse_number(std::string_view(words[i].text).substr(x + 1));
      if (!r || *r < 1 || *r > static_cast<double>(kMaxTestMinutes)) throw Failure{words[i].column, "VALUExN needs a count after x"};
      repeat = static_cast<int64_t>(*r);
    }
    if (!v) throw Failure{words[i].column, fmt::format("'{}' is not a number, _ (no data) or VALUExCOUNT", words[i].text)};
    if (s.values.size() + static_cast<size_t>(repeat) > kMaxTestMinutes) throw Failure{words[i].column, "too many minutes in one series"};
    s.values.insert(s.values.end(), static_cast<size_t>(repeat), no_data ? std::nullopt : std::optional<double>(*v));
  }
  return s;
}

// expect firing|resolved|gone minute=N [server=N]
RuleTest::Expect parse_test_expect(const std::vector<Word>& words) {
  const Word& key = words[0];
  if (words.size() < 3 || (words[1].text != "firing" && words[1].text != "resolved" && words[1].text != "gone")) {
    throw Failure{key.column, "expected 'expect firing|resolved|gone minute=N [server=N]'"};
  }
  RuleTest::Expect e;
  e.event = words[1].text;
  bool has_minute = false;
  for (size_t i = 2; i < words.size(); ++i) {
    const std::string& w = words[i].text;
    const double v = w.find('=') == std::string::npos
                         ? NAN
                         : parse_number(std::string_view(w).substr(w.find('=') + 1)).value_or(NAN);
    if (w.starts_with("minute=") && std::isfinite(v)) {
      e.minute = static_cast<int64_t>(v);
      has_minute = true;
    } else if (w.starts_with("server=") && v >= 0) {
      e.server = static_cast<int64_t>(v);
    } else {
      throw Failure{words[i].column, fmt::format("'{}': expected minute=N or server=N", w)};
    }
  }
  if (!has_minute) throw Failure{key.column, "expect needs minute=N"};
  return e;
}

// An indented line of a test: rule, series, expect.
void parse_test_line(const std::vector<Word>& words, RuleTest& test) {
  const Word& key = words[0];
  if (key.text == "rule") {
    test.rule = one_value(words).text;
  } else if (key.text == "series") {
    test.series.push_back(parse_test_series(words));
  } else if (key.text == "expect") {
    test.expects.push_back(parse_test_expect(words));
  } else {
    throw Failure{key.column, fmt::format("unknown test line '{}' (rule, series, expect)", key.text)};
  }
}

// An indented line of a rule: one of its keys.
void parse_rule_line(std::string_view line, const std::vector<Word>& words, Rule& rule) {
  const Word& key = words[0];
  if (key.text == "service" || key.text == "attr") {
    const Word& w = one_value(words);
    if (!is_valid_name(w.text)) throw Failure{w.column, fmt::format("'{}' is not a valid {} name", w.text, key.text)};
    (key.text == "service" ? rule.service : rule.attr) = w.text;
  } else if (key.text == "op") {
    const Word& w = one_value(words);
    const auto op = parse_rule_op(w.text);
    if (!op) throw Failure{w.column, fmt::format("unknown op '{}' (SUM MAX MIN AVG FIRST LAST COUNT HIST_P50 HIST_P90 HIST_P99 HIST_P999)", w.text)};
    rule.op = *op;
  } else if (key.text == "per") {
    const Word& w = one_value(words);
    if (w.text != "server" && w.text != "total") throw Failure{w.column, "expected 'per server' or 'per total'"};
    rule.per_server = w.text == "server";
  } else if (key.text == "when" || key.text == "recover") {
    int column = 0;
    const std::string_view cond = rest_of(line, key, column);
    if (cond.empty()) throw Failure{key.column, fmt::format("'{}' needs a condition", key.text)};
    std::shared_ptr<const Cond> parsed = parse_cond_at(cond, column);
    if (key.text == "when") {
      rule.when = std::move(parsed);
      rule.when_text = std::string(cond);
    } else {
      rule.recover = std::move(parsed);
      rule.recover_text = std::string(cond);
    }
    if (rule.span() > kMaxSpan) throw Failure{column, "the condition reads more than five weeks back"};
  } else if (key.text == "pending") {
    rule.pending = std::max<int64_t>(1, minutes_value(words, true));
  } else if (key.text == "keep") {
    rule.keep = minutes_value(words, true);
  } else if (key.text == "repeat") {
    rule.repeat = minutes_value(words, true);
  } else if (key.text == "max_notifications") {
    const Word& w = one_value(words);
    const auto v = parse_number(w.text);
    if (!v || *v < 1 || *v > 1000 || *v != std::floor(*v)) throw Failure{w.column, "max_notifications takes 1 to 1000"};
    rule.max_notifications = static_cast<int64_t>(*v);
  } else if (key.text == "severity") {
    const Word& w = one_value(words);
    if (w.text == "info") rule.severity = Severity::kInfo;
    else if (w.text == "warning") rule.severity = Severity::kWarning;
    else if (w.text == "critical") rule.severity = Severity::kCritical;
    else throw Failure{w.column, "severity is info, warning or critical"};
  } else if (key.text == "summary" || key.text == "description") {
    const Word& w = one_value(words);
    (key.text == "summary" ? rule.summary : rule.description) = w.text;
  } else if (key.text == "label") {
    const Word& w = one_value(words);
    const size_t eq = w.text.find('=');
    if (eq == std::string::npos || eq == 0) throw Failure{w.column, "expected label NAME=VALUE"};
    rule.labels.emplace_back(w.text.substr(0, eq), w.text.substr(eq + 1));
  } else if (key.text == "notify") {
    if (words.size() < 2) throw Failure{key.column, "notify needs a target"};
    Failure failure{0, ""};
    auto t = parse_target(words, 1, failure);
    if (!t) throw failure;
    if (rule.notify.size() >= 8) throw Failure{key.column, "at most 8 notify targets"};
    rule.notify.push_back(std::move(*t));
  } else if (key.text == "escalate") {
    if (words.size() < 3) throw Failure{key.column, "expected 'escalate AFTER TARGET'"};
    const auto m = parse_minutes(words[1].text);
    if (!m || *m == 0) throw Failure{words[1].column, "escalate needs a delay in minutes (15m)"};
    Failure failure{0, ""};
    auto t = parse_target(words, 2, failure);
    if (!t) throw failure;
    rule.escalate_after = *m;
    rule.escalate_to = std::move(*t);
  } else if (key.text == "group" || key.text == "template") {
    const Word& w = one_value(words);
    if (!is_valid_group_name(w.text)) {
      throw Failure{w.column, fmt::format("'{}' is not a {} name (a capital letter, then letters and digits)", w.text,
                                          key.text)};
    }
    (key.text == "group" ? rule.group : rule.from_template) = w.text;
  } else if (key.text == "disabled") {
    if (words.size() != 1) throw Failure{words[1].column, "'disabled' takes no value"};
    rule.enabled = false;
  } else {
    throw Failure{key.column, fmt::format("unknown rule line '{}' (service, attr, op, per, when, recover, pending, keep, "
                                          "severity, summary, description, label, notify, escalate, repeat, "
                                          "max_notifications, group, template, disabled)", key.text)};
  }
}

}  // namespace

ParseResult parse_rule_file(std::string_view text) {
  ParseResult result;
  Rule* rule = nullptr;
  RuleTest* test = nullptr;
  int rule_line = 0;
  size_t rule_start = 0;
  int line_no = 0;
  size_t pos = 0;
  auto close_rule = [&](size_t end) {
    if (rule == nullptr) return;
    finish_rule(*rule, rule_line);
    rule->source = std::string(text.substr(rule_start, end - rule_start));
    while (!rule->source.empty() && (rule->source.back() == '\n' || rule->source.back() == ' ')) rule->source.pop_back();
    rule = nullptr;
  };
  try {
    while (pos <= text.size()) {
      const size_t eol = std::min(text.find('\n', pos), text.size());
      const std::string_view line = text.substr(pos, eol - pos);
      const size_t line_start = pos;
      pos = eol + 1;
      ++line_no;
      const auto words = split_words(line);
      if (words.empty()) {
        if (eol == text.size()) break;
        continue;
      }
      const Word& key = words[0];
      const bool indented = key.column > 1;
      if (!indented) {
        close_rule(line_start);
        test = nullptr;
        if (key.text == "rule") {
          if (words.size() != 2) throw Failure{key.column, "expected 'rule NAME'"};
          if (!is_valid_name(words[1].text)) {
            throw Failure{words[1].column, fmt::format("'{}' is not a valid rule name (like a service: Shop.Api.OrdersLow)", words[1].text)};
          }
          for (const auto& r : result.file.rules) {
            if (r.name == words[1].text) throw Failure{words[1].column, fmt::format("rule {} is defined twice", r.name)};
          }
          result.file.rules.emplace_back();
          rule = &result.file.rules.back();
          rule->name = words[1].text;
          rule_line = line_no;
          rule_start = line_start;
        } else if (key.text == "test") {
          if (words.size() != 2) throw Failure{key.column, "expected 'test \"NAME\"'"};
          result.file.tests.emplace_back();
          test = &result.file.tests.back();
          test->name = words[1].text;
          test->line = line_no;
        } else {
          throw Failure{key.column, fmt::format("expected 'rule NAME' or 'test \"NAME\"' at the start of a line, found '{}'", key.text)};
        }
        if (eol == text.size()) break;
        continue;
      }
      if (rule == nullptr && test == nullptr) throw Failure{key.column, "an indented line outside a rule or test"};
      if (test != nullptr) {
        parse_test_line(words, *test);
      } else {
        parse_rule_line(line, words, *rule);
      }
      if (eol == text.size()) break;
    }
    close_rule(text.size());
  } catch (const Failure& f) {
    result.error = ParseError{line_no, f.column, f.reason};
    result.file = {};
    return result;
  }
  for (const auto& t : result.file.tests) {
    const bool known = std::any_of(result.file.rules.begin(), result.file.rules.end(), [&](const Rule& r) { return r.name == t.rule; });
    if (!known) {
      result.error = ParseError{t.line, 1, fmt::format("test \"{}\" names no rule of this file ('{}')", t.name, t.rule)};
      result.file = {};
      return result;
    }
  }
  return result;
}

}  // namespace monitor::alarm
