#include "ring/ring_writer.hpp"

#include <cpuid.h>

#include <atomic>

#include "common/spin_guard.hpp"

namespace monitor::ring {

namespace {
bool cpu_has_prefetchw() noexcept {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx & (1u << 8)) != 0;
}
}  // namespace

const bool kCpuHasPrefetchW = cpu_has_prefetchw();

namespace {
// Record locks belong to the process, not the thread: a thread that took lane
// 5's lock and a thread of the same process that failed to claim lane 5 would
// otherwise race, the second dropping the first's lock. Claims and releases
// are rare (once per thread), so one spin lock per process serialises them.
std::atomic<bool> g_claiming{false};
}  // namespace

void RingWriter::reset_after_fork() noexcept { g_claiming.store(false, std::memory_order_relaxed); }

WriterLane RingWriter::bind(uint32_t index) const noexcept {
  WriterLane w;
  w.lane = &segment_->lane(index);
  w.slots = segment_->slots(index);
  w.mask = segment_->geometry().slots_per_lane - 1;
  w.index = index;
  w.head = atomic_field(w.lane->head).load(std::memory_order_acquire);
  w.cached_tail = atomic_field(w.lane->tail).load(std::memory_order_acquire);
  return w;
}

bool RingWriter::acquire(WriterLane& out, uint64_t owner) const noexcept {
  const MappedGeometry& g = segment_->geometry();
  const uint32_t exclusive = g.lane_count - g.shared_lane_count;
  // Start at a spot derived from the thread id so threads rarely collide.
  const uint32_t start = static_cast<uint32_t>(owner & 0xFFFFFFFFu) % exclusive;
  for (uint32_t i = 0; i < exclusive; ++i) {
    const uint32_t index = (start + i) % exclusive;
    Lane& lane = segment_->lane(index);
    if (atomic_field(lane.owner).load(std::memory_order_relaxed) != 0) continue;
    SpinGuard claiming(g_claiming);
    // Under the claim lock no thread of this process can own the lane while
    // its owner word reads 0, so a failed claim below lost to another process
    // and may drop the lock it took.
    if (atomic_field(lane.owner).load(std::memory_order_relaxed) != 0) continue;
    if (!segment_->lock_lane(index)) continue;
    uint64_t expected = 0;
    if (!atomic_field(lane.owner).compare_exchange_strong(expected, owner, std::memory_order_acq_rel)) {
      segment_->unlock_lane(index);
      continue;
    }
    out = bind(index);
    return true;
  }
  return false;
}

void RingWriter::release(WriterLane& w) const noexcept {
  if (w.lane == nullptr) return;
  {
    SpinGuard claiming(g_claiming);
    segment_->unlock_lane(w.index);
    atomic_field(w.lane->owner).store(0, std::memory_order_release);
  }
  w = WriterLane{};
}

PushResult RingWriter::push_shared(const ReportFields& r, uint64_t owner, uint32_t first_choice) const noexcept {
  const MappedGeometry& g = segment_->geometry();
  const uint32_t first_shared = g.lane_count - g.shared_lane_count;
  for (uint32_t i = 0; i < g.shared_lane_count; ++i) {
    const uint32_t index = first_shared + (first_choice + i) % g.shared_lane_count;
    Lane& lane = segment_->lane(index);
    uint64_t expected = 0;
    if (!atomic_field(lane.owner).compare_exchange_strong(expected, owner, std::memory_order_acq_rel)) {
      continue;
    }
    WriterLane w = bind(index);
    const PushResult result = push(w, r);
    atomic_field(lane.owner).store(0, std::memory_order_release);
    return result;
  }
  atomic_field(segment_->header().no_lane_drops).fetch_add(1, std::memory_order_relaxed);
  return PushResult::kNoLane;
}

}  // namespace monitor::ring
