// Parses the native and statsd line formats the agent takes from sockets and plugins.
#pragma once

#include <emmintrin.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "agent/statsd_line.hpp"

namespace monitor::agent {

/// Why a line was rejected; kOk otherwise.
enum class LineError {
  kOk,
  kTooLong,    // over kMaxLineBytes
  kBadFormat,  // wrong number of fields, missing ':' or '|', binary junk
  kBadName,    // a name that breaks the naming rule after mapping
  kBadNumber,  // value, server id, rate or time that does not parse or is out of range
  kBadType,    // unknown or unsupported statsd type, unknown op
  kNoService,  // a statsd name with no service: no rule, no service: tag, no default
  kCount_,
};

std::string_view line_error_name(LineError e) noexcept;

/// A decimal int64, an optional '+' first, nothing else: what every integer
/// field of a line must be.
bool parse_int64(std::string_view text, int64_t& out) noexcept;

/// One report parsed from a line. Names view the line or the parser's scratch
/// space and stay valid until the next parse() on the same parser.
enum class LineKind : uint8_t {
  kReport,
  kGauge,         // statsd "|g": also remembered, for deltas
  kGaugeDelta,    // statsd "+3|g": the value changes the gauge's last value
  kSetMember,     // statsd "|s": member_hash counts once per second
  kEvent,         // DogStatsD _e{...}: counted, not a report
  kServiceCheck,  // DogStatsD _sc|...: counted, not a report
};

struct ParsedLine {
  std::string_view service;
  std::string_view attr;
  int64_t server_id = 0;
  int64_t value = 0;
  uint32_t ops = 0;
  int64_t time_ns = 0;  // 0: "now" (the agent stamps it on receipt)
  uint32_t rate_ppm = 0;  // statsd sample rate in millionths; 0: unsampled
  LineKind kind = LineKind::kReport;
  uint64_t member_hash = 0;  // kSetMember
  // statsd: where the agent may keep the name's id for the next line of the
  // same name (0 until it does); null for native lines.
  uint32_t* name_id_cache = nullptr;
  Aggregator::CellHint* cell_hint = nullptr;  // statsd: where the name's last report went
  // DogStatsD 1.1 "name:1:2:3|d": the values after the first, in order.
  std::span<const PackedValue> packed_values;
};

struct BlockMasks;

/// Parses the agent's socket lines. See docs/agent.md for the forms:
///
///   native:  <service> <attr> <server_id> <value> <ops> <timestamp_ns>
///            e.g. "Shop.Api Queue.Count 7 42 SUM,MAX 1732176000123456789"
///            (ops: names joined by ',' or a decimal mask; timestamp 0 = now)
///   statsd:  <name>:<value>|<c|g|ms|h|d|s>[|@<rate>][|#tag:v,...][|T<unix_s>]
///            (and DogStatsD events and service checks; statsd_line.hpp)
///
/// Not thread-safe (scratch buffers); one per receiving thread.
class LineParser {
 public:
  static constexpr size_t kMaxLineBytes = 1024;

  explicit LineParser(int64_t default_server_id, const StatsdOptions& statsd = {})
      : default_server_id_(default_server_id), statsd_(statsd) {}

  LineError parse(std::string_view line, ParsedLine& out) noexcept;

  /// As parse(), when `readable` >= line.size() bytes from line.data() may be
  /// read (the rest of the datagram): lets the scan load in place.
  LineError parse(std::string_view line, size_t readable, ParsedLine& out) noexcept;

 private:
  LineError parse_native(std::string_view line, const size_t* spaces, size_t space_count,
                         const BlockMasks& first_block, ParsedLine& out) noexcept;

  const int64_t default_server_id_;
  StatsdParser statsd_;
  char last_ops_text_[24] = {};
  size_t last_ops_len_ = 0;
  uint32_t last_ops_ = 0;
};

/// Splits a datagram into lines ('\n', optional '\r'), skipping empty ones;
/// calls on_line(line, readable) where `readable` counts the bytes from the
/// line's start to the datagram's end.
template <class OnLine>
void for_each_line(std::string_view datagram, OnLine&& on_line) {
  const char* const end = datagram.data() + datagram.size();
  const char* p = datagram.data();
  while (p < end) {
    // 16 bytes per compare: a memchr call per short line cost more than the search.
    const char* nl = p;
    const __m128i newline = _mm_set1_epi8('\n');
    while (end - nl >= 16) {
      const int hits = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(nl)), newline));
      if (hits != 0) {
        nl += __builtin_ctz(static_cast<unsigned>(hits));
        break;
      }
      nl += 16;
    }
    if (end - nl < 16) {
      while (nl < end && *nl != '\n') ++nl;
    }
    std::string_view line(p, static_cast<size_t>(nl - p));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) on_line(line, static_cast<size_t>(end - p));
    p = nl + 1;
  }
}

}  // namespace monitor::agent
