#include "wire/dictionary.hpp"

#include <algorithm>

namespace monitor::wire {

uint32_t SendDictionary::id_for(std::string_view service, std::string_view attr) {
  key_.assign(service);
  key_ += ' ';
  key_ += attr;
  if (auto it = ids_.find(key_); it != ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(ids_.size() + 1);
  ids_.emplace(key_, id);
  pending_.push_back(DictEntry{id, std::string(service), std::string(attr)});
  return id;
}

void SendDictionary::flush(std::string& out) {
  if (pending_.empty()) return;
  encode(out, pending_);
  pending_.clear();
}

WireError ReceiveDictionary::define(const std::vector<DictEntry>& entries) {
  if (entries.size() > kMaxNamesPerConnection - std::min(names_.size(), kMaxNamesPerConnection)) {
    return WireError::kTooLarge;
  }
  for (const auto& e : entries) {
    if (!names_.emplace(e.id, std::make_pair(e.service, e.attr)).second) return WireError::kBadPayload;
  }
  return WireError::kOk;
}

bool ReceiveDictionary::lookup(uint32_t id, std::string_view& service, std::string_view& attr) const noexcept {
  const auto it = names_.find(id);
  if (it == names_.end()) return false;
  service = it->second.first;
  attr = it->second.second;
  return true;
}

WireError ReceiveDictionary::check(const Batch& batch) const noexcept {
  for (const auto& rec : batch.records) {
    if (names_.find(rec.name_id) == names_.end()) return WireError::kUnknownNameId;
  }
  return WireError::kOk;
}

WireError ReceiveDictionary::define(std::string_view payload, std::vector<DictEntry>& entries) {
  const WireError error = decode(payload, entries);
  return error == WireError::kOk ? define(entries) : error;
}

WireError ReceiveDictionary::decode_batch(std::string_view payload, Batch& batch) const {
  const WireError error = decode(payload, batch);
  return error == WireError::kOk ? check(batch) : error;
}

}  // namespace monitor::wire
