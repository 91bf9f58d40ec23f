// Reading what etcd's JSON gateway answers: base64 keys and values, integers
// sent as strings, entries, and a watch stream's lines. Input from another
// process, so every reader here checks what it reads; none does I/O (the
// registry fuzzer reads replies through these).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "registry/registry.hpp"

namespace monitor::registry {

std::string b64(std::string_view bytes);
/// nullopt if `text` is not base64.
std::optional<std::string> unb64(std::string_view text);

/// A JSON integer field the gateway sends as a string ("revision": "12"), or 0.
int64_t gateway_int(const boost::json::object& obj, std::string_view field);

/// The entry a key-value of a range or watch reply holds under `prefix`
/// (/monitor/<kind>/), or nullopt: a key outside it or not a valid name, or
/// a value that is not JSON (then `unreadable_value` is set, for the caller
/// to count).
std::optional<Entry> entry_of_kv(std::string_view prefix, const boost::json::object& kv, bool& unreadable_value);

/// What take_stream_messages found.
enum class StreamRead {
  kMore,          // every complete line taken; read more
  kStopped,       // on_result asked to stop
  kNotAMessage,   // a line that is not a JSON object with a "result" object
  kErrorMessage,  // etcd sent an error (its text in `error`)
  kTooLong,       // `max_bytes` without a line end
};

/// Takes the complete lines at the front of `text`, a watch stream's body
/// (one JSON message per line), handing each message's "result" to
/// `on_result` (false: stop); erases what it took, leaving a partial last line.
StreamRead take_stream_messages(std::string& text, size_t max_bytes,
                                const std::function<bool(const boost::json::object&)>& on_result,
                                std::string& error);

}  // namespace monitor::registry
