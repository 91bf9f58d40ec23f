// libFuzzer target: any bytes as a socket datagram, split and parsed as the
// agent does. Parsed reports must satisfy the parser's promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/line_parser.hpp"
#include "monitor/monitor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static monitor::agent::LineParser parser(0);
  const std::string_view datagram(reinterpret_cast<const char*>(data), size);
  monitor::agent::for_each_line(datagram, [](std::string_view line, size_t readable) {
    monitor::agent::ParsedLine parsed;
    if (parser.parse(line, readable, parsed) == monitor::agent::LineError::kOk) {
      if (!monitor::is_valid_name(parsed.service) || !monitor::is_valid_name(parsed.attr) || parsed.ops == 0 ||
          (parsed.ops & ~0xFFu) != 0 || parsed.server_id < 0) {
        std::abort();
      }
    }
  });
  return 0;
}
