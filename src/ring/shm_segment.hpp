#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "ring/ring_layout.hpp"

namespace monitor::ring {

/// A mapping of a libmonitor shm segment. Move-only; unmaps on destruction.
/// Not thread-safe itself; the layout it maps is shared by design.
class ShmSegment {
 public:
  /// Maps segment `name`, creating it with `geometry` if it does not exist.
  /// The whole segment is reserved with posix_fallocate at creation, so a full
  /// /dev/shm fails here with ENOSPC instead of SIGBUS on a later write. Waits
  /// at most `ready_wait_ms` for a concurrent creator to finish initialising.
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
  SegmentHeader& header() const noexcept { return *reinterpret_cast<SegmentHeader*>(base_); }
  Lane& lane(uint32_t index) const noexcept {
    return *reinterpret_cast<Lane*>(base_ + header().lanes_offset +
                                    uint64_t{index} * header().lane_size);
  }
  Slot* slots(uint32_t lane_index) const noexcept {
    return reinterpret_cast<Slot*>(reinterpret_cast<uint8_t*>(&lane(lane_index)) + sizeof(Lane));
  }
  NameEntry* names() const noexcept {
    return reinterpret_cast<NameEntry*>(base_ + header().names_offset);
  }
  uint64_t size() const noexcept { return size_; }

 private:
  ShmSegment(uint8_t* base, uint64_t size, bool created) noexcept
      : base_(base), size_(size), created_(created) {}

  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  bool created_ = false;
};

/// "Description (context)" for logs: "open ring /x: Permission denied".
std::string describe(const boost::system::error_code& ec, std::string_view context);

}  // namespace monitor::ring
