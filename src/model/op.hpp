// The ops of docs/design.md section 1: names, bits and parsing.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace monitor::model {

struct OpInfo {
  uint32_t bit;
  std::string_view name;
};

inline constexpr std::array<OpInfo, 8> kOps{{
    {1, "SUM"}, {2, "MAX"}, {4, "MIN"}, {8, "AVG"},
    {16, "FIRST"}, {32, "LAST"}, {64, "COUNT"}, {128, "HIST"},
}};
inline constexpr uint32_t kAllOps = 0xFF;

/// HIST minutes are stored as four series, one per quantile, under these op codes.
inline constexpr uint32_t kOpHistP50 = 1280;
inline constexpr uint32_t kOpHistP90 = 1281;
inline constexpr uint32_t kOpHistP99 = 1282;
inline constexpr uint32_t kOpHistP999 = 1283;

/// The name of a single op bit ("SUM"), or "" for anything else.
constexpr std::string_view op_name(uint32_t bit) noexcept {
  for (const auto& op : kOps) {
    if (op.bit == bit) return op.name;
  }
  return {};
}

/// Parses "SUM", "SUM,MAX" or a decimal mask "3". Empty optional when any part
/// is unknown or the mask is 0 or has bits beyond kAllOps.
std::optional<uint32_t> parse_ops(std::string_view text) noexcept;

}  // namespace monitor::model
