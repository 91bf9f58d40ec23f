#include "registry/etcd_reply.hpp"

#include <exception>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>

namespace monitor::registry {

namespace base64 = boost::beast::detail::base64;

std::string b64(std::string_view bytes) {
  std::string out(base64::encoded_size(bytes.size()), '\0');
  out.resize(base64::encode(out.data(), bytes.data(), bytes.size()));
  return out;
}

std::optional<std::string> unb64(std::string_view text) {
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  // Room for a last group of fewer than four characters too: decoded_size()
  // counts whole groups only, and decode() writes the bytes of a short last
  // group past it (a reply that is not etcd's overflowed the heap here).
  std::string out(base64::decoded_size(text.size() + 3), '\0');
  const auto [written, read] = base64::decode(out.data(), text.data(), text.size());
  // decode() stops at the padding or at the first character not of base64.
  if (read != text.size() - padding) return std::nullopt;
  out.resize(written);
  return out;
}

int64_t gateway_int(const boost::json::object& obj, std::string_view field) {
  const auto* v = obj.if_contains(field);
  if (v == nullptr) return 0;
  if (v->is_string()) {
    try {
      return std::stoll(std::string(v->as_string()));
    } catch (const std::exception&) {
      return 0;
    }
  }
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  return 0;
}

std::optional<Entry> entry_of_kv(std::string_view prefix, const boost::json::object& kv, bool& unreadable_value) {
  unreadable_value = false;
  const auto* key = kv.if_contains("key");
  const auto* value = kv.if_contains("value");
  const auto decoded_key = key != nullptr && key->is_string() ? unb64(key->as_string()) : std::nullopt;
  if (!decoded_key || !decoded_key->starts_with(prefix)) return std::nullopt;
  std::string name = decoded_key->substr(prefix.size());
  if (!is_valid_key(name)) return std::nullopt;  // someone else's key under our prefix
  const auto text = value != nullptr && value->is_string() ? unb64(value->as_string()) : std::nullopt;
  boost::system::error_code ec;
  boost::json::value parsed = text ? boost::json::parse(*text, ec) : boost::json::value();
  if (!text || ec) {
    unreadable_value = true;
    return std::nullopt;
  }
  return Entry{std::move(name), std::move(parsed), gateway_int(kv, "lease") != 0, gateway_int(kv, "version")};
}

StreamRead take_stream_messages(std::string& text, size_t max_bytes,
                                const std::function<bool(const boost::json::object&)>& on_result,
                                std::string& error) {
  size_t start = 0;
  StreamRead outcome = StreamRead::kMore;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos;) {
    boost::system::error_code parse_ec;
    const boost::json::value message = boost::json::parse(std::string_view(text).substr(start, nl - start), parse_ec);
    start = nl + 1;
    if (parse_ec || !message.is_object()) return StreamRead::kNotAMessage;
    const auto& obj = message.as_object();
    if (const auto* err = obj.if_contains("error"); err != nullptr) {
      error = boost::json::serialize(*err);
      return StreamRead::kErrorMessage;
    }
    const auto* result = obj.if_contains("result");
    if (result == nullptr || !result->is_object()) return StreamRead::kNotAMessage;
    if (!on_result(result->as_object())) {
      outcome = StreamRead::kStopped;
      break;
    }
  }
  text.erase(0, start);
  if (outcome == StreamRead::kMore && text.size() > max_bytes) return StreamRead::kTooLong;
  return outcome;
}

}  // namespace monitor::registry
