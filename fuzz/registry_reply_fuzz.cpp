// libFuzzer target: what etcd's JSON gateway answers, as the registry reads
// it. The first byte picks how the rest arrives: as a watch stream's body in
// reads of 1-256 bytes (lines of JSON messages whose events carry
// key-values), or as one range reply (its "kvs"). Nothing may crash, grow
// without bound, or take a key outside /monitor/<kind>/ or a name that is
// not a valid key for an entry.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "registry/etcd_reply.hpp"

namespace {

using namespace monitor::registry;

constexpr const char* kPrefixes[] = {"/monitor/services/", "/monitor/assignments/", "/monitor/judgers/",
                                     "/monitor/users/"};
constexpr size_t kMaxBytes = 1 << 16;

void read_kvs(const boost::json::value* kvs) {
  if (kvs == nullptr || !kvs->is_array()) return;
  for (const auto& kv : kvs->as_array()) {
    if (!kv.is_object()) continue;
    for (const char* prefix : kPrefixes) {
      bool unreadable = false;
      const auto entry = entry_of_kv(prefix, kv.as_object(), unreadable);
      if (entry && (unreadable || !is_valid_key(entry->name))) std::abort();
      (void)gateway_int(kv.as_object(), "mod_revision");
    }
  }
}

// What the watch reads of each message: the revisions, then each event's key-value.
bool on_result(const boost::json::object& result) {
  if (const auto* header = result.if_contains("header"); header != nullptr && header->is_object()) {
    (void)gateway_int(header->as_object(), "revision");
  }
  (void)gateway_int(result, "compact_revision");
  const auto* events = result.if_contains("events");
  if (events == nullptr || !events->is_array()) return true;
  for (const auto& event : events->as_array()) {
    if (!event.is_object()) continue;
    if (const auto* kv = event.as_object().if_contains("kv"); kv != nullptr && kv->is_object()) {
      boost::json::array one;
      one.push_back(*kv);
      const boost::json::value kvs(std::move(one));
      read_kvs(&kvs);
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] == 0xFF) {
    boost::system::error_code ec;
    const boost::json::value reply = boost::json::parse(input, ec);
    if (!ec && reply.is_object()) read_kvs(reply.as_object().if_contains("kvs"));
    return 0;
  }
  const size_t chunk = size_t{data[0]} + 1;
  std::string text;
  std::string error;
  for (size_t at = 0; at < input.size(); at += chunk) {
    text.append(input.substr(at, chunk));
    const StreamRead read = take_stream_messages(text, kMaxBytes, on_result, error);
    if (text.size() > kMaxBytes + chunk) std::abort();  // kept more than one partial line
    if (read != StreamRead::kMore) break;
    if (text.find('\n') != std::string::npos) std::abort();  // a complete line left untaken
  }
  return 0;
}
