// Payloads of each frame type (docs/protocol.md, "Frame types"): plain structs
// with an encoder that appends a whole frame and a strict decoder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/log_histogram.hpp"
#include "model/stats.hpp"
#include "wire/frame.hpp"
#include "wire/wire_error.hpp"

namespace monitor::wire {

enum class Role : uint8_t { kAgent = 1, kClyde = 2, kBonnie = 3, kJudger = 4 };

constexpr std::string_view role_name(Role role) noexcept {
  switch (role) {
    case Role::kAgent: return "agent";
    case Role::kClyde: return "clyde";
    case Role::kBonnie: return "bonnie";
    case Role::kJudger: return "judger";
  }
  return "unknown";
}

struct Hello {
  uint64_t sender_id = 0;
  Role role = Role::kAgent;
  std::string sender_name;
};

struct HelloAck {
  uint64_t server_id = 0;
  Role role = Role::kBonnie;
  std::string server_name;
  uint64_t last_sequence = 0;  // highest batch of this sender already stored
};

struct DictEntry {
  uint32_t id = 0;  // 1 .. kMaxNameId
  std::string service;
  std::string attr;
};
inline constexpr uint32_t kMaxNameId = (1u << 24) - 1;

/// One series in one second: the exact mergeable state for its ops.
struct BatchRecord {
  int64_t second = 0;
  uint32_t name_id = 0;
  int64_t server_id = 0;
  uint8_t ops = 0;
  model::Stats stats;         // count always; other fields as the ops need
  model::LogHistogram hist;   // HIST only
};
inline constexpr size_t kMaxHistBuckets = 8192;
/// Records in one BATCH at most. A record decodes to ~150 bytes from as few as
/// 5 on the wire: without this a 4 MiB frame could make a receiver allocate
/// over 100 MiB. Senders cut batches at this count too (an agent's 1 MiB
/// budget holds at most ~110 000 of its records).
inline constexpr uint64_t kMaxBatchRecords = uint64_t{1} << 17;

struct Batch {
  uint64_t sender_id = 0;
  uint64_t sequence = 0;  // from 1, +1 per batch, per sender
  std::vector<BatchRecord> records;
};

struct Ack {
  uint64_t sender_id = 0;
  uint64_t sequence = 0;
};

struct Heartbeat {
  uint64_t sender_id = 0;
  int64_t time_ns = 0;
  std::vector<std::string> members;
};

struct Close {
  std::string reason;
};

/// Every second before `complete_before` that the connection's client has
/// (or, for a proxy, has received from its live senders) is sent on this
/// connection ahead of this frame: a receiver may judge those seconds whole.
struct Watermark {
  uint64_t sender_id = 0;       // the client's own, as in its HELLO
  int64_t complete_before = 0;  // Unix seconds
};

class ByteWriter;
class ByteReader;
/// One BATCH record as the payload holds it, under `name_id` (also how the
/// judger keeps pending records); the decoder checks it as decode(Batch) does.
void encode_record(ByteWriter& w, const BatchRecord& rec, uint32_t name_id);
WireError decode_record(ByteReader& r, BatchRecord& rec);

/// Each appends one complete frame to `out`.
void encode(std::string& out, const Hello& m);
void encode(std::string& out, const HelloAck& m);
/// Appends as many DICT frames as the entries need, each under kMaxPayload.
void encode(std::string& out, const std::vector<DictEntry>& m);
/// Appends the BATCH frame, or nothing and kTooLarge when its payload would
/// exceed kMaxPayload (senders cut batches at kBatchPayloadBudget first).
[[nodiscard]] WireError encode(std::string& out, const Batch& m);
void encode(std::string& out, const Ack& m);
void encode(std::string& out, const Heartbeat& m);
void encode(std::string& out, const Close& m);
void encode(std::string& out, const Watermark& m);

/// Each parses a payload of its frame type; anything else than an exact,
/// valid payload is kBadPayload and leaves `m` unspecified. A batch record's
/// name ids are not checked here (the connection's dictionary does that).
WireError decode(std::string_view payload, Hello& m);
WireError decode(std::string_view payload, HelloAck& m);
WireError decode(std::string_view payload, std::vector<DictEntry>& m);
WireError decode(std::string_view payload, Batch& m);
WireError decode(std::string_view payload, Ack& m);
WireError decode(std::string_view payload, Heartbeat& m);
WireError decode(std::string_view payload, Close& m);
WireError decode(std::string_view payload, Watermark& m);

}  // namespace monitor::wire
