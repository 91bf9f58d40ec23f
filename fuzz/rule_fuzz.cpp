// libFuzzer target: what a judger reads from the registry. The first byte
// picks the reader; the rest is a rule file's text or a registry entry's JSON.
// Nothing may crash, hang or recurse without bound; a rule that parses must
// survive its registry round trip and evaluate on a short series.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "alarm/evaluator.hpp"
#include "alarm/records.hpp"
#include "alarm/replay.hpp"
#include "alarm/rule.hpp"

namespace {

using namespace monitor::alarm;

void check_rule_file(std::string_view text) {
  const ParseResult parsed = parse_rule_file(text);
  if (parsed.error) return;
  MinuteSeries series(64);
  for (int64_t m = 1; m <= 8; ++m) series.put(m, static_cast<double>(m * 37 % 11) - 3);
  for (const Rule& rule : parsed.file.rules) {
    std::string error;
    const auto stored = rule_from_value(rule_value(rule, true), error);
    if (!stored || stored->name != rule.name || stored->when_text != rule.when_text) std::abort();
    AlarmState state;
    for (int64_t m = 1; m <= 8; ++m) step(rule, state, -1, m, series);
  }
}

void check_entry(std::string_view text) {
  boost::system::error_code ec;
  boost::json::parse_options options;
  options.max_depth = 64;  // what boost::json::parse allows by default; deeper input is an error, not a crash
  const boost::json::value value = boost::json::parse(text, ec, {}, options);
  if (ec) return;
  std::string error;
  (void)rule_from_value(value, error);
  (void)alarms_from_value(value);
  (void)silence_from_value("s1", value);
  History history;
  size_t skipped = 0;
  (void)add_points_reply(value, history, skipped);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) check_entry(text);
  else check_rule_file(text);
  return 0;
}
