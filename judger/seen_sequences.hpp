// Which batch sequences of each sender the judger has stored, as intervals.
//
// A high-water mark per sender is not enough once batches can reach the judger
// over more than one path: an agent that fails over from one Bonnie to another
// may have its batch 10 delivered (from the first Bonnie's spool) after 11
// (through the second). So every stored sequence is remembered, and since a
// sender's sequences are dense (+1 per second, with a jump at a restart) the
// set is a few intervals per sender.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

namespace monitor::judger {

class SeenSequences {
 public:
  struct Interval {
    uint64_t first = 0;
    uint64_t last = 0;
    int64_t updated_s = 0;  // when a sequence was last added to it
  };

  /// What adding a sequence does to the stored intervals: the store applies it
  /// in the batch's transaction, then apply() makes it true here.
  struct Change {
    uint64_t sender_id = 0;
    Interval upsert;                 // the interval that now holds the sequence
    std::vector<uint64_t> removed;   // firsts of intervals merged into it
  };

  bool contains(uint64_t sender_id, uint64_t sequence) const;

  /// The change that adds `sequence`, or nullopt if it is already held.
  std::optional<Change> plan_add(uint64_t sender_id, uint64_t sequence, int64_t now_s) const;
  void apply(const Change& change);

  /// Restores one stored interval (at open).
  void restore(uint64_t sender_id, const Interval& interval);

  /// The highest sequence held for a sender, 0 if none.
  uint64_t highest(uint64_t sender_id) const;

  /// Forgets intervals not added to since `before_s`: (sender, first) of each.
  std::vector<std::pair<uint64_t, uint64_t>> expire(int64_t before_s);

  size_t intervals() const noexcept;

 private:
  std::unordered_map<uint64_t, std::map<uint64_t, Interval>> by_sender_;  // keyed by first
};

}  // namespace monitor::judger
