// Reading typed fields of a JSON config object, with errors that name the key.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace monitor::json_fields {

/// Reads the JSON object in file `path`. Throws std::runtime_error("config
/// <path>: cannot open" / "not valid JSON: <why>" / "top level must be an object").
inline boost::json::object read_json_object(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("config {}: cannot open", path));
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(text.str(), ec);
  if (ec) throw std::runtime_error(fmt::format("config {}: not valid JSON: {}", path, ec.message()));
  if (!doc.is_object()) throw std::runtime_error(fmt::format("config {}: top level must be an object", path));
  return std::move(doc.as_object());
}

/// Sets `out` from obj[key] if present. Throws std::runtime_error("\"key\" must
/// be an integer" / "... is out of range") when it is not a fitting integer.
template <class T>
void read_int(const boost::json::object& obj, const char* key, T& out) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr) return;
  if (!v->is_int64() && !v->is_uint64()) throw std::runtime_error(fmt::format("\"{}\" must be an integer", key));
  const auto value = v->to_number<int64_t>();
  out = static_cast<T>(value);
  if (static_cast<int64_t>(out) != value) throw std::runtime_error(fmt::format("\"{}\" is out of range", key));
}

/// Sets `out` from obj[key] if present; throws unless it is a string.
inline void read_string(const boost::json::object& obj, const char* key, std::string& out) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr) return;
  if (!v->is_string()) throw std::runtime_error(fmt::format("\"{}\" must be a string", key));
  out = std::string(v->as_string());
}

/// Sets `out` from obj[key] if present; throws unless it is true or false.
inline void read_bool(const boost::json::object& obj, const char* key, bool& out) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr) return;
  if (!v->is_bool()) throw std::runtime_error(fmt::format("\"{}\" must be true or false", key));
  out = v->as_bool();
}

/// Throws naming the first key of `obj` that is not in `known`.
template <size_t N>
void check_known(const boost::json::object& obj, const char* const (&known)[N]) {
  for (const auto& kv : obj) {
    bool found = false;
    for (const char* k : known) found = found || kv.key() == k;
    if (!found) throw std::runtime_error(fmt::format("unknown key \"{}\"", std::string(kv.key())));
  }
}

}  // namespace monitor::json_fields
