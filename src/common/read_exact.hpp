// pread until done: reading a whole record at an offset.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace monitor {

/// Reads exactly `n` bytes at `offset` of `fd` into `buf`; false on an error
/// or end of file first.
inline bool read_exact(int fd, void* buf, size_t n, uint64_t offset) noexcept {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return true;
}

}  // namespace monitor
