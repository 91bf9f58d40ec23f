#include "agent/statsd_line.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "agent/aggregator.hpp"
#include "agent/line_parser.hpp"
#include "common/hash.hpp"
#include "monitor/monitor.hpp"

namespace monitor::agent {
namespace {

bool is_letter(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

std::string_view next_field(std::string_view& rest, char sep) noexcept {
  const size_t at = rest.find(sep);
  std::string_view field = rest.substr(0, at);
  rest = at == std::string_view::npos ? std::string_view{} : rest.substr(at + 1);
  return field;
}

// statsd values may be decimals ("12.5"); the model keeps int64, so they are
// rounded to the nearest integer.
bool parse_number(std::string_view text, int64_t& out) noexcept {
  if (parse_int64(text, out)) return true;
  if (text.empty() || text.size() > 64) return false;
  if (text[0] == '+') text.remove_prefix(1);
  double d = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(d)) return false;
  d = std::nearbyint(d);
  if (d < -9.2233720368547e18 || d > 9.2233720368547e18) return false;
  out = static_cast<int64_t>(d);
  return true;
}

// memcmp(a, b, n) == 0 for the short keys of the name cache, inline: the
// library call and its dispatch cost more than comparing a name. Reads only
// [a, a + n) and [b, b + n); the last word may overlap the one before.
bool short_bytes_equal(const char* a, const char* b, size_t n) noexcept {
  if (n >= 8) {
    uint64_t x, y;
    for (size_t i = 0; i + 8 <= n; i += 8) {
      std::memcpy(&x, a + i, 8);
      std::memcpy(&y, b + i, 8);
      if (x != y) return false;
    }
    std::memcpy(&x, a + n - 8, 8);
    std::memcpy(&y, b + n - 8, 8);
    return x == y;
  }
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// The name cache's hash: one multiply for a name of up to 16 bytes (two
// loads that may overlap), where hash_bytes chains three; it need not be
// stable across processes, only within this one.
uint64_t cache_hash(std::string_view name, std::string_view tag) noexcept {
  constexpr uint64_t k0 = 0x9E3779B97F4A7C15ULL, k1 = 0xC2B2AE3D27D4EB4FULL;
  const char* p = name.data();
  const size_t n = name.size();
  uint64_t a, b;
  if (n >= 8 && n <= 16) {
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + n - 8, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);
    a = lo;
    b = hi;
  } else {
    a = hash_bytes(p, n, k0);  // longer (or under 4 bytes): the general hash
    b = 0;
  }
  uint64_t h = mix64(a ^ k0 ^ (uint64_t{n} << 56), b ^ k1);
  if (!tag.empty()) h = hash_bytes(tag.data(), tag.size(), h);
  return h;
}

// Matches one segment against a pattern with at most one '*'; the part the
// star matched goes to `capture`.
bool match_segment(std::string_view pattern, std::string_view segment, std::string_view& capture) noexcept {
  const size_t star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == segment;
  const std::string_view before = pattern.substr(0, star);
  const std::string_view after = pattern.substr(star + 1);
  if (segment.size() < before.size() + after.size() + 1) return false;  // the star matches something
  if (segment.substr(0, before.size()) != before || segment.substr(segment.size() - after.size()) != after) return false;
  capture = segment.substr(before.size(), segment.size() - before.size() - after.size());
  return true;
}

std::vector<std::string> split_segments(std::string_view text) {
  std::vector<std::string> out;
  while (true) {
    const size_t dot = text.find('.');
    out.emplace_back(text.substr(0, dot));
    if (dot == std::string_view::npos) return out;
    text.remove_prefix(dot + 1);
  }
}

// Writes `templ` with $1..$9 replaced by `captures` into out; 0 when it does not fit.
size_t substitute(std::string_view templ, const std::string_view* captures, size_t capture_count, char* out,
                  size_t room) noexcept {
  size_t n = 0;
  for (size_t i = 0; i < templ.size(); ++i) {
    std::string_view piece = templ.substr(i, 1);
    if (templ[i] == '$' && i + 1 < templ.size() && templ[i + 1] >= '1' && templ[i + 1] <= '9') {
      const size_t k = static_cast<size_t>(templ[i + 1] - '1');
      piece = k < capture_count ? captures[k] : std::string_view{};
      ++i;
    }
    if (n + piece.size() > room) return 0;
    if (!piece.empty()) std::memcpy(out + n, piece.data(), piece.size());
    n += piece.size();
  }
  return n;
}

}  // namespace

// The '|' after a field: from the scan's offsets while they last, then by search.
class StatsdParser::PipeCursor {
 public:
  PipeCursor(std::string_view line, const StatsdSeparators& separators) noexcept
      : line_(line), separators_(separators) {
    // Pipes before the colon belong to the name.
    while (k_ < separators.pipe_count && separators.pipes[k_] < separators.colon) ++k_;
  }
  /// The next '|' at or after `from`, or the line's end.
  size_t next(size_t from) noexcept {
    if (k_ < separators_.pipe_count) return separators_.pipes[k_++];
    if (!separators_.more_pipes) return line_.size();
    const size_t at = line_.find('|', from);
    return at == std::string_view::npos ? line_.size() : at;
  }

 private:
  std::string_view line_;
  const StatsdSeparators& separators_;
  size_t k_ = 0;
};

LineError check_event(std::string_view line) noexcept {
  return line.find('}') != std::string_view::npos && line.find(':') != std::string_view::npos ? LineError::kOk
                                                                                               : LineError::kBadFormat;
}

size_t statsd_name_transform(std::string_view text, std::string_view prefix, char* out, size_t room) noexcept {
  size_t n = 0;
  size_t segments = 0;
  size_t first_segment_end = 0;
  auto put = [&](char c) {
    if (n == room) return false;
    out[n++] = c;
    return true;
  };
  while (!text.empty()) {
    const std::string_view seg = next_field(text, '.');
    bool word_start = true;
    bool wrote = false;
    for (char c : seg) {
      if (!is_letter(c) && !is_digit(c)) {
        word_start = true;
        continue;
      }
      if (!wrote) {
        if (segments != 0 && !put('.')) return 0;
        if (is_digit(c) && !put('N')) return 0;
        wrote = true;
      }
      if (word_start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      word_start = false;
      if (!put(c)) return 0;
    }
    if (wrote) {
      if (segments == 0) first_segment_end = n;
      ++segments;
    }
  }
  if (segments == 0) return 0;
  if (segments == 1) {
    // The model wants two segments: the name goes under the prefix.
    if (prefix.size() + 1 + first_segment_end > room) return 0;
    std::memmove(out + prefix.size() + 1, out, first_segment_end);
    std::memcpy(out, prefix.data(), prefix.size());
    out[prefix.size()] = '.';
    n = prefix.size() + 1 + first_segment_end;
  }
  return n;
}

void StatsdOptions::validate() const {
  bool prefix_ok = !prefix.empty() && prefix.size() <= 32 && prefix[0] >= 'A' && prefix[0] <= 'Z';
  for (char c : prefix) prefix_ok = prefix_ok && (is_letter(c) || is_digit(c));
  if (!prefix_ok) throw std::invalid_argument("statsd prefix \"" + prefix + "\" must be one name segment, e.g. Statsd");
  if (!default_service.empty() && !is_valid_name(default_service)) {
    throw std::invalid_argument("statsd default_service \"" + default_service +
                                "\" is not a valid service name (e.g. Shop.Api)");
  }
  for (const StatsdRule& rule : rules) {
    if (rule.match.empty() || rule.service.empty() || rule.attr.empty()) {
      throw std::invalid_argument("a statsd mapping rule needs match, service and attr (rule \"" + rule.match + "\")");
    }
    for (const std::string& seg : split_segments(rule.match)) {
      if (seg.empty()) throw std::invalid_argument("statsd rule \"" + rule.match + "\" has an empty segment");
      if (seg.find('*') != seg.rfind('*')) {
        throw std::invalid_argument("statsd rule \"" + rule.match + "\": at most one * per segment");
      }
    }
  }
}

StatsdParser::StatsdParser(const StatsdOptions& options) : options_(options), cache_(kCachedNames) {
  for (const StatsdRule& rule : options_.rules) {
    rules_.push_back(CompiledRule{split_segments(rule.match), rule.service, rule.attr});
  }
}

bool StatsdParser::apply_rule(const CompiledRule& rule, std::string_view name, ParsedLine& out) noexcept {
  std::string_view captures[9];
  size_t capture_count = 0;
  size_t i = 0;
  while (true) {
    const std::string_view seg = next_field(name, '.');
    if (i == rule.segments.size()) return false;
    std::string_view capture;
    if (!match_segment(rule.segments[i], seg, capture)) return false;
    if (capture.data() != nullptr && capture_count < 9) captures[capture_count++] = capture;
    ++i;
    if (name.empty()) break;
  }
  if (i != rule.segments.size()) return false;
  // A matched rule decides the names: when they do not map, the line is refused (kBadName).
  out.service = {};
  out.attr = {};
  size_t n = substitute(rule.service, captures, capture_count, scratch_, sizeof scratch_);
  size_t mapped = n == 0 ? 0 : statsd_name_transform({scratch_, n}, options_.prefix, service_buf_, sizeof service_buf_);
  if (mapped == 0) return true;
  out.service = {service_buf_, mapped};
  n = substitute(rule.attr, captures, capture_count, scratch_, sizeof scratch_);
  mapped = n == 0 ? 0 : statsd_name_transform({scratch_, n}, options_.prefix, attr_buf_, sizeof attr_buf_);
  if (mapped != 0) out.attr = {attr_buf_, mapped};
  return true;
}

LineError StatsdParser::map_names(std::string_view name, std::string_view service_tag, ParsedLine& out) noexcept {
  for (const CompiledRule& rule : rules_) {
    if (apply_rule(rule, name, out)) {
      return out.service.empty() || out.attr.empty() ? LineError::kBadName : LineError::kOk;
    }
  }
  std::string_view service;
  if (!service_tag.empty()) {
    const size_t n = statsd_name_transform(service_tag, options_.prefix, service_buf_, sizeof service_buf_);
    if (n == 0) return LineError::kBadName;
    service = {service_buf_, n};
  } else if (!options_.default_service.empty()) {
    service = options_.default_service;
  }
  const size_t n = statsd_name_transform(name, options_.prefix, attr_buf_, sizeof attr_buf_);
  if (n == 0) return LineError::kBadName;
  std::string_view attr(attr_buf_, n);
  if (service.empty()) {
    // No service from a tag, a rule or the config: "shop.api.queue.depth"
    // carries its own, in its first two segments (at least four in all).
    const size_t first_dot = attr.find('.');
    const size_t second_dot = attr.find('.', first_dot + 1);
    if (first_dot == std::string_view::npos || second_dot == std::string_view::npos ||
        attr.find('.', second_dot + 1) == std::string_view::npos) {
      return LineError::kNoService;
    }
    std::memcpy(service_buf_, attr.data(), second_dot);
    service = {service_buf_, second_dot};
    attr.remove_prefix(second_dot + 1);
  }
  out.service = service;
  out.attr = attr;
  return is_valid_name(out.service) && is_valid_name(out.attr) ? LineError::kOk : LineError::kBadName;
}

LineError StatsdParser::map_names_cached(std::string_view name, std::string_view service_tag,
                                        ParsedLine& out) noexcept {
  if (name.size() + service_tag.size() > sizeof(CachedName::key)) return map_names(name, service_tag, out);
  // Hashed and compared in place: a copy of the key cost as much as the lookup.
  const uint64_t hash = cache_hash(name, service_tag);
  CachedName& entry = cache_[hash & (kCachedNames - 1)];
  if (entry.hash == hash && entry.name_len == name.size() && entry.tag_len == service_tag.size() &&
      short_bytes_equal(entry.key, name.data(), name.size()) &&
      short_bytes_equal(entry.key + name.size(), service_tag.data(), service_tag.size())) {
    out.service = {entry.service, entry.service_len};
    out.attr = {entry.attr, entry.attr_len};
    out.name_id_cache = &entry.name_id;
    out.cell_hint = &entry.cell_hint;
    return LineError::kOk;
  }
  const LineError error = map_names(name, service_tag, out);
  if (error != LineError::kOk) return error;
  entry.hash = hash;
  entry.name_len = static_cast<uint8_t>(name.size());
  entry.tag_len = static_cast<uint8_t>(service_tag.size());
  std::memcpy(entry.key, name.data(), name.size());
  if (!service_tag.empty()) std::memcpy(entry.key + name.size(), service_tag.data(), service_tag.size());
  entry.service_len = static_cast<uint8_t>(out.service.size());
  entry.attr_len = static_cast<uint8_t>(out.attr.size());
  std::memcpy(entry.service, out.service.data(), out.service.size());
  std::memcpy(entry.attr, out.attr.data(), out.attr.size());
  entry.name_id = 0;
  entry.cell_hint = {};
  out.service = {entry.service, entry.service_len};
  out.attr = {entry.attr, entry.attr_len};
  out.name_id_cache = &entry.name_id;
  out.cell_hint = &entry.cell_hint;
  return LineError::kOk;
}

LineError StatsdParser::parse_fields(std::string_view line, PipeCursor& pipes, size_t type_end, ParsedLine& out,
                                     std::string_view& service_tag, double& rate) noexcept {
  for (size_t start = type_end + 1; start < line.size();) {
    const size_t field_end = pipes.next(start);
    const std::string_view part = line.substr(start, field_end - start);
    start = field_end + 1;
    if (part.size() >= 2 && part[0] == '@') {
      const auto [end, ec] = std::from_chars(part.data() + 1, part.data() + part.size(), rate);
      if (ec != std::errc{} || end != part.data() + part.size() || !(rate >= 1e-6 && rate <= 1.0)) {
        return LineError::kBadNumber;
      }
    } else if (part.size() >= 2 && part[0] == '#') {
      std::string_view tags = part.substr(1);
      while (!tags.empty()) {
        const std::string_view tag = next_field(tags, ',');
        const size_t colon = tag.find(':');
        if (colon == std::string_view::npos) continue;
        const std::string_view key = tag.substr(0, colon);
        const std::string_view val = tag.substr(colon + 1);
        if (key == "server_id" || key == "server") {
          if (!parse_int64(val, out.server_id) || out.server_id < 0) return LineError::kBadNumber;
        } else if (key == "service") {
          service_tag = val;
        }
      }
    } else if (part.size() >= 2 && part[0] == 'T') {
      int64_t seconds = 0;
      if (!parse_int64(part.substr(1), seconds) || seconds <= 0 || seconds > 4'000'000'000) {
        return LineError::kBadNumber;
      }
      out.time_ns = seconds * 1'000'000'000;
    }
    // Any other field (DogStatsD's c: container, e: external env, card:
    // cardinality, and whatever comes next) carries nothing for us: skipped.
  }
  return LineError::kOk;
}

bool StatsdParser::is_gauge_delta(std::string_view value) const noexcept {
  return options_.signed_gauge_is_delta && !value.empty() && (value[0] == '+' || value[0] == '-');
}

LineError StatsdParser::parse(std::string_view line, const StatsdSeparators& separators, ParsedLine& out) noexcept {
  // DogStatsD events and service checks: not reports, counted and skipped.
  if (line[0] == '_') {
    if (line.starts_with("_e{")) {
      out.kind = LineKind::kEvent;
      return check_event(line);
    }
    if (line.starts_with("_sc|")) {
      out.kind = LineKind::kServiceCheck;
      return LineError::kOk;
    }
  }
  // name:value|type[|field]...: the separators' offsets come from the scan,
  // so no field costs a search (whose mispredicted ends dominated).
  const size_t colon = separators.colon;
  if (colon == 0 || colon == std::string_view::npos) return LineError::kBadFormat;
  PipeCursor pipes(line, separators);
  const size_t value_end = pipes.next(colon + 1);
  if (value_end + 1 >= line.size()) return LineError::kBadFormat;  // no type
  const size_t type_end = pipes.next(value_end + 1);
  const std::string_view name = line.substr(0, colon);
  std::string_view value_text = line.substr(colon + 1, value_end - colon - 1);
  const std::string_view type = line.substr(value_end + 1, type_end - value_end - 1);

  double rate = 1.0;
  std::string_view service_tag;
  if (type_end + 1 < line.size()) {
    const LineError error = parse_fields(line, pipes, type_end, out, service_tag, rate);
    if (error != LineError::kOk) return error;
  }

  bool sampled_type = true;
  const char t0 = type.empty() ? '\0' : type[0];
  if (type.size() == 1 && t0 == 'c') {
    out.ops = MONITOR_OP_SUM | MONITOR_OP_COUNT;
  } else if (type.size() == 1 && t0 == 'g') {
    out.ops = MONITOR_OP_LAST | MONITOR_OP_MAX | MONITOR_OP_MIN;
    sampled_type = false;  // a gauge is a state, not a count: DogStatsD ignores its rate too
    out.kind = is_gauge_delta(value_text) ? LineKind::kGaugeDelta : LineKind::kGauge;
  } else if (type == "ms" || (type.size() == 1 && (t0 == 'h' || t0 == 'd'))) {
    out.ops = MONITOR_OP_HIST | MONITOR_OP_AVG | MONITOR_OP_MAX | MONITOR_OP_MIN | MONITOR_OP_COUNT;
  } else if (type.size() == 1 && t0 == 's') {
    out.ops = MONITOR_OP_SUM;
    out.kind = LineKind::kSetMember;
    sampled_type = false;
  } else {
    return LineError::kBadType;
  }
  if (out.kind == LineKind::kSetMember) {
    // A member is any text, ':' included: sets are never packed.
    if (value_text.empty()) return LineError::kBadNumber;
    out.member_hash = hash_bytes(value_text.data(), value_text.size(), 0x5E75E75E75E75E7ULL);
    out.value = 1;
  } else {
    size_t packed = 0;  // a loop, not find(): values are a few bytes, and a library call costs more
    while (packed < value_text.size() && value_text[packed] != ':') ++packed;
    if (packed != value_text.size()) {
      // DogStatsD 1.1 packs values of one name: "name:1:2:3|d". Each is
      // checked now, so a line is taken whole or refused whole.
      packed_.clear();
      std::string_view rest = value_text.substr(packed + 1);
      value_text = value_text.substr(0, packed);
      for (size_t start = 0;;) {
        const size_t end = std::min(rest.find(':', start), rest.size());
        const std::string_view text = rest.substr(start, end - start);
        PackedValue v{0, is_gauge_delta(text)};
        if (!parse_number(text, v.value)) return LineError::kBadNumber;
        packed_.push_back(v);
        if (end == rest.size()) break;
        start = end + 1;
      }
      out.packed_values = packed_;
    }
    if (!parse_number(value_text, out.value)) return LineError::kBadNumber;
  }
  if (sampled_type && rate < 1.0) {
    // Millionths: rates of up to six decimals, as clients write them, are exact.
    const auto ppm = static_cast<uint32_t>(std::llround(rate * Aggregator::kRateOne));
    out.rate_ppm = ppm >= Aggregator::kRateOne ? 0 : ppm;
  }
  return map_names_cached(name, service_tag, out);
}

}  // namespace monitor::agent
