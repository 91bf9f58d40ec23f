#include "model/op.hpp"

#include <charconv>

namespace monitor::model {

std::optional<uint32_t> parse_ops(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  if (text.front() >= '0' && text.front() <= '9') {
    uint32_t mask = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), mask);
    if (ec != std::errc{} || end != text.data() + text.size() || mask == 0 || (mask & ~kAllOps) != 0) {
      return std::nullopt;
    }
    return mask;
  }
  uint32_t mask = 0;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view part = text.substr(0, comma);
    uint32_t bit = 0;
    // Decide on length and first letter first: this runs for every socket line.
    switch (part.size()) {
      case 3:
        bit = part == "SUM" ? 1 : part == "MAX" ? 2 : part == "MIN" ? 4 : part == "AVG" ? 8 : 0;
        break;
      case 4: bit = part == "LAST" ? 32 : part == "HIST" ? 128 : 0; break;
      case 5: bit = part == "FIRST" ? 16 : part == "COUNT" ? 64 : 0; break;
      default: break;
    }
    if (bit == 0) return std::nullopt;
    mask |= bit;
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) return std::nullopt;  // trailing comma
  }
  return mask;
}

}  // namespace monitor::model
