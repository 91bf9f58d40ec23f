// The SDK's side of the ring: a thread's lane and writing a report into it.
#pragma once

#include <cstdint>

#include "ring/shm_segment.hpp"

namespace monitor::ring {

/// One report as the writer stores it.
struct ReportFields {
  uint64_t time;  // ns, or TSC ticks with kOpsTimeIsTsc in ops (< 2^63 either way)
  int64_t value;
  int64_t server_id;
  uint32_t name_id;  // < kMaxNameCapacity
  uint32_t ops;      // op mask in bits 0-7, kOpsTimeIsTsc
};

/// A writer thread's hold on one lane. Plain data so it can live in a
/// trivially-destructible thread_local; lane == nullptr means "no lane".
struct WriterLane {
  Lane* lane = nullptr;
  Slot* slots = nullptr;
  uint64_t head = 0;
  uint64_t cached_tail = 0;
  uint64_t mask = 0;
  uint32_t index = 0;  // lane number in the segment
};

/// True when the CPU has PREFETCHW (CPUID 0x80000001 ECX bit 8). Without
/// -mprfchw, __builtin_prefetch(p, 1) compiles to a read prefetch, which
/// brings the line in shared and leaves the store to wait for ownership.
extern const bool kCpuHasPrefetchW;

/// Asks for the cache line at `p` in exclusive state, ahead of a store.
inline void prefetch_for_write(const void* p) noexcept {
  if (kCpuHasPrefetchW) {
    asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
  } else {
    __builtin_prefetch(p, 1);
  }
}

/// Outcome of one push.
enum class PushResult { kOk, kFull, kNoLane };

/// Writes reports into a segment's lanes. Does not own the segment.
/// Concurrency: every method may be called from any thread; a WriterLane is
/// used by the one thread that acquired it.
class RingWriter {
 public:
  static constexpr uint64_t kPrefetchAhead = 32;

  explicit RingWriter(const ShmSegment& segment) noexcept : segment_(&segment) {}

  /// Claims a free exclusive lane for `owner` (any nonzero word; the SDK uses
  /// pid << 32 | tid) and takes the lane's record lock for this process, which
  /// is what tells the reader the owner lives. False when every exclusive lane
  /// is taken.
  bool acquire(WriterLane& out, uint64_t owner) const noexcept;

  /// Gives the lane back (thread exit): drops its lock, then frees the owner
  /// word. The next owner continues at its head.
  void release(WriterLane& lane) const noexcept;

  /// Call in a forked child before any other method: the process lock that
  /// serialises acquire/release may have been held by a thread that did not
  /// survive the fork.
  static void reset_after_fork() noexcept;

  /// Appends to an acquired lane. kFull counts the drop in the lane.
  static PushResult push(WriterLane& w, const ReportFields& r) noexcept {
    const uint64_t pos = w.head;
    if (pos - w.cached_tail > w.mask) {
      w.cached_tail = atomic_field(w.lane->tail).load(std::memory_order_acquire);
      if (pos - w.cached_tail > w.mask) {
        // Only the owner writes `dropped`, so load + store needs no RMW.
        auto dropped = atomic_field(w.lane->dropped);
        dropped.store(dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return PushResult::kFull;
      }
    }
    Slot& slot = w.slots[pos & w.mask];
    // The slot's line was last read by the agent on another core, so writing it
    // misses; asking for lines a few slots ahead lets those misses overlap
    // instead of stalling each call in turn.
    prefetch_for_write(&w.slots[(pos + kPrefetchAhead) & w.mask]);
    atomic_field(slot.seq).store(seq_busy(pos), std::memory_order_relaxed);
    slot.name_ops = r.name_id | (r.ops & kOpsMask) << 24;
    slot.time = r.time | ((r.ops & kOpsTimeIsTsc) != 0 ? kSlotTimeIsTsc : 0);
    slot.value = r.value;
    slot.server_id = r.server_id;
    atomic_field(slot.seq).store(seq_ready(pos), std::memory_order_release);
    w.head = pos + 1;
    atomic_field(w.lane->head).store(pos + 1, std::memory_order_relaxed);
    return PushResult::kOk;
  }

  /// Appends through one of the shared lanes, held for this call only. Tries
  /// each shared lane once; kNoLane when all are busy (counted in the header).
  PushResult push_shared(const ReportFields& r, uint64_t owner, uint32_t first_choice) const noexcept;

 private:
  WriterLane bind(uint32_t index) const noexcept;

  const ShmSegment* segment_;
};

}  // namespace monitor::ring
