// libFuzzer target: any bytes as a TCP stream, cut into pieces, through the
// frame decoder and every payload decoder, as a receiving connection would.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "wire/dictionary.hpp"
#include "wire/frame.hpp"
#include "wire/messages.hpp"

using namespace monitor::wire;

namespace {
void handle(const Frame& frame, ReceiveDictionary& dict) {
  switch (frame.type) {
    case FrameType::kHello: { Hello m; decode(frame.payload, m); break; }
    case FrameType::kHelloAck: { HelloAck m; decode(frame.payload, m); break; }
    case FrameType::kDict: {
      std::vector<DictEntry> m;
      if (decode(frame.payload, m) == WireError::kOk) dict.define(m);
      break;
    }
    case FrameType::kBatch: {
      Batch m;
      if (decode(frame.payload, m) == WireError::kOk) dict.check(m);
      break;
    }
    case FrameType::kAck: { Ack m; decode(frame.payload, m); break; }
    case FrameType::kHeartbeat: { Heartbeat m; decode(frame.payload, m); break; }
    case FrameType::kClose: { Close m; decode(frame.payload, m); break; }
    case FrameType::kWatermark: { Watermark m; decode(frame.payload, m); break; }
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks how the stream is cut; the rest is the stream.
  const size_t piece = 1 + data[0] % 32;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  FrameDecoder decoder;
  ReceiveDictionary dict;
  for (size_t at = 0; at < stream.size(); at += piece) {
    decoder.feed(stream.substr(at, piece));
    Frame frame{};
    FrameDecoder::Status status;
    while ((status = decoder.next(frame)) == FrameDecoder::Status::kFrame) handle(frame, dict);
    if (status == FrameDecoder::Status::kError) return 0;
  }
  // Payload decoders also see raw bytes, as if a checksum had matched them.
  Batch batch;
  decode(stream, batch);
  std::vector<DictEntry> entries;
  decode(stream, entries);
  Heartbeat heartbeat;
  decode(stream, heartbeat);
  return 0;
}
