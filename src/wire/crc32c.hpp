// CRC-32C (Castagnoli), as the frame header carries it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace monitor::wire {

/// Extends `crc` (0 to start) over `n` bytes. Uses the SSE4.2 crc32
/// instruction when the CPU has it, a table otherwise; the tests hold both to
/// Boost.CRC's CRC-32C and to the standard check value.
uint32_t crc32c(uint32_t crc, const void* data, size_t n) noexcept;

/// The table-driven version, for CPUs without SSE4.2.
uint32_t crc32c_portable(uint32_t crc, const void* data, size_t n) noexcept;

}  // namespace monitor::wire
