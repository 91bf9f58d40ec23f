#include "ring/ring_reader.hpp"

#include <unistd.h>

#include <algorithm>

#include "common/process_info.hpp"

namespace monitor::ring {

boost::system::result<RingReader> RingReader::open(ShmSegment segment) noexcept {
  if (!segment.valid()) return boost::system::error_code(EINVAL, boost::system::system_category());
  try {
    return RingReader(std::move(segment));
  } catch (...) {
    return boost::system::error_code(ENOMEM, boost::system::system_category());
  }
}

RingReader::RingReader(ShmSegment segment) noexcept : segment_(std::move(segment)) {
  const MappedGeometry& g = segment_.geometry();
  mask_ = g.slots_per_lane - 1;
  tails_.resize(g.lane_count);
  seen_dropped_.resize(g.lane_count);
  suspect_owner_.resize(g.lane_count);
  suspect_head_.resize(g.lane_count);
  moved_.reserve(g.lane_count);
  for (uint32_t i = 0; i < g.lane_count; ++i) {
    Lane& lane = segment_.lane(i);
    tails_[i] = atomic_field(lane.tail).load(std::memory_order_acquire);
    seen_dropped_[i] = atomic_field(lane.dropped).load(std::memory_order_relaxed);
  }
  seen_no_lane_ = atomic_field(segment_.header().no_lane_drops).load(std::memory_order_relaxed);
  seen_names_full_ = atomic_field(segment_.header().names_full_drops).load(std::memory_order_relaxed);
  atomic_field(segment_.header().reader_pid).store(static_cast<uint64_t>(getpid()), std::memory_order_relaxed);
}

bool RingReader::skip_to(uint32_t lane, uint64_t tail) noexcept {
  if (lane >= tails_.size() || tail <= tails_[lane] || tail - tails_[lane] > mask_ + 1) return false;
  // The slots a killed reader kept and never handed back are still published
  // for their positions (no writer may reuse them): check each, so a journal
  // that belongs to another ring cannot make us skip what was never read.
  const Slot* const slots = segment_.slots(lane);
  for (uint64_t p = tails_[lane]; p < tail; ++p) {
    if (atomic_field(const_cast<uint32_t&>(slots[p & mask_].seq)).load(std::memory_order_acquire) != seq_ready(p)) {
      return false;
    }
  }
  tails_[lane] = tail;
  atomic_field(segment_.lane(lane).tail).store(tail, std::memory_order_release);
  return true;
}

namespace {
void add_writer_drops(std::vector<WriterDrops>& by_writer, pid_t pid, uint64_t drops) noexcept {
  for (auto& w : by_writer) {
    if (w.pid == pid) {
      w.drops += drops;
      return;
    }
  }
  try {
    by_writer.push_back({pid, drops});
  } catch (...) {
    // Attribution is for the log only; the total is counted regardless.
  }
}
}  // namespace

SweepResult RingReader::sweep(int64_t now_ns) noexcept {
  SweepResult result;
  SegmentHeader& h = segment_.header();
  const MappedGeometry& g = segment_.geometry();
  const uint32_t first_shared = g.lane_count - g.shared_lane_count;
  atomic_field(h.reader_heartbeat_ns).store(static_cast<uint64_t>(now_ns), std::memory_order_relaxed);

  for (uint32_t i = 0; i < g.lane_count; ++i) {
    Lane& lane = segment_.lane(i);
    const uint64_t dropped = atomic_field(lane.dropped).load(std::memory_order_relaxed);
    const uint64_t lane_drops = dropped - seen_dropped_[i];
    result.new_drops += lane_drops;
    seen_dropped_[i] = dropped;

    uint64_t owner = atomic_field(lane.owner).load(std::memory_order_acquire);
    if (owner == 0) {
      suspect_owner_[i] = 0;
      continue;
    }
    const auto pid = static_cast<pid_t>(owner >> 32);  // the writer's own namespace: for logs only
    if (lane_drops != 0) add_writer_drops(result.drops_by_writer, pid, lane_drops);
    bool gone = false;
    if (i < first_shared) {
      gone = !segment_.lane_locked(i);
    } else {
      // A shared lane is held for one call: the same holder at the same head a
      // sweep later is a holder that died (or stopped) inside that call.
      const uint64_t head = atomic_field(lane.head).load(std::memory_order_relaxed);
      gone = suspect_owner_[i] == owner && suspect_head_[i] == head;
      suspect_owner_[i] = owner;
      suspect_head_[i] = head;
    }
    if (!gone) continue;
    suspect_owner_[i] = 0;

    Slot& slot = segment_.slots(i)[tails_[i] & mask_];
    const uint32_t seq = atomic_field(slot.seq).load(std::memory_order_acquire);
    if (seq == seq_ready(tails_[i])) continue;  // published data left: drain first, free next sweep
    if (seq == seq_busy(tails_[i])) {
      ++tails_[i];
      ++result.abandoned_slots;
      lane.abandoned += 1;
      atomic_field(lane.tail).store(tails_[i], std::memory_order_release);
    }
    if (atomic_field(lane.head).load(std::memory_order_relaxed) < tails_[i]) {
      atomic_field(lane.head).store(tails_[i], std::memory_order_relaxed);
    }
    if (atomic_field(lane.owner).compare_exchange_strong(owner, 0, std::memory_order_acq_rel)) {
      ++result.lanes_reclaimed;
    }
  }

  const uint64_t no_lane = atomic_field(h.no_lane_drops).load(std::memory_order_relaxed);
  result.new_no_lane_drops = no_lane - seen_no_lane_;
  seen_no_lane_ = no_lane;
  const uint64_t names_full = atomic_field(h.names_full_drops).load(std::memory_order_relaxed);
  result.new_names_full = names_full - seen_names_full_;
  seen_names_full_ = names_full;
  abandoned_total_ += result.abandoned_slots;
  std::sort(result.drops_by_writer.begin(), result.drops_by_writer.end(),
            [](const WriterDrops& a, const WriterDrops& b) { return a.drops > b.drops; });
  return result;
}

}  // namespace monitor::ring
