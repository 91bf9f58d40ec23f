// Reading an HTTP request's query string: one parser for the judger's query
// API and the dashboard's.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace monitor::net {

/// Decodes %XX escapes and '+' (a space); false on a '%' without two hex digits.
bool decode_component(std::string_view in, std::string& out);

/// Parses "a=1&b=x%20y" into `out` (a later key wins); false on a bad escape.
bool parse_query_string(std::string_view query, std::map<std::string, std::string>& out);

/// A whole decimal int64 (no sign but '-', no spaces, nothing after it).
bool parse_int(const std::string& text, int64_t& out);

}  // namespace monitor::net
