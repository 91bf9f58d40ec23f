#include "wire/spool_record.hpp"

#include "wire/frame.hpp"

namespace monitor::wire {

std::string encode_spool_record(const std::vector<DictEntry>& names, const Batch& batch) {
  std::string out;
  encode(out, names);
  encode(out, batch);
  return out;
}

bool decode_spool_record(std::string_view bytes, SpoolRecord& out) {
  FrameDecoder unpack;
  unpack.feed(bytes);
  Frame dict_frame{}, batch_frame{};
  out.names.clear();
  const bool parsed = unpack.next(dict_frame) == FrameDecoder::Status::kFrame && dict_frame.type == FrameType::kDict &&
                      decode(dict_frame.payload, out.names) == WireError::kOk &&
                      unpack.next(batch_frame) == FrameDecoder::Status::kFrame &&
                      batch_frame.type == FrameType::kBatch && decode(batch_frame.payload, out.batch) == WireError::kOk;
  if (!parsed) return false;
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
