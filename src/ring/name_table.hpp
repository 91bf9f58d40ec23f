// The ring's shared (service, attr) -> id table, lock-free, in the segment.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "ring/shm_segment.hpp"

namespace monitor::ring {

/// Result of interning a pair: id > 0 on success.
struct InternResult {
  uint32_t id = 0;
  int error = 0;  // MONITOR_ERR_* when id == 0
};

/// The (service, attr) -> id table inside a segment. Lock-free; safe from any
/// number of threads and processes at once. Does not own the segment.
class NameTable {
 public:
  explicit NameTable(const ShmSegment& segment) noexcept
      : entries_(segment.names()), mask_(segment.geometry().name_capacity - 1),
        header_(&segment.header()) {}

  /// Finds a published pair without inserting; 0 when absent.
  /// Concurrency: any thread, any process.
  uint32_t find(std::string_view service, std::string_view attr) const noexcept;

  /// True if id `id` (1..capacity(), from this process's own lookups) names
  /// exactly the NUL-terminated `service` and `attr`. Reads no further into
  /// either string than the stored name's length + 1, and never past the entry
  /// whatever its bytes say. Concurrency: any thread; reads only.
  bool matches(uint32_t id, const char* service, const char* attr) const noexcept {
    const NameEntry& e = entries_[(id - 1) & mask_];
    const uint32_t service_len = e.service_len;
    const uint32_t attr_len = e.attr_len;
    if (service_len > kMaxNameBytes || attr_len > kMaxNameBytes) return false;
    return std::strncmp(service, e.service, service_len) == 0 && service[service_len] == '\0' &&
           std::strncmp(attr, e.attr, attr_len) == 0 && attr[attr_len] == '\0';
  }

  /// Finds or inserts the pair. Names must already be valid (is_valid_name).
  /// Concurrency: any thread, any process. Never waits on another inserter.
  InternResult intern(std::string_view service, std::string_view attr) const noexcept;

  /// The names of a published id, or false for an id that is out of range or
  /// not (yet) published. Concurrency: any thread; reads only.
  bool resolve(uint32_t id, std::string_view& service, std::string_view& attr) const noexcept;

  uint32_t capacity() const noexcept { return mask_ + 1; }

 private:
  NameEntry* entries_;
  uint32_t mask_;
  SegmentHeader* header_;
};

}  // namespace monitor::ring
