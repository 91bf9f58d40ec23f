// Fast non-cryptographic hashing for names and series keys.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace monitor {

__extension__ using uint128_t = unsigned __int128;

/// 64x64 -> 128 multiply folded to 64 bits (the wyhash mixing step).
inline uint64_t mix64(uint64_t a, uint64_t b) noexcept {
  const uint128_t r = static_cast<uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

/// Hash of a byte string, 8 bytes per step; stable across processes and builds
/// of the same version (it is stored in shared memory).
inline uint64_t hash_bytes(const char* p, size_t n, uint64_t seed) noexcept {
  constexpr uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL;
  uint64_t h = seed ^ mix64(n ^ k0, k1);
  const size_t total = n;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix64(h ^ w, k1);
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    // The last n bytes, zero-extended (little-endian), read with fixed-size
    // loads: a memcpy of a variable size is a call, and cost more than the hash.
    uint64_t w;
    if (total >= 8) {
      std::memcpy(&w, p + n - 8, 8);  // overlaps bytes already hashed; shifted out
      w >>= (8 - n) * 8;
    } else if (n >= 4) {
      uint32_t lo, hi;
      std::memcpy(&lo, p, 4);
      std::memcpy(&hi, p + n - 4, 4);
      w = uint64_t{lo} | (uint64_t{hi} << ((n - 4) * 8));
    } else {
      const auto byte = [&](size_t i) { return uint64_t{static_cast<unsigned char>(p[i])} << (i * 8); };
      w = byte(0) | byte(n / 2) | byte(n - 1);
    }
    h = mix64(h ^ w ^ (uint64_t{n} << 56), k0);
  }
  return h;
}

inline uint64_t hash_name_pair(std::string_view service, std::string_view attr) noexcept {
  return hash_bytes(attr.data(), attr.size(), hash_bytes(service.data(), service.size(), 0x9E3779B97F4A7C15ULL));
}

}  // namespace monitor
