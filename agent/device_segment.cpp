#include "agent/device_segment.hpp"

namespace monitor::agent {
namespace {

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

}  // namespace

std::string device_segment(std::string_view name) {
  if (name == "/") return "Root";
  std::string out;
  bool next_upper = true;
  for (const char c : name) {
    if (!is_alnum(c)) {
      next_upper = true;
      continue;
    }
    if (out.empty() && c >= '0' && c <= '9') out.push_back('N');
    out.push_back(next_upper ? upper(c) : c);
    next_upper = false;
    if (out.size() >= 24) break;
  }
  return out;
}

}  // namespace monitor::agent
