#include "judger/seen_sequences.hpp"

namespace monitor::judger {

bool SeenSequences::contains(uint64_t sender_id, uint64_t sequence) const {
  const auto sender = by_sender_.find(sender_id);
  if (sender == by_sender_.end()) return false;
  auto it = sender->second.upper_bound(sequence);
  if (it == sender->second.begin()) return false;
  --it;
  return sequence <= it->second.last;
}

std::optional<SeenSequences::Change> SeenSequences::plan_add(uint64_t sender_id, uint64_t sequence,
                                                             int64_t now_s) const {
  if (contains(sender_id, sequence)) return std::nullopt;
  Change change{sender_id, Interval{sequence, sequence, now_s}, {}};
  const auto sender = by_sender_.find(sender_id);
  if (sender == by_sender_.end()) return change;
  const auto& intervals = sender->second;
  const auto next = intervals.upper_bound(sequence);
  if (next != intervals.begin()) {
    const auto& before = std::prev(next)->second;
    if (before.last + 1 == sequence) change.upsert.first = before.first;  // extends it, same key
  }
  if (next != intervals.end() && next->second.first == sequence + 1) {
    change.upsert.last = next->second.last;
    change.removed.push_back(next->second.first);
  }
  return change;
}

void SeenSequences::apply(const Change& change) {
  auto& intervals = by_sender_[change.sender_id];
  for (const uint64_t first : change.removed) intervals.erase(first);
  intervals[change.upsert.first] = change.upsert;
}

void SeenSequences::restore(uint64_t sender_id, const Interval& interval) {
  by_sender_[sender_id][interval.first] = interval;
}

uint64_t SeenSequences::highest(uint64_t sender_id) const {
  const auto sender = by_sender_.find(sender_id);
  if (sender == by_sender_.end() || sender->second.empty()) return 0;
  return sender->second.rbegin()->second.last;
}

std::vector<std::pair<uint64_t, uint64_t>> SeenSequences::expire(int64_t before_s) {
  std::vector<std::pair<uint64_t, uint64_t>> gone;
  for (auto sender = by_sender_.begin(); sender != by_sender_.end();) {
    auto& intervals = sender->second;
    for (auto it = intervals.begin(); it != intervals.end();) {
      if (it->second.updated_s < before_s) {
        gone.emplace_back(sender->first, it->first);
        it = intervals.erase(it);
      } else {
        ++it;
      }
    }
    sender = intervals.empty() ? by_sender_.erase(sender) : std::next(sender);
  }
  return gone;
}

size_t SeenSequences::intervals() const noexcept {
  size_t n = 0;
  for (const auto& [sender, intervals] : by_sender_) n += intervals.size();
  return n;
}

}  // namespace monitor::judger
