// Frame header and the incremental frame decoder (docs/protocol.md, "Frames").
//
//   offset  size  field
//   0       4     magic "MONW"
//   4       1     version (1)
//   5       1     type
//   6       2     flags (0)
//   8       4     payload_length, little-endian, <= kMaxPayload
//   12      4     crc32c of bytes 0-11 then the payload, little-endian
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "wire/wire_error.hpp"

namespace monitor::wire {

inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kHeaderBytes = 16;
inline constexpr uint32_t kMaxPayload = 4u << 20;
/// What a sender puts in one BATCH at most (the agent cuts a second into
/// batches of this size). A relay renumbers names, which can grow a record by
/// at most 3 bytes of a >= 9-byte record, so it accepts batches up to
/// kMaxRelayedBatchPayload from its senders and its own re-encoding still fits
/// kMaxPayload.
inline constexpr uint32_t kBatchPayloadBudget = 1u << 20;
inline constexpr uint32_t kMaxRelayedBatchPayload = 5u << 19;  // 2.5 MiB: x 4/3 < 4 MiB
static_assert(uint64_t{kMaxRelayedBatchPayload} * 4 / 3 < kMaxPayload, "a relayed batch must fit after renumbering");

enum class FrameType : uint8_t {
  kHello = 1,
  kHelloAck = 2,
  kDict = 3,
  kBatch = 4,
  kAck = 5,
  kHeartbeat = 6,
  kClose = 7,
  kWatermark = 8,
};

constexpr bool is_known_frame_type(uint8_t t) noexcept { return t >= 1 && t <= 8; }

/// Appends one frame (header + payload) to `out`, or nothing and false when the
/// payload exceeds kMaxPayload: checked in every build, since a frame the
/// receiver must refuse would close the connection again at every retry.
[[nodiscard]] bool append_frame(std::string& out, FrameType type, std::string_view payload);

/// A decoded frame; `payload` views the decoder's buffer and stays valid until
/// the next call on the decoder.
struct Frame {
  FrameType type;
  std::string_view payload;
};

/// Splits a byte stream into frames, checking each header before its payload
/// is buffered and each CRC before the frame is returned. Not thread-safe: one
/// per connection. After an error it stays failed (the connection must close).
class FrameDecoder {
 public:
  enum class Status { kFrame, kNeedMore, kError };

  /// Adds bytes read from the connection.
  void feed(std::string_view bytes);

  /// The next complete frame, kNeedMore until one is, or kError (see error()).
  Status next(Frame& frame);

  WireError error() const noexcept { return error_; }
  /// Bytes buffered and not yet returned as frames.
  size_t buffered() const noexcept { return buffer_.size() - consumed_; }

 private:
  Status fail(WireError e) {
    error_ = e;
    return Status::kError;
  }

  std::string buffer_;
  size_t consumed_ = 0;  // bytes of buffer_ already returned as frames
  WireError error_ = WireError::kOk;
};

}  // namespace monitor::wire
