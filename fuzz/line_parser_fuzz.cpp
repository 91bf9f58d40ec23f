// libFuzzer target: any bytes as a socket datagram, split and parsed as the
// agent does, by a parser with the default statsd mapping and one with rules
// and a default service. Parsed reports must satisfy the parser's promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/line_parser.hpp"
#include "monitor/monitor.hpp"

namespace {

monitor::agent::StatsdOptions with_rules() {
  monitor::agent::StatsdOptions options;
  options.rules.push_back({"http.*.requests", "Shop.Web", "Requests.$1"});
  options.rules.push_back({"a*b.*.*", "$1.$2", "$3.$1"});
  options.default_service = "Shop.Default";
  return options;
}

void check(monitor::agent::LineParser& parser, std::string_view line, size_t readable) {
  monitor::agent::ParsedLine parsed;
  if (parser.parse(line, readable, parsed) != monitor::agent::LineError::kOk) return;
  using monitor::agent::LineKind;
  if (parsed.kind == LineKind::kEvent || parsed.kind == LineKind::kServiceCheck) return;
  if (!monitor::is_valid_name(parsed.service) || !monitor::is_valid_name(parsed.attr) || parsed.ops == 0 ||
      (parsed.ops & ~0xFFu) != 0 || parsed.server_id < 0 || parsed.rate_ppm >= 1'000'000) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static monitor::agent::LineParser plain(0);
  static monitor::agent::LineParser mapped(0, with_rules());
  const std::string_view datagram(reinterpret_cast<const char*>(data), size);
  monitor::agent::for_each_line(datagram, [](std::string_view line, size_t readable) {
    check(plain, line, readable);
    check(mapped, line, readable);
  });
  return 0;
}
