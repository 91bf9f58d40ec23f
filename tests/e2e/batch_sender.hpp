// Sends batches straight to a judger as an agent would (HELLO, DICT, BATCH),
// each acknowledged before the next: for tests that need records of chosen
// seconds, servers and values, also of minutes long past.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/wire_client.hpp"
#include "wire/messages.hpp"

namespace monitor::e2e {

class BatchSender {
 public:
  BatchSender(int port, uint64_t id, const std::vector<wire::DictEntry>& names)
      : client_(port, std::chrono::seconds(10)), id_(id) {
    std::string out;
    wire::encode(out, wire::Hello{id_, wire::Role::kAgent, "test-sender"});
    wire::encode(out, names);
    REQUIRE(client_.send(out));
    const auto reply = client_.read_frame(std::chrono::seconds(10));
    REQUIRE((reply && reply->type == wire::FrameType::kHelloAck));
  }

  /// One batch of `records`, waiting for its ACK.
  void send(std::vector<wire::BatchRecord> records) {
    wire::Batch batch{id_, ++sequence_, std::move(records)};
    std::string out;
    REQUIRE(wire::encode(out, batch) == wire::WireError::kOk);
    REQUIRE(client_.send(out));
    const auto reply = client_.read_frame(std::chrono::seconds(10));
    REQUIRE((reply && reply->type == wire::FrameType::kAck));
  }

  /// A record of one value at `second` for `server`, with `ops`.
  static wire::BatchRecord record(uint32_t name_id, int64_t server, int64_t second, int64_t value, uint8_t ops) {
    wire::BatchRecord r;
    r.second = second;
    r.name_id = name_id;
    r.server_id = server;
    r.ops = ops;
    r.stats.add(value, second * 1'000'000'000);
    if (ops & 128) r.hist.add(value);
    return r;
  }

 private:
  test::WireClient client_;
  const uint64_t id_;
  uint64_t sequence_ = 0;
};

}  // namespace monitor::e2e
