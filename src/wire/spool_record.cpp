#include "wire/spool_record.hpp"

#include "wire/frame.hpp"

namespace monitor::wire {

std::string encode_spool_record(const std::vector<DictEntry>& names, const Batch& batch) {
  std::string out;
  encode(out, names);
  if (encode(out, batch) != WireError::kOk) return {};
  return out;
}

bool decode_spool_record(std::string_view bytes, SpoolRecord& out) {
  FrameDecoder unpack;
  unpack.feed(bytes);
  out.names.clear();
  Frame frame{};
  std::vector<DictEntry> part;
  // One or more DICT frames, then the BATCH.
  while (true) {
    if (unpack.next(frame) != FrameDecoder::Status::kFrame) return false;
    if (frame.type == FrameType::kBatch) break;
    if (frame.type != FrameType::kDict || decode(frame.payload, part) != WireError::kOk) return false;
    out.names.insert(out.names.end(), part.begin(), part.end());
  }
  if (decode(frame.payload, out.batch) != WireError::kOk) return false;
  for (size_t i = 0; i < out.names.size(); ++i) {
    if (out.names[i].id != i + 1) return false;
  }
  for (const auto& record : out.batch.records) {
    if (record.name_id == 0 || record.name_id > out.names.size()) return false;
  }
  Frame rest{};
  return unpack.next(rest) == FrameDecoder::Status::kNeedMore;
}

}  // namespace monitor::wire
