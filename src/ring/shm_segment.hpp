// Creating, opening and checking the ring's shared-memory segment.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "ring/ring_layout.hpp"

namespace monitor::ring {

/// The geometry of a mapped segment, read from its header once, validated, and
/// kept in the process. Every address is derived from this copy, never from the
/// live header: any process of the ring's group can rewrite the header at any
/// moment, and it must not be able to steer another process's loads and stores.
struct MappedGeometry {
  uint32_t lane_count = 0;
  uint32_t shared_lane_count = 0;
  uint32_t slots_per_lane = 0;
  uint32_t lane_size = 0;
  uint32_t name_capacity = 0;
  uint64_t lanes_offset = 0;
  uint64_t names_offset = 0;
  uint64_t segment_size = 0;
};

/// A mapping of a libmonitor shm segment, with the descriptor kept open for the
/// lane locks (see lock_lane). Move-only; unmaps and closes on destruction.
/// Not thread-safe itself; the layout it maps is shared by design.
class ShmSegment {
 public:
  /// Maps segment `name`, creating it with `geometry` and mode 0660 if it does
  /// not exist. The whole segment is reserved with posix_fallocate at
  /// creation, so a full /dev/shm fails here with ENOSPC instead of SIGBUS on a
  /// later write. Waits at most `ready_wait_ms` for a concurrent creator to
  /// finish initialising. An existing segment's header is copied once and
  /// checked (overflow-proof) against the object's real size before anything
  /// else is mapped; kBadGeometry / kBadMagic / kVersionMismatch otherwise.
  [[nodiscard]] static boost::system::result<ShmSegment> open_or_create(
      std::string_view name, const Geometry& geometry, int ready_wait_ms = 20) noexcept;

  /// Removes segment `name` (existing mappings stay valid). Missing is not an error.
  static boost::system::error_code unlink(std::string_view name) noexcept;

  ShmSegment() noexcept = default;
  ShmSegment(ShmSegment&& other) noexcept;
  ShmSegment& operator=(ShmSegment&& other) noexcept;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;
  ~ShmSegment();

  bool valid() const noexcept { return base_ != nullptr; }
  bool created() const noexcept { return created_; }
  const MappedGeometry& geometry() const noexcept { return geometry_; }
  /// The live header. Only its counters and reader fields may be used; its
  /// geometry fields are input from other processes (see geometry()).
  SegmentHeader& header() const noexcept { return *reinterpret_cast<SegmentHeader*>(base_); }
  /// `index` < geometry().lane_count (an invariant of the caller, not input).
  Lane& lane(uint32_t index) const noexcept {
    return *reinterpret_cast<Lane*>(base_ + geometry_.lanes_offset + uint64_t{index} * geometry_.lane_size);
  }
  Slot* slots(uint32_t lane_index) const noexcept {
    return reinterpret_cast<Slot*>(reinterpret_cast<uint8_t*>(&lane(lane_index)) + sizeof(Lane));
  }
  NameEntry* names() const noexcept { return reinterpret_cast<NameEntry*>(base_ + geometry_.names_offset); }
  uint64_t size() const noexcept { return size_; }
  int fd() const noexcept { return fd_; }
  /// Device and inode of the shm object, to tell whether its name now points
  /// at another object (the ring was removed and made anew).
  dev_t device() const noexcept { return device_; }
  ino_t inode() const noexcept { return inode_; }

  /// True while the live header still says what this process validated at
  /// open: magic, version and every geometry field. False means another
  /// process rewrote it (tampering, or a bug) or the ring was retired.
  bool header_intact() const noexcept;

  /// Marks the segment retired: writers still bound to it move to the ring
  /// that now has its name at their next check. Concurrency: any process.
  void retire() const noexcept;

  /// Replaces the mapping with private anonymous memory at the same addresses
  /// and closes the descriptor: the shm object's pages are released, while a
  /// thread still holding a pointer into the old ring writes into memory that
  /// is merely discarded, never unmapped. For a writer leaving a retired ring.
  void drop_mapping() noexcept;

  /// Lane liveness that holds across PID namespaces: a writer process holds a
  /// POSIX record lock (F_SETLK, read) on byte `index` of the object for as
  /// long as one of its threads owns lane `index`; the kernel drops it when
  /// the process dies, whichever namespace it lives in. Returns false if the
  /// lock could not be taken. Concurrency: the SDK serialises a process's
  /// calls (record locks belong to the process, not the thread).
  bool lock_lane(uint32_t index) const noexcept;
  void unlock_lane(uint32_t index) const noexcept;
  /// True if some process holds lane `index`'s lock (this one included: the
  /// query is an open-file-description lock, which conflicts with record
  /// locks even of the same process). An error counts as alive.
  bool lane_locked(uint32_t index) const noexcept;

 private:
  ShmSegment(uint8_t* base, uint64_t size, int fd, bool created, const MappedGeometry& geometry) noexcept;

  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  int fd_ = -1;
  bool created_ = false;
  MappedGeometry geometry_;
  dev_t device_ = 0;
  ino_t inode_ = 0;
};

/// Checks a copy of a header against the size of the object it came from.
/// Overflow-proof: every field may hold any value. Returns the geometry to
/// map by, or kVersionMismatch / kBadGeometry.
[[nodiscard]] boost::system::result<MappedGeometry> validate_header(const SegmentHeader& header,
                                                                    uint64_t object_size) noexcept;

/// "Description (context)" for logs: "open ring /x: Permission denied".
std::string describe(const boost::system::error_code& ec, std::string_view context);

}  // namespace monitor::ring
