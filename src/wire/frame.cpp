#include "wire/frame.hpp"

#include "wire/byte_io.hpp"
#include "wire/crc32c.hpp"

namespace monitor::wire {
namespace {
constexpr char kMagic[4] = {'M', 'O', 'N', 'W'};
}

bool append_frame(std::string& out, FrameType type, std::string_view payload) {
  if (payload.size() > kMaxPayload) return false;
  const size_t start = out.size();
  out.append(kMagic, 4);
  ByteWriter w(out);
  w.u8(kProtocolVersion);
  w.u8(static_cast<uint8_t>(type));
  w.u8(0);
  w.u8(0);
  w.u32le(static_cast<uint32_t>(payload.size()));
  uint32_t crc = crc32c(0, out.data() + start, 12);
  crc = crc32c(crc, payload.data(), payload.size());
  w.u32le(crc);
  out.append(payload);
  return true;
}

void FrameDecoder::feed(std::string_view bytes) {
  if (error_ != WireError::kOk) return;
  // Drop what was returned already before growing, so the buffer holds at
  // most one frame plus what arrived with it.
  if (consumed_ != 0) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

FrameDecoder::Status FrameDecoder::next(Frame& frame) {
  if (error_ != WireError::kOk) return Status::kError;
  const std::string_view pending(buffer_.data() + consumed_, buffer_.size() - consumed_);
  // Check what is there of the header as soon as it arrives: a peer speaking
  // something else is told apart from a slow one without waiting for 16 bytes.
  for (size_t i = 0; i < 4 && i < pending.size(); ++i) {
    if (pending[i] != kMagic[i]) return fail(WireError::kBadMagic);
  }
  if (pending.size() < kHeaderBytes) return Status::kNeedMore;
  ByteReader header(pending.substr(4, 12));
  const uint8_t version = header.u8();
  const uint8_t type = header.u8();
  const uint8_t flags_lo = header.u8();
  const uint8_t flags_hi = header.u8();
  const uint32_t length = header.u32le();
  const uint32_t crc = header.u32le();
  if (version != kProtocolVersion) return fail(WireError::kBadVersion);
  if (!is_known_frame_type(type)) return fail(WireError::kUnknownType);
  if (flags_lo != 0 || flags_hi != 0) return fail(WireError::kBadFlags);
  if (length > kMaxPayload) return fail(WireError::kTooLarge);
  if (pending.size() < kHeaderBytes + length) return Status::kNeedMore;
  const std::string_view payload = pending.substr(kHeaderBytes, length);
  uint32_t actual = crc32c(0, pending.data(), 12);
  actual = crc32c(actual, payload.data(), payload.size());
  if (actual != crc) return fail(WireError::kBadChecksum);
  consumed_ += kHeaderBytes + length;
  frame = Frame{static_cast<FrameType>(type), payload};
  return Status::kFrame;
}

}  // namespace monitor::wire
