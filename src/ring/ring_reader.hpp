// The agent's side of the ring: draining lanes and sweeping drop counters.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include <boost/system/result.hpp>

#include "ring/shm_segment.hpp"

namespace monitor::ring {

/// A lane and its read position.
struct LanePosition {
  uint32_t lane;
  uint64_t tail;
};

/// Lane-full drops of one writer process since the last sweep.
struct WriterDrops {
  int32_t pid;
  uint64_t drops;
};

/// What one sweep found.
struct SweepResult {
  uint32_t lanes_reclaimed = 0;   // owners that were gone
  uint64_t abandoned_slots = 0;   // busy slots left by them, stepped over
  uint64_t new_drops = 0;         // lane-full drops since the last sweep
  uint64_t new_no_lane_drops = 0; // calls that found no lane since the last sweep
  uint64_t new_names_full = 0;
  std::vector<WriterDrops> drops_by_writer;  // from lanes with a live owner, largest first
};

/// Drains every lane of a segment. The single reader of the segment: one
/// RingReader per segment, used from one thread. Owns the mapping.
class RingReader {
 public:
  /// Takes over a mapped segment; starts at the tails the last reader left.
  [[nodiscard]] static boost::system::result<RingReader> open(ShmSegment segment) noexcept;

  RingReader(RingReader&&) noexcept = default;
  RingReader& operator=(RingReader&&) noexcept = default;

  /// Calls on_slot(const Slot&) for up to `max_per_lane` published slots of each
  /// lane, in each lane's order. Returns how many slots it consumed.
  template <class OnSlot>
  size_t drain(OnSlot&& on_slot, uint32_t max_per_lane = 1024) noexcept {
    return drain(on_slot, [](std::span<const LanePosition>) {}, max_per_lane);
  }

  /// As drain(on_slot), and calls before_release(std::span<const
  /// LanePosition>) with the lanes it read and their new tails before it
  /// hands any of those slots back to the writers: a caller that must keep
  /// what it read (the agent's crash journal) makes it durable there.
  template <class OnSlot, class BeforeRelease>
  size_t drain(OnSlot&& on_slot, BeforeRelease&& before_release, uint32_t max_per_lane = 1024) noexcept {
    size_t total = 0;
    moved_.clear();
    const uint32_t lanes = static_cast<uint32_t>(tails_.size());
    for (uint32_t i = 0; i < lanes; ++i) {
      Slot* const slots = segment_.slots(i);
      uint64_t tail = tails_[i];
      uint32_t n = 0;
      while (n < max_per_lane) {
        const Slot& slot = slots[tail & mask_];
        if (atomic_field(const_cast<uint32_t&>(slot.seq)).load(std::memory_order_acquire) != seq_ready(tail)) {
          break;
        }
        on_slot(slot);
        ++tail;
        ++n;
      }
      if (n != 0) {
        tails_[i] = tail;
        moved_.push_back(LanePosition{i, tail});
        total += n;
      }
    }
    if (moved_.empty()) return 0;
    before_release(std::span<const LanePosition>(moved_));
    for (const LanePosition& m : moved_) {
      atomic_field(segment_.lane(m.lane).tail).store(m.tail, std::memory_order_release);
    }
    return total;
  }

  /// Moves lane `lane`'s read position forward to `tail`, past slots a
  /// previous reader consumed but did not hand back (it was killed between
  /// keeping them and releasing them). Refuses a position before the current
  /// one or beyond what writers have published. True when moved.
  bool skip_to(uint32_t lane, uint64_t tail) noexcept;

  /// The time (ns, by `to_ns(const Slot&)`) of the oldest report published and
  /// not yet drained, looking at each lane's next slot; INT64_MAX when every
  /// lane is drained. Each lane is in time order for its writer, so its next
  /// slot is its oldest. A lane's time is the writer's, input like any other:
  /// it only holds back the agent's watermark, never an address.
  template <class ToNs>
  int64_t oldest_pending_ns(ToNs&& to_ns) const noexcept {
    int64_t oldest = INT64_MAX;
    for (uint32_t i = 0; i < tails_.size(); ++i) {
      const Slot& slot = segment_.slots(i)[tails_[i] & mask_];
      if (atomic_field(const_cast<uint32_t&>(slot.seq)).load(std::memory_order_acquire) != seq_ready(tails_[i])) {
        continue;
      }
      oldest = std::min(oldest, to_ns(slot));
    }
    return oldest;
  }

  /// Frees lanes whose owner process is gone, stepping over a slot it left half
  /// written, and collects drop counters. Call about once a second, after a drain.
  SweepResult sweep(int64_t now_ns) noexcept;

  const ShmSegment& segment() const noexcept { return segment_; }
  uint64_t abandoned_total() const noexcept { return abandoned_total_; }

 private:
  explicit RingReader(ShmSegment segment) noexcept;

  ShmSegment segment_;
  uint64_t mask_ = 0;
  std::vector<uint64_t> tails_;
  std::vector<LanePosition> moved_;  // drain's scratch
  std::vector<uint64_t> seen_dropped_;
  // Shared lanes: owner word and head seen by the last sweep.
  std::vector<uint64_t> suspect_owner_;
  std::vector<uint64_t> suspect_head_;
  uint64_t seen_no_lane_ = 0;
  uint64_t seen_names_full_ = 0;
  uint64_t abandoned_total_ = 0;
};

}  // namespace monitor::ring
