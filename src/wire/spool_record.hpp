// A spooled batch: self-contained (its own names), so it can be replayed on
// any later connection. The agent's forwarder and the proxies spool these.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "wire/messages.hpp"

namespace monitor::wire {

/// `names[i]` defines id i + 1, the ids `batch`'s records use.
struct SpoolRecord {
  std::vector<DictEntry> names;
  Batch batch;
};

/// DICT frames then a BATCH frame; empty when the batch is too large for a
/// frame (a sender's bug: batches are cut at kBatchPayloadBudget).
std::string encode_spool_record(const std::vector<DictEntry>& names, const Batch& batch);

/// False if `bytes` is not exactly such frames, or a record uses an id the
/// names do not define.
bool decode_spool_record(std::string_view bytes, SpoolRecord& out);

}  // namespace monitor::wire
