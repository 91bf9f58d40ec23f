#include "agent/line_parser.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

#include "model/op.hpp"
#include "monitor/monitor.hpp"

namespace monitor::agent {
namespace {

bool parse_int(std::string_view text, int64_t& out) noexcept {
  if (text.empty()) return false;
  const char* begin = text.data();
  if (*begin == '+') ++begin;
  const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size() && begin != end;
}

// statsd values may be decimals ("12.5"); we keep int64, rounding to nearest.
bool parse_number(std::string_view text, int64_t& out) noexcept {
  if (parse_int(text, out)) return true;
  if (text.empty() || text.size() > 64) return false;
  double d = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(d)) return false;
  d = std::nearbyint(d);
  if (d < -9.2233720368547e18 || d > 9.2233720368547e18) return false;
  out = static_cast<int64_t>(d);
  return true;
}

bool is_printable(std::string_view line) noexcept {
  for (unsigned char c : line) {
    if (c < 0x20 || c == 0x7F) return false;
  }
  return true;
}

// Maps one statsd name segment onto our rule: first letter upper-cased, '_' and
// '-' dropped with the letter after them upper-cased ("queue_depth" ->
// "QueueDepth"). Returns the bytes written, 0 if the segment cannot be mapped.
size_t map_segment(std::string_view seg, char* out, size_t room) noexcept {
  size_t n = 0;
  bool upper_next = true;
  for (char c : seg) {
    if (c == '_' || c == '-') {
      upper_next = true;
      continue;
    }
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !digit) return 0;
    if (n == 0 && !letter) return 0;
    if (upper_next && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    upper_next = false;
    if (n == room) return 0;
    out[n++] = c;
  }
  return n;
}

// Maps dot-separated `name` into `out`, returning its length or 0.
size_t map_name(std::string_view name, char* out, size_t room) noexcept {
  size_t n = 0;
  while (true) {
    const size_t dot = name.find('.');
    if (n != 0) {
      if (n == room) return 0;
      out[n++] = '.';
    }
    const size_t written = map_segment(name.substr(0, dot), out + n, room - n);
    if (written == 0) return 0;
    n += written;
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  return n;
}

std::string_view next_field(std::string_view& rest, char sep) noexcept {
  const size_t at = rest.find(sep);
  std::string_view field = rest.substr(0, at);
  rest = at == std::string_view::npos ? std::string_view{} : rest.substr(at + 1);
  return field;
}

}  // namespace

std::string_view line_error_name(LineError e) noexcept {
  switch (e) {
    case LineError::kOk: return "ok";
    case LineError::kTooLong: return "too_long";
    case LineError::kBadFormat: return "bad_format";
    case LineError::kBadName: return "bad_name";
    case LineError::kBadNumber: return "bad_number";
    case LineError::kBadType: return "bad_type";
    case LineError::kCount_: break;
  }
  return "unknown";
}

LineError LineParser::parse(std::string_view line, ParsedLine& out) noexcept {
  if (line.size() > kMaxLineBytes) return LineError::kTooLong;
  if (line.empty() || !is_printable(line)) return LineError::kBadFormat;
  out = ParsedLine{};
  out.server_id = default_server_id_;
  // A statsd line has ':' in its first token; a native line never does, since
  // names cannot hold ':'.
  const size_t space = line.find(' ');
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos && colon < space) return parse_statsd(line, out);
  return parse_native(line, out);
}

LineError LineParser::parse_native(std::string_view line, ParsedLine& out) noexcept {
  if (line.back() == ' ') return LineError::kBadFormat;  // a trailing separator hides an empty field
  std::string_view fields[6];
  std::string_view rest = line;
  for (auto& field : fields) {
    if (rest.empty()) return LineError::kBadFormat;
    field = next_field(rest, ' ');
    if (field.empty()) return LineError::kBadFormat;  // doubled space
  }
  if (!rest.empty()) return LineError::kBadFormat;
  if (!is_valid_name(fields[0]) || !is_valid_name(fields[1])) return LineError::kBadName;
  out.service = fields[0];
  out.attr = fields[1];
  if (!parse_int(fields[2], out.server_id) || out.server_id < 0) return LineError::kBadNumber;
  if (!parse_int(fields[3], out.value)) return LineError::kBadNumber;
  const auto ops = model::parse_ops(fields[4]);
  if (!ops) return LineError::kBadType;
  out.ops = *ops;
  if (!parse_int(fields[5], out.time_ns) || out.time_ns < 0) return LineError::kBadNumber;
  return LineError::kOk;
}

LineError LineParser::parse_statsd(std::string_view line, ParsedLine& out) noexcept {
  std::string_view rest = line;
  const std::string_view name = next_field(rest, ':');
  const std::string_view value_text = next_field(rest, '|');
  if (name.empty() || rest.empty()) return LineError::kBadFormat;
  const std::string_view type = next_field(rest, '|');

  double rate = 1.0;
  std::string_view service_tag;
  while (!rest.empty()) {
    const std::string_view part = next_field(rest, '|');
    if (part.size() >= 2 && part[0] == '@') {
      const auto [end, ec] = std::from_chars(part.data() + 1, part.data() + part.size(), rate);
      if (ec != std::errc{} || end != part.data() + part.size() || !(rate > 0.0 && rate <= 1.0)) {
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
          if (!parse_int(val, out.server_id) || out.server_id < 0) return LineError::kBadNumber;
        } else if (key == "service") {
          service_tag = val;
        }
      }
    } else if (part.size() >= 2 && part[0] == 'T') {
      int64_t seconds = 0;
      if (!parse_int(part.substr(1), seconds) || seconds <= 0 || seconds > 4'000'000'000) {
        return LineError::kBadNumber;
      }
      out.time_ns = seconds * 1'000'000'000;
    } else if (part.size() >= 2 && part[0] == 'c' && part[1] == ':') {
      // DogStatsD container id: no meaning here.
    } else {
      return LineError::kBadFormat;
    }
  }

  if (type == "c") {
    out.ops = MONITOR_OP_SUM | MONITOR_OP_COUNT;
  } else if (type == "g") {
    if (!value_text.empty() && value_text[0] == '+') return LineError::kBadType;  // relative gauges unsupported
    out.ops = MONITOR_OP_LAST | MONITOR_OP_MAX | MONITOR_OP_MIN;
  } else if (type == "ms" || type == "h" || type == "d") {
    out.ops = MONITOR_OP_HIST | MONITOR_OP_AVG | MONITOR_OP_MAX | MONITOR_OP_MIN | MONITOR_OP_COUNT;
  } else {
    return LineError::kBadType;
  }
  if (!parse_number(value_text, out.value)) return LineError::kBadNumber;
  if (type == "c" && rate < 1.0) {
    const double scaled = std::nearbyint(static_cast<double>(out.value) / rate);
    if (!(scaled > -9.2233720368547e18 && scaled < 9.2233720368547e18)) return LineError::kBadNumber;
    out.value = static_cast<int64_t>(scaled);
  }

  // Name mapping: with a service tag the whole name is the attr; otherwise the
  // first two segments are the service and the rest the attr.
  const size_t mapped = map_name(name, attr_buf_, sizeof attr_buf_);
  if (mapped == 0) return LineError::kBadName;
  std::string_view full(attr_buf_, mapped);
  if (!service_tag.empty()) {
    const size_t service_len = map_name(service_tag, service_buf_, sizeof service_buf_);
    if (service_len == 0) return LineError::kBadName;
    out.service = std::string_view(service_buf_, service_len);
    out.attr = full;
  } else {
    const size_t first_dot = full.find('.');
    const size_t second_dot = first_dot == std::string_view::npos ? first_dot : full.find('.', first_dot + 1);
    if (second_dot == std::string_view::npos) return LineError::kBadName;
    std::memcpy(service_buf_, full.data(), second_dot);
    out.service = std::string_view(service_buf_, second_dot);
    out.attr = full.substr(second_dot + 1);
  }
  if (!is_valid_name(out.service) || !is_valid_name(out.attr)) return LineError::kBadName;
  return LineError::kOk;
}

}  // namespace monitor::agent
