#include "wire/messages.hpp"

#include <algorithm>
#include <cassert>

#include "monitor/monitor.hpp"
#include "wire/byte_io.hpp"

namespace monitor::wire {
namespace {

constexpr uint8_t kSum = 1, kMax = 2, kMin = 4, kAvg = 8, kFirst = 16, kLast = 32, kHist = 128;

// Frames whose payload is bounded by construction (names are at most 64
// bytes, member lists and reasons are short) cannot exceed kMaxPayload.
template <class Fill>
bool frame(std::string& out, FrameType type, Fill&& fill) {
  std::string payload;
  ByteWriter w(payload);
  fill(w);
  return append_frame(out, type, payload);
}

// Entries per DICT frame: each is at most 5 + 2 * (1 + 64) bytes, so this
// many stay far under kMaxPayload.
constexpr size_t kDictEntriesPerFrame = 16384;
static_assert(kDictEntriesPerFrame * (5 + 2 * 65) + 8 < kMaxPayload, "a DICT frame must fit");

WireError finish(const ByteReader& r) { return r.done() ? WireError::kOk : WireError::kBadPayload; }

bool valid_role(uint8_t r) { return r >= 1 && r <= 4; }

}  // namespace

void encode(std::string& out, const Hello& m) {
  (void)frame(out, FrameType::kHello, [&](ByteWriter& w) {
    w.u64le(m.sender_id);
    w.u8(static_cast<uint8_t>(m.role));
    w.string(m.sender_name);
  });
}

WireError decode(std::string_view payload, Hello& m) {
  ByteReader r(payload);
  m.sender_id = r.u64le();
  const uint8_t role = r.u8();
  m.sender_name = r.string();
  if (!valid_role(role)) return WireError::kBadPayload;
  m.role = static_cast<Role>(role);
  return finish(r);
}

void encode(std::string& out, const HelloAck& m) {
  (void)frame(out, FrameType::kHelloAck, [&](ByteWriter& w) {
    w.u64le(m.server_id);
    w.u8(static_cast<uint8_t>(m.role));
    w.string(m.server_name);
    w.u64le(m.last_sequence);
  });
}

WireError decode(std::string_view payload, HelloAck& m) {
  ByteReader r(payload);
  m.server_id = r.u64le();
  const uint8_t role = r.u8();
  m.server_name = r.string();
  m.last_sequence = r.u64le();
  if (!valid_role(role)) return WireError::kBadPayload;
  m.role = static_cast<Role>(role);
  return finish(r);
}

void encode(std::string& out, const std::vector<DictEntry>& m) {
  for (size_t first = 0; first < m.size() || (first == 0 && m.empty()); first += kDictEntriesPerFrame) {
    const size_t end = std::min(m.size(), first + kDictEntriesPerFrame);
    (void)frame(out, FrameType::kDict, [&](ByteWriter& w) {
      w.varint(end - first);
      for (size_t i = first; i < end; ++i) {
        w.varint(m[i].id);
        w.name(m[i].service);
        w.name(m[i].attr);
      }
    });
    if (m.empty()) break;
  }
}

WireError decode(std::string_view payload, std::vector<DictEntry>& m) {
  ByteReader r(payload);
  const uint64_t count = r.varint();
  if (!r.plausible_count(count, 1 + 2 * 5)) return WireError::kBadPayload;  // id + two minimal names
  m.clear();
  m.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t id = r.varint();
    const std::string_view service = r.name();
    const std::string_view attr = r.name();
    if (!r.ok() || id == 0 || id > kMaxNameId || !is_valid_name(service) || !is_valid_name(attr)) {
      return WireError::kBadPayload;
    }
    m.push_back(DictEntry{static_cast<uint32_t>(id), std::string(service), std::string(attr)});
  }
  return finish(r);
}

void encode_record(ByteWriter& w, const BatchRecord& rec, uint32_t name_id) {
  w.svarint(rec.second);
  w.varint(name_id);
  w.svarint(rec.server_id);
  w.u8(rec.ops);
  w.varint(rec.stats.count);
  const model::Stats& s = rec.stats;
  if (rec.ops & (kSum | kAvg)) w.svarint(s.sum);
  if (rec.ops & (kMax | kHist)) w.svarint(s.max);  // HIST clamps its quantiles to [min, max]
  if (rec.ops & (kMin | kHist)) w.svarint(s.min);
  if (rec.ops & kFirst) {
    w.svarint(s.first);
    w.svarint(s.first_time);
  }
  if (rec.ops & kLast) {
    w.svarint(s.last);
    w.svarint(s.last_time);
  }
  if (rec.ops & kHist) {
    size_t n = 0;
    rec.hist.for_each([&](int32_t, uint64_t) { ++n; });
    w.varint(n);
    rec.hist.for_each([&](int32_t key, uint64_t count) {
      w.svarint(key);
      w.varint(count);
    });
  }
}

WireError decode_record(ByteReader& r, BatchRecord& rec) {
  rec.second = r.svarint();
  const uint64_t name_id = r.varint();
  rec.server_id = r.svarint();
  rec.ops = r.u8();
  model::Stats& s = rec.stats;
  s = model::Stats{};
  s.count = r.varint();
  if (!r.ok() || name_id == 0 || name_id > kMaxNameId || rec.server_id < 0 || rec.ops == 0) {
    return WireError::kBadPayload;
  }
  rec.name_id = static_cast<uint32_t>(name_id);
  if (rec.ops & (kSum | kAvg)) s.sum = r.svarint();
  if (rec.ops & (kMax | kHist)) s.max = r.svarint();
  if (rec.ops & (kMin | kHist)) s.min = r.svarint();
  if (rec.ops & kFirst) {
    s.first = r.svarint();
    s.first_time = r.svarint();
  }
  if (rec.ops & kLast) {
    s.last = r.svarint();
    s.last_time = r.svarint();
  }
  rec.hist.clear();
  if (rec.ops & kHist) {
    const uint64_t buckets = r.varint();
    if (buckets > kMaxHistBuckets || !r.plausible_count(buckets, 2)) return WireError::kBadPayload;
    int64_t previous = INT64_MIN;
    for (uint64_t b = 0; b < buckets; ++b) {
      const int64_t key = r.svarint();
      const uint64_t n = r.varint();
      // Keys strictly increasing and within what bucket_key() can produce.
      if (!r.ok() || key <= previous || n == 0 || key < -8192 || key > 8192) return WireError::kBadPayload;
      previous = key;
      rec.hist.add_to_bucket(static_cast<int32_t>(key), n);
    }
  }
  return r.ok() ? WireError::kOk : WireError::kBadPayload;
}

WireError encode(std::string& out, const Batch& m) {
  const bool fits = frame(out, FrameType::kBatch, [&](ByteWriter& w) {
    w.u64le(m.sender_id);
    w.u64le(m.sequence);
    w.varint(m.records.size());
    for (const auto& rec : m.records) encode_record(w, rec, rec.name_id);
  });
  return fits ? WireError::kOk : WireError::kTooLarge;
}

WireError decode(std::string_view payload, Batch& m) {
  ByteReader r(payload);
  m.sender_id = r.u64le();
  m.sequence = r.u64le();
  const uint64_t count = r.varint();
  // A record is at least 5 bytes: second, name id, server id, ops, count.
  if (!r.plausible_count(count, 5)) return WireError::kBadPayload;
  if (count > kMaxBatchRecords) return WireError::kTooLarge;
  m.records.clear();
  m.records.resize(count);
  for (auto& rec : m.records) {
    if (const WireError e = decode_record(r, rec); e != WireError::kOk) return e;
  }
  return finish(r);
}

void encode(std::string& out, const Ack& m) {
  (void)frame(out, FrameType::kAck, [&](ByteWriter& w) {
    w.u64le(m.sender_id);
    w.u64le(m.sequence);
  });
}

WireError decode(std::string_view payload, Ack& m) {
  ByteReader r(payload);
  m.sender_id = r.u64le();
  m.sequence = r.u64le();
  return finish(r);
}

void encode(std::string& out, const Heartbeat& m) {
  (void)frame(out, FrameType::kHeartbeat, [&](ByteWriter& w) {
    w.u64le(m.sender_id);
    w.u64le(static_cast<uint64_t>(m.time_ns));
    w.varint(m.members.size());
    for (const auto& member : m.members) w.string(member);
  });
}

WireError decode(std::string_view payload, Heartbeat& m) {
  ByteReader r(payload);
  m.sender_id = r.u64le();
  m.time_ns = static_cast<int64_t>(r.u64le());
  const uint64_t count = r.varint();
  if (!r.plausible_count(count, 1)) return WireError::kBadPayload;
  m.members.clear();
  for (uint64_t i = 0; i < count; ++i) {
    const std::string_view member = r.string();
    if (!r.ok()) return WireError::kBadPayload;
    m.members.emplace_back(member);
  }
  return finish(r);
}

void encode(std::string& out, const Close& m) {
  (void)frame(out, FrameType::kClose, [&](ByteWriter& w) { w.string(m.reason); });
}

WireError decode(std::string_view payload, Close& m) {
  ByteReader r(payload);
  m.reason = r.string();
  return finish(r);
}

void encode(std::string& out, const Watermark& m) {
  (void)frame(out, FrameType::kWatermark, [&](ByteWriter& w) {
    w.u64le(m.sender_id);
    w.svarint(m.complete_before);
  });
}

WireError decode(std::string_view payload, Watermark& m) {
  ByteReader r(payload);
  m.sender_id = r.u64le();
  m.complete_before = r.svarint();
  return finish(r);
}

}  // namespace monitor::wire
