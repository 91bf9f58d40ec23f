// Mapping statsd names to services and attrs (the agent's statsd_mappings).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/aggregator.hpp"

namespace monitor::agent {

enum class LineError;
struct ParsedLine;

/// One mapping rule of the agent's config: a statsd name matching `match`
/// (dot-separated segments; `*` in a segment matches any part of one
/// segment and is captured as $1, $2, ...) becomes `service` / `attr`, with
/// the captures substituted, then transformed by the naming rule below.
struct StatsdRule {
  std::string match;
  std::string service;
  std::string attr;
};

/// How statsd and DogStatsD lines map onto (service, attr). docs/socket.md.
struct StatsdOptions {
  std::vector<StatsdRule> rules;  // tried in order, first match wins
  std::string default_service;    // for names no rule and no service: tag maps; empty: none
  std::string prefix = "Statsd";  // a one-segment name N becomes <prefix>.N
  bool signed_gauge_is_delta = true;  // "+3|g" / "-3|g" change the gauge (statsd); false: DogStatsD values

  /// Throws std::invalid_argument saying what is wrong with a rule.
  void validate() const;
};

/// Writes `text` in the model's naming rule into `out` (room bytes): segments
/// at '.', empty ones skipped; in a segment, letters and digits are kept and
/// any other byte ends a word, whose next letter is capitalised
/// ("queue_depth" -> "QueueDepth", "checkout-api" -> "CheckoutApi"); a
/// segment that starts with a digit gets an "N" ("2xx" -> "N2xx"); a single
/// segment goes under `prefix`. Returns the length, or 0 when nothing is
/// left or it does not fit.
size_t statsd_name_transform(std::string_view text, std::string_view prefix, char* out, size_t room) noexcept;

/// One more value of a packed DogStatsD line ("name:1:2:3|d").
struct PackedValue {
  int64_t value;
  bool gauge_delta;  // a gauge's "+N"/"-N" under statsd's rule
};

/// A DogStatsD event ("_e{title_len,text_len}:title|text|..."): kOk when it
/// has its header, else kBadFormat. Events are counted, never reports.
LineError check_event(std::string_view line) noexcept;

/// Where a statsd line's separators are, as LineParser's vector scan found
/// them: the first ':' and the first kMaxPipes '|' (offsets in the line).
struct StatsdSeparators {
  static constexpr size_t kMaxPipes = 12;
  size_t colon = std::string_view::npos;
  uint16_t pipes[kMaxPipes];
  size_t pipe_count = 0;
  bool more_pipes = false;  // the line has more '|' than pipes[] holds
};

/// Parses statsd / DogStatsD lines (the agent's socket lines with ':' in the
/// first token, and `_e{`, `_sc|`). Not thread-safe: one per receiving thread.
class StatsdParser {
 public:
  explicit StatsdParser(const StatsdOptions& options);

  LineError parse(std::string_view line, const StatsdSeparators& separators, ParsedLine& out) noexcept;

 private:
  struct CompiledRule {
    std::vector<std::string> segments;
    std::string service;
    std::string attr;
  };
  // The mapping is a function of (name, service tag) alone, so its results
  // are kept: a statsd stream repeats few names, and mapping one costs more
  // than the rest of the line. Direct-mapped, by a hash of the key.
  struct CachedName {
    uint64_t hash = 0;
    uint8_t name_len = 0;
    uint8_t tag_len = 0;
    uint8_t service_len = 0;
    uint8_t attr_len = 0;
    uint32_t name_id = 0;  // the agent's id, once Ingest has interned it
    Aggregator::CellHint cell_hint;
    char key[96];
    char service[64];
    char attr[64];
  };
  static constexpr size_t kCachedNames = 1024;
  class PipeCursor;
  // The fields after the type: @rate, #tags, T<time>; others skipped.
  LineError parse_fields(std::string_view line, PipeCursor& pipes, size_t type_end, ParsedLine& out,
                         std::string_view& service_tag, double& rate) noexcept;
  LineError map_names_cached(std::string_view name, std::string_view service_tag, ParsedLine& out) noexcept;
  LineError map_names(std::string_view name, std::string_view service_tag, ParsedLine& out) noexcept;
  bool apply_rule(const CompiledRule& rule, std::string_view name, ParsedLine& out) noexcept;
  // A gauge value that changes the gauge ("+3", "-3") rather than sets it: statsd's rule, unless configured off.
  bool is_gauge_delta(std::string_view value) const noexcept;

  const StatsdOptions options_;
  std::vector<CompiledRule> rules_;
  std::vector<PackedValue> packed_;  // the last line's, at most one per two bytes of it
  char service_buf_[64];
  char attr_buf_[64];
  char scratch_[256];
  std::vector<CachedName> cache_;
};

}  // namespace monitor::agent
