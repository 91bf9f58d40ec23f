// A series as a line of block characters, for a terminal or a message.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace monitor {

/// One bar per value, scaled between the smallest and the largest; a
/// missing value is a space, a flat series sits mid-height.
inline std::string sparkline(const std::vector<std::optional<double>>& values) {
  static const char* kBars[] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& v : values) {
    if (v) lo = std::min(lo, *v), hi = std::max(hi, *v);
  }
  std::string out;
  for (const auto& v : values) {
    if (!v) {
      out += " ";
      continue;
    }
    const int i = hi > lo ? static_cast<int>((*v - lo) / (hi - lo) * 7.0 + 0.5) : 3;
    out += kBars[std::clamp(i, 0, 7)];
  }
  return out;
}

}  // namespace monitor
