#include "agent/line_parser.hpp"

#include <emmintrin.h>

#include <charconv>
#include <cstring>

#include "model/op.hpp"
#include "monitor/monitor.hpp"

namespace monitor::agent {

bool parse_int64(std::string_view text, int64_t& out) noexcept {
  const char* p = text.data();
  const char* const end = p + text.size();
  if (p == end) return false;
  const bool negative = *p == '-';
  if (*p == '+' || negative) ++p;
  if (p == end || static_cast<unsigned>(*p - '0') > 9) return false;
  if (end - p <= 18) {
    // Cannot overflow: the common case, without from_chars' generality.
    uint64_t v = 0;
    for (; p < end; ++p) {
      const auto digit = static_cast<unsigned>(*p - '0');
      if (digit > 9) return false;
      v = v * 10 + digit;
    }
    out = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }
  const char* begin = negative ? p - 1 : p;
  const auto [last, ec] = std::from_chars(begin, end, out);
  return ec == std::errc{} && last == end;
}

// Bit i of each mask describes byte i of a block of up to 64 bytes.
struct BlockMasks {
  uint64_t space = 0;
  uint64_t colon = 0;
  uint64_t pipe = 0;
  uint64_t unprintable = 0;  // < 0x20 or 0x7F
  uint64_t upper = 0;        // A-Z
  uint64_t not_name = 0;     // anything but A-Z a-z 0-9 .
  uint64_t dot = 0;
};

namespace {

// SSE2 (the x86-64 baseline): 16 bytes per compare instead of a branch per
// byte, whose mispredicts at every field end dominated line parsing.
// `readable` bytes from p may be read (>= n); bits at n and beyond are cleared.
// Separators and control bytes always; the name masks only when `names`
// (native lines: a statsd line's names are checked after mapping).
BlockMasks scan_block(const char* p, size_t n, size_t readable, bool names) noexcept {
  alignas(16) char padded[64];
  const char* buf = p;
  if (readable < 64) {
    std::memset(padded, 'A', sizeof padded);  // padding that is printable and no separator
    std::memcpy(padded, p, n);
    buf = padded;
  }
  BlockMasks m;
  const __m128i space = _mm_set1_epi8(' ');
  const __m128i colon = _mm_set1_epi8(':');
  const __m128i pipe = _mm_set1_epi8('|');
  const __m128i del = _mm_set1_epi8(0x7F);
  const __m128i low = _mm_set1_epi8(0x20);
  const int blocks = static_cast<int>((std::min<size_t>(n, 64) + 15) / 16);
  for (int k = 0; k < blocks; ++k) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf + 16 * k));
    const auto shift = static_cast<unsigned>(16 * k);
    m.space |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, space)))} << shift;
    m.colon |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, colon)))} << shift;
    m.pipe |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, pipe)))} << shift;
    const __m128i printable = _mm_cmpeq_epi8(_mm_max_epu8(v, low), v);  // v >= 0x20, unsigned
    const int bad = (~_mm_movemask_epi8(printable) & 0xFFFF) | _mm_movemask_epi8(_mm_cmpeq_epi8(v, del));
    m.unprintable |= uint64_t{static_cast<uint16_t>(bad)} << shift;
    if (!names) continue;
    // Unsigned range tests as (v - lo) <= (hi - lo) with max_epu8.
    auto in_range = [&](char lo, char hi) {
      const __m128i d = _mm_sub_epi8(v, _mm_set1_epi8(lo));
      return _mm_cmpeq_epi8(_mm_max_epu8(d, _mm_set1_epi8(static_cast<char>(hi - lo))),
                            _mm_set1_epi8(static_cast<char>(hi - lo)));
    };
    const __m128i upper = in_range('A', 'Z');
    const __m128i dot = _mm_cmpeq_epi8(v, _mm_set1_epi8('.'));
    const __m128i name_char = _mm_or_si128(_mm_or_si128(upper, in_range('a', 'z')), _mm_or_si128(in_range('0', '9'), dot));
    m.upper |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(upper))} << shift;
    m.dot |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(dot))} << shift;
    m.not_name |= uint64_t{static_cast<uint16_t>(~_mm_movemask_epi8(name_char) & 0xFFFF)} << shift;
  }
  if (n < 64) {
    const uint64_t keep = (uint64_t{1} << n) - 1;
    m.space &= keep;
    m.colon &= keep;
    m.pipe &= keep;
    m.unprintable &= keep;
    m.upper &= keep;
    m.not_name &= keep;
    m.dot &= keep;
  }
  return m;
}

// is_valid_name() on bytes [begin, end) of a block, from its masks: every
// byte a name byte, a capital first and after every dot, at least one dot,
// none last.
bool valid_name_in_block(const BlockMasks& m, size_t begin, size_t end) noexcept {
  const size_t len = end - begin;
  if (len == 0 || len > 64 || end > 64) return false;
  const uint64_t range = (len == 64 ? ~uint64_t{0} : ((uint64_t{1} << len) - 1)) << begin;
  const uint64_t dots = m.dot & range;
  const uint64_t must_be_upper = ((dots << 1) | (uint64_t{1} << begin)) & range;
  return (m.not_name & range) == 0 && dots != 0 && (must_be_upper & ~m.upper) == 0 &&
         (dots & (uint64_t{1} << (end - 1))) == 0 && (must_be_upper & dots) == 0;
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
    case LineError::kNoService: return "no_service";
    case LineError::kCount_: break;
  }
  return "unknown";
}

LineError LineParser::parse(std::string_view line, ParsedLine& out) noexcept {
  return parse(line, line.size(), out);
}

LineError LineParser::parse(std::string_view line, size_t readable, ParsedLine& out) noexcept {
  // Field by field: `out = ParsedLine{}` compiles to a `rep stos`, whose
  // start-up cost was a fifth of a short statsd line's.
  out.service = {};
  out.attr = {};
  out.server_id = default_server_id_;
  out.value = 0;
  out.ops = 0;
  out.time_ns = 0;
  out.rate_ppm = 0;
  out.kind = LineKind::kReport;
  out.member_hash = 0;
  out.name_id_cache = nullptr;
  out.cell_hint = nullptr;
  out.packed_values = {};
  if (line.size() > kMaxLineBytes) {
    // An event's free text may be long, and it is only counted: no limit
    // but the datagram's.
    if (!line.starts_with("_e{")) return LineError::kTooLong;
    out.kind = LineKind::kEvent;
    return check_event(line);
  }
  if (line.empty()) return LineError::kBadFormat;
  // One vector pass finds the separators and rejects control bytes. A native
  // line needs the first 6 spaces; a statsd line has ':' in its first token (a
  // native line never does, since names cannot hold ':') and its fields
  // after it split at '|'.
  size_t spaces[7];
  size_t space_count = 0;
  StatsdSeparators statsd;
  BlockMasks first_block;
  for (size_t base = 0; base < line.size(); base += 64) {
    const size_t n = std::min<size_t>(64, line.size() - base);
    // A native line starts with a capital (its service); a statsd name rarely does.
    const bool names = base == 0 && line[0] >= 'A' && line[0] <= 'Z';
    const BlockMasks m = scan_block(line.data() + base, n, readable - base, names);
    if (names) first_block = m;
    if (m.unprintable != 0) return LineError::kBadFormat;
    if (m.colon != 0 && statsd.colon == std::string_view::npos) {
      statsd.colon = base + static_cast<size_t>(__builtin_ctzll(m.colon));
    }
    for (uint64_t bits = m.space; bits != 0 && space_count < 7; bits &= bits - 1) {
      spaces[space_count++] = base + static_cast<size_t>(__builtin_ctzll(bits));
    }
    for (uint64_t bits = m.pipe; bits != 0; bits &= bits - 1) {
      if (statsd.pipe_count == StatsdSeparators::kMaxPipes) {
        statsd.more_pipes = true;
        break;
      }
      statsd.pipes[statsd.pipe_count++] = static_cast<uint16_t>(base + static_cast<size_t>(__builtin_ctzll(bits)));
    }
  }
  const size_t first_colon = statsd.colon;
  if ((first_colon != std::string_view::npos && (space_count == 0 || first_colon < spaces[0])) || line[0] == '_') {
    return statsd_.parse(line, statsd, out);
  }
  if (!(line[0] >= 'A' && line[0] <= 'Z')) {
    first_block = scan_block(line.data(), std::min<size_t>(64, line.size()), readable, true);
  }
  return parse_native(line, spaces, space_count, first_block, out);
}

LineError LineParser::parse_native(std::string_view line, const size_t* spaces, size_t space_count,
                                   const BlockMasks& first_block, ParsedLine& out) noexcept {
  if (space_count != 5) return LineError::kBadFormat;  // six fields, five separators
  std::string_view fields[6];
  size_t start = 0;
  for (size_t i = 0; i < 6; ++i) {
    const size_t end = i < 5 ? spaces[i] : line.size();
    if (end == start) return LineError::kBadFormat;  // an empty field: doubled, leading or trailing space
    fields[i] = std::string_view(line.data() + start, end - start);
    start = end + 1;
  }
  // Names almost always lie in the first 64 bytes, where the masks decide;
  // otherwise the scalar check does.
  const bool names_valid = spaces[1] <= 64
                               ? valid_name_in_block(first_block, 0, spaces[0]) &&
                                     valid_name_in_block(first_block, spaces[0] + 1, spaces[1])
                               : is_valid_name(fields[0]) && is_valid_name(fields[1]);
  if (!names_valid) return LineError::kBadName;
  out.service = fields[0];
  out.attr = fields[1];
  if (!parse_int64(fields[2], out.server_id) || out.server_id < 0) return LineError::kBadNumber;
  if (!parse_int64(fields[3], out.value)) return LineError::kBadNumber;
  // Clients repeat the same op text line after line: remember the last one.
  if (fields[4] != std::string_view(last_ops_text_, last_ops_len_)) {
    const auto ops = model::parse_ops(fields[4]);
    if (!ops) return LineError::kBadType;
    if (fields[4].size() <= sizeof last_ops_text_) {
      std::memcpy(last_ops_text_, fields[4].data(), fields[4].size());
      last_ops_len_ = fields[4].size();
      last_ops_ = *ops;
    }
    out.ops = *ops;
  } else {
    out.ops = last_ops_;
  }
  if (!parse_int64(fields[5], out.time_ns) || out.time_ns < 0) return LineError::kBadNumber;
  return LineError::kOk;
}

}  // namespace monitor::agent
