#include <random>
#include <string>
#include <vector>

#include <boost/crc.hpp>
#include <catch2/catch.hpp>

#include "wire/byte_io.hpp"
#include "wire/crc32c.hpp"
#include "wire/dictionary.hpp"
#include "wire/frame.hpp"
#include "wire/messages.hpp"

using namespace monitor::wire;
using monitor::model::LogHistogram;
using monitor::model::Stats;

namespace {

// Decodes every frame of `bytes`, fed in pieces of `chunk` bytes.
std::vector<std::pair<FrameType, std::string>> decode_all(const std::string& bytes, size_t chunk,
                                                          WireError* error = nullptr) {
  FrameDecoder decoder;
  std::vector<std::pair<FrameType, std::string>> frames;
  for (size_t at = 0; at < bytes.size(); at += chunk) {
    decoder.feed(std::string_view(bytes).substr(at, chunk));
    Frame f{};
    FrameDecoder::Status st;
    while ((st = decoder.next(f)) == FrameDecoder::Status::kFrame) frames.emplace_back(f.type, std::string(f.payload));
    if (st == FrameDecoder::Status::kError) {
      if (error != nullptr) *error = decoder.error();
      return frames;
    }
  }
  if (error != nullptr) *error = WireError::kOk;
  return frames;
}

BatchRecord make_record(int64_t second, uint32_t name_id, int64_t server, uint8_t ops, std::mt19937_64& rng) {
  BatchRecord rec;
  rec.second = second;
  rec.name_id = name_id;
  rec.server_id = server;
  rec.ops = ops;
  for (int i = 0; i < 20; ++i) {
    const auto v = static_cast<int64_t>(rng() % 2'000'000) - 1'000'000;
    rec.stats.add(v, second * 1'000'000'000 + i);
    if (ops & 128) rec.hist.add(v);
  }
  return rec;
}

// What a record carries on the wire for its ops; the rest is not sent.
Stats carried(const BatchRecord& r) {
  Stats s;
  s.count = r.stats.count;
  if (r.ops & (1 | 8)) s.sum = r.stats.sum;
  if (r.ops & (2 | 128)) s.max = r.stats.max;  // HIST carries min and max: its quantiles are clamped to them
  if (r.ops & (4 | 128)) s.min = r.stats.min;
  if (r.ops & 16) {
    s.first = r.stats.first;
    s.first_time = r.stats.first_time;
  }
  if (r.ops & 32) {
    s.last = r.stats.last;
    s.last_time = r.stats.last_time;
  }
  return s;
}

}  // namespace

TEST_CASE("crc32c matches the standard check value and Boost.CRC on both paths", "[wire][crc]") {
  const std::string check = "123456789";
  CHECK(crc32c(0, check.data(), check.size()) == 0xE3069283u);
  CHECK(crc32c_portable(0, check.data(), check.size()) == 0xE3069283u);
  std::mt19937_64 rng(Catch::rngSeed());
  for (int trial = 0; trial < 200; ++trial) {
    std::string data(rng() % 300, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> boost_crc;
    boost_crc.process_bytes(data.data(), data.size());
    REQUIRE(crc32c(0, data.data(), data.size()) == boost_crc.checksum());
    REQUIRE(crc32c_portable(0, data.data(), data.size()) == boost_crc.checksum());
    const size_t split = data.empty() ? 0 : rng() % data.size();  // chaining equals one pass
    REQUIRE(crc32c(crc32c(0, data.data(), split), data.data() + split, data.size() - split) == boost_crc.checksum());
  }
}

TEST_CASE("varints round-trip at every width and reject overlong or overflowing forms", "[wire][varint]") {
  std::string bytes;
  ByteWriter w(bytes);
  const std::vector<int64_t> values = {0, 1, -1, 63, -64, 64, 300, -300, INT64_MAX, INT64_MIN, 1LL << 40};
  for (int64_t v : values) w.svarint(v);
  w.varint(UINT64_MAX);
  ByteReader r(bytes);
  for (int64_t v : values) CHECK(r.svarint() == v);
  CHECK(r.varint() == UINT64_MAX);
  CHECK(r.done());

  const std::string overlong_bytes = std::string(11, '\x80') + "\x01";
  ByteReader overlong(overlong_bytes);
  overlong.varint();
  CHECK_FALSE(overlong.ok());
  const std::string overflow_bytes = std::string(9, '\xFF') + "\x02";  // a 10th byte above 1
  ByteReader overflow(overflow_bytes);
  overflow.varint();
  CHECK_FALSE(overflow.ok());
  const std::string truncated_bytes("\x80\x80", 2);
  ByteReader truncated(truncated_bytes);
  truncated.varint();
  CHECK_FALSE(truncated.ok());
}

TEST_CASE("every message type round-trips through frames split at any byte", "[wire]") {
  std::mt19937_64 rng(Catch::rngSeed());
  std::string stream;
  encode(stream, Hello{42, Role::kAgent, "host-1/agent"});
  encode(stream, HelloAck{7, Role::kBonnie, "bonnie-a", 99});
  encode(stream, std::vector<DictEntry>{{1, "Shop.Api", "Orders.Placed"}, {2, "Shop.Api", "Request.LatencyUs"}});
  Batch batch{42, 100, {}};
  for (uint8_t ops : {uint8_t{1}, uint8_t{2}, uint8_t{4}, uint8_t{8}, uint8_t{16}, uint8_t{32}, uint8_t{64},
                      uint8_t{128}, uint8_t{255}, uint8_t{1 | 128}}) {
    batch.records.push_back(make_record(1'732'176'000, ops % 2 + 1, ops, ops, rng));
  }
  REQUIRE(encode(stream, batch) == WireError::kOk);
  encode(stream, Ack{42, 100});
  encode(stream, Heartbeat{7, 123456789, {"10.0.0.1:7000", "10.0.0.2:7000"}});
  encode(stream, Close{"shutting down"});
  encode(stream, Watermark{42, 1'732'176'060});

  for (size_t chunk : {size_t{1}, size_t{3}, size_t{16}, size_t{17}, stream.size()}) {
    WireError error;
    const auto frames = decode_all(stream, chunk, &error);
    REQUIRE(error == WireError::kOk);
    REQUIRE(frames.size() == 8);

    Hello hello;
    REQUIRE(frames[0].first == FrameType::kHello);
    REQUIRE(decode(frames[0].second, hello) == WireError::kOk);
    CHECK(hello.sender_id == 42);
    CHECK(hello.sender_name == "host-1/agent");
    HelloAck ack_hello;
    REQUIRE(decode(frames[1].second, ack_hello) == WireError::kOk);
    CHECK(ack_hello.last_sequence == 99);
    std::vector<DictEntry> dict;
    REQUIRE(decode(frames[2].second, dict) == WireError::kOk);
    REQUIRE(dict.size() == 2);
    CHECK(dict[1].attr == "Request.LatencyUs");
    Batch got;
    REQUIRE(decode(frames[3].second, got) == WireError::kOk);
    CHECK(got.sequence == 100);
    REQUIRE(got.records.size() == batch.records.size());
    for (size_t i = 0; i < got.records.size(); ++i) {
      const BatchRecord& want = batch.records[i];
      INFO("ops " << int(want.ops));
      CHECK(got.records[i].second == want.second);
      CHECK(got.records[i].server_id == want.server_id);
      CHECK(got.records[i].stats == carried(want));
      if (want.ops & 128) CHECK(got.records[i].hist == want.hist);
    }
    Heartbeat hb;
    REQUIRE(decode(frames[5].second, hb) == WireError::kOk);
    CHECK(hb.members == std::vector<std::string>{"10.0.0.1:7000", "10.0.0.2:7000"});
    Close close;
    REQUIRE(decode(frames[6].second, close) == WireError::kOk);
    CHECK(close.reason == "shutting down");
    Watermark watermark;
    REQUIRE(frames[7].first == FrameType::kWatermark);
    REQUIRE(decode(frames[7].second, watermark) == WireError::kOk);
    CHECK(watermark.sender_id == 42);
    CHECK(watermark.complete_before == 1'732'176'060);
  }
}

TEST_CASE("bad frames are rejected with their reason and the decoder stays failed", "[wire][failure]") {
  std::string good;
  encode(good, Ack{1, 2});
  WireError error;

  SECTION("truncated: waits for the rest, never returns a partial frame") {
    FrameDecoder d;
    d.feed(std::string_view(good).substr(0, good.size() - 1));
    Frame f{};
    CHECK(d.next(f) == FrameDecoder::Status::kNeedMore);
  }
  SECTION("corrupt payload byte") {
    std::string bad = good;
    bad.back() ^= 0x01;
    decode_all(bad, bad.size(), &error);
    CHECK(error == WireError::kBadChecksum);
  }
  SECTION("a wrong stored checksum") {
    std::string bad = good;
    bad[12] ^= 0x10;
    decode_all(bad, bad.size(), &error);
    CHECK(error == WireError::kBadChecksum);
  }
  SECTION("bad magic is seen from the first byte") {
    FrameDecoder d;
    d.feed("GET / HTTP/1.1\r\n");
    Frame f{};
    CHECK(d.next(f) == FrameDecoder::Status::kError);
    CHECK(d.error() == WireError::kBadMagic);
    d.feed(good);  // stays failed
    CHECK(d.next(f) == FrameDecoder::Status::kError);
  }
  SECTION("unknown version") {
    std::string bad = good;
    bad[4] = 2;
    decode_all(bad, bad.size(), &error);
    CHECK(error == WireError::kBadVersion);
  }
  SECTION("unknown type") {
    std::string bad = good;
    bad[5] = 99;
    decode_all(bad, bad.size(), &error);
    CHECK(error == WireError::kUnknownType);
  }
  SECTION("non-zero flags") {
    std::string bad = good;
    bad[6] = 1;
    decode_all(bad, bad.size(), &error);
    CHECK(error == WireError::kBadFlags);
  }
  SECTION("oversized length is refused from the header alone") {
    std::string bad = good.substr(0, kHeaderBytes);
    bad[8] = '\x01';
    bad[9] = '\x00';
    bad[10] = '\x40';  // 4 MiB + 1
    bad[11] = '\x00';
    FrameDecoder d;
    d.feed(bad);
    Frame f{};
    CHECK(d.next(f) == FrameDecoder::Status::kError);
    CHECK(d.error() == WireError::kTooLarge);
    CHECK(d.buffered() == kHeaderBytes);  // nothing allocated for the claimed payload
  }
}

TEST_CASE("bad payloads are kBadPayload, never a crash or a huge allocation", "[wire][failure]") {
  Batch b;
  CHECK(decode("", b) == WireError::kBadPayload);  // truncated
  std::string payload;
  {
    ByteWriter w(payload);
    w.u64le(1);
    w.u64le(1);
    w.varint(uint64_t{1} << 60);  // forged record count
  }
  CHECK(decode(payload, b) == WireError::kBadPayload);

  auto one_record = [](auto&& tweak) {
    std::string p;
    ByteWriter w(p);
    w.u64le(1);
    w.u64le(1);
    w.varint(1);
    tweak(w);
    return p;
  };
  CHECK(decode(one_record([](ByteWriter& w) {  // name id 0
          w.svarint(1);
          w.varint(0);
          w.svarint(1);
          w.u8(1);
          w.varint(1);
          w.svarint(5);
        }),
               b) == WireError::kBadPayload);
  CHECK(decode(one_record([](ByteWriter& w) {  // negative server id
          w.svarint(1);
          w.varint(1);
          w.svarint(-3);
          w.u8(1);
          w.varint(1);
          w.svarint(5);
        }),
               b) == WireError::kBadPayload);
  CHECK(decode(one_record([](ByteWriter& w) {  // no ops
          w.svarint(1);
          w.varint(1);
          w.svarint(1);
          w.u8(0);
          w.varint(1);
        }),
               b) == WireError::kBadPayload);
  CHECK(decode(one_record([](ByteWriter& w) {  // HIST keys not increasing
          w.svarint(1);
          w.varint(1);
          w.svarint(1);
          w.u8(128);
          w.varint(2);
          w.svarint(10);  // max
          w.svarint(10);  // min
          w.varint(2);
          w.svarint(10);
          w.varint(1);
          w.svarint(10);
          w.varint(1);
        }),
               b) == WireError::kBadPayload);
  CHECK(decode(one_record([](ByteWriter& w) {  // trailing byte
          w.svarint(1);
          w.varint(1);
          w.svarint(1);
          w.u8(64);
          w.varint(1);
          w.u8(0);
        }),
               b) == WireError::kBadPayload);

  std::vector<DictEntry> dict;
  std::string bad_dict;
  {
    ByteWriter w(bad_dict);
    w.varint(1);
    w.varint(1);
    w.name("shop.api");  // breaks the naming rule
    w.name("Orders.Placed");
  }
  CHECK(decode(bad_dict, dict) == WireError::kBadPayload);
  Hello hello;
  std::string bad_role;
  {
    ByteWriter w(bad_role);
    w.u64le(1);
    w.u8(9);
    w.string("x");
  }
  CHECK(decode(bad_role, hello) == WireError::kBadPayload);
}

TEST_CASE("random bytes never crash the decoders", "[wire][failure]") {
  std::mt19937_64 rng(Catch::rngSeed());
  std::string seed;
  encode(seed, std::vector<DictEntry>{{1, "Shop.Api", "Orders.Placed"}});
  Batch batch{1, 1, {}};
  batch.records.push_back(make_record(5, 1, 2, 255, rng));
  REQUIRE(encode(seed, batch) == WireError::kOk);
  for (int i = 0; i < 20000; ++i) {
    std::string mutated = seed;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) mutated[rng() % mutated.size()] = static_cast<char>(rng());
    decode_all(mutated, 1 + rng() % 64);
    // The payload decoders see corrupt payloads directly, checksum aside.
    const std::string_view payload = std::string_view(mutated).substr(kHeaderBytes);
    Batch b;
    std::vector<DictEntry> d;
    Heartbeat h;
    decode(payload, b);
    decode(payload, d);
    decode(payload, h);
  }
}

TEST_CASE("names travel once per connection and undefined ids are refused", "[wire][dict]") {
  SendDictionary send;
  const uint32_t a = send.id_for("Shop.Api", "Orders.Placed");
  const uint32_t b = send.id_for("Shop.Api", "Request.LatencyUs");
  CHECK(send.id_for("Shop.Api", "Orders.Placed") == a);
  std::string out;
  send.flush(out);
  send.flush(out);  // nothing new: no second frame
  const auto frames = decode_all(out, out.size());
  REQUIRE(frames.size() == 1);
  std::vector<DictEntry> entries;
  REQUIRE(decode(frames[0].second, entries) == WireError::kOk);

  ReceiveDictionary receive;
  REQUIRE(receive.define(entries) == WireError::kOk);
  std::string_view service, attr;
  REQUIRE(receive.lookup(b, service, attr));
  CHECK(attr == "Request.LatencyUs");
  CHECK(receive.define(entries) == WireError::kBadPayload);  // redefinition

  Batch batch{1, 1, {}};
  batch.records.resize(1);
  batch.records[0].name_id = a;
  CHECK(receive.check(batch) == WireError::kOk);
  batch.records[0].name_id = 77;
  CHECK(receive.check(batch) == WireError::kUnknownNameId);
}

// Issue 7, item 5: what a peer can make a receiver allocate has a bound.
TEST_CASE("issue 7: a batch of more records than the cap is too large, however small each is", "[wire][issue7][failure]") {
  Batch batch{1, 1, {}};
  BatchRecord r;
  r.second = 1;
  r.name_id = 1;
  r.ops = 64;
  r.stats.add(1, 1'000'000'000);
  batch.records.assign(kMaxBatchRecords, r);
  std::string at_cap;
  REQUIRE(encode(at_cap, batch) == WireError::kOk);
  Batch decoded;
  CHECK(decode(std::string_view(at_cap).substr(kHeaderBytes), decoded) == WireError::kOk);
  CHECK(decoded.records.size() == kMaxBatchRecords);
  batch.records.push_back(r);
  std::string over;
  REQUIRE(encode(over, batch) == WireError::kOk);  // well under 4 MiB on the wire
  CHECK(over.size() < kMaxPayload);
  CHECK(decode(std::string_view(over).substr(kHeaderBytes), decoded) == WireError::kTooLarge);
}

TEST_CASE("issue 7: a connection that defines more names than the cap is refused", "[wire][issue7][failure]") {
  ReceiveDictionary dictionary;
  std::vector<DictEntry> entries;
  for (uint32_t id = 1; id <= kMaxNamesPerConnection; ++id) {
    entries.push_back(DictEntry{id, "Shop.Api", "Orders.N" + std::to_string(id)});
  }
  CHECK(dictionary.define(entries) == WireError::kOk);
  CHECK(dictionary.size() == kMaxNamesPerConnection);
  const std::vector<DictEntry> one_more = {DictEntry{static_cast<uint32_t>(kMaxNamesPerConnection + 1), "Shop.Api",
                                                     "Orders.Extra"}};
  CHECK(dictionary.define(one_more) == WireError::kTooLarge);
  CHECK(dictionary.size() == kMaxNamesPerConnection);
}
