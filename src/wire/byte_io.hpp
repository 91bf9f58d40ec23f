// Bounds-checked little-endian and varint encoding for payloads.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace monitor::wire {

/// Appends encoded values to a string. Not thread-safe.
class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) noexcept : out_(out) {}

  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32le(uint32_t v) {
    char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
    out_.append(b, 4);
  }
  void u64le(uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
    out_.append(b, 8);
  }
  void varint(uint64_t v) {
    if (v < 0x80) {  // most counts, ids and small values
      out_.push_back(static_cast<char>(v));
      return;
    }
    char b[10];  // one append, not a push_back per byte
    size_t n = 0;
    while (v >= 0x80) {
      b[n++] = static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    b[n++] = static_cast<char>(v);
    out_.append(b, n);
  }
  void svarint(int64_t v) {
    varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  /// A name's bytes are written as given; callers pass valid names.
  void name(std::string_view n) {
    u8(static_cast<uint8_t>(n.size()));
    out_.append(n);
  }
  void string(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }

 private:
  std::string& out_;
};

/// Reads encoded values from a byte range. The first failure makes every later
/// read fail too (a sticky error), so a decoder can check once at the end of a
/// group of reads. Never reads outside the range. Not thread-safe.
class ByteReader {
 public:
  static constexpr size_t kMaxString = 4096;

  explicit ByteReader(std::string_view bytes) noexcept : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool ok() const noexcept { return ok_; }
  size_t remaining() const noexcept { return ok_ ? static_cast<size_t>(end_ - p_) : 0; }
  /// True when everything was read and nothing failed.
  bool done() const noexcept { return ok_ && p_ == end_; }

  uint8_t u8() noexcept {
    if (!need(1)) return 0;
    return static_cast<uint8_t>(*p_++);
  }
  uint32_t u32le() noexcept {
    if (!need(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p_[i])} << (8 * i);
    p_ += 4;
    return v;
  }
  uint64_t u64le() noexcept {
    if (!need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(p_[i])} << (8 * i);
    p_ += 8;
    return v;
  }
  uint64_t varint() noexcept {
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (!need(1)) return 0;
      const auto byte = static_cast<uint8_t>(*p_++);
      if (i == 9 && byte > 1) return fail();  // would overflow 64 bits
      v |= uint64_t{byte & 0x7Fu} << (7 * i);
      if ((byte & 0x80) == 0) return v;
    }
    return fail();  // more than 10 bytes
  }
  int64_t svarint() noexcept {
    const uint64_t z = varint();
    return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }
  /// A name: 1-64 bytes. Validity of the characters is the caller's check.
  std::string_view name() noexcept {
    const uint8_t n = u8();
    if (!ok_ || n == 0 || n > 64 || !need(n)) return fail_view();
    const std::string_view v(p_, n);
    p_ += n;
    return v;
  }
  std::string_view string() noexcept {
    const uint64_t n = varint();
    if (!ok_ || n > kMaxString || !need(n)) return fail_view();
    const std::string_view v(p_, n);
    p_ += n;
    return v;
  }
  /// For counts: fails unless at least `count * min_bytes_each` bytes remain,
  /// so a forged count cannot make the caller allocate.
  bool plausible_count(uint64_t count, size_t min_bytes_each) noexcept {
    if (!ok_) return false;
    if (count > remaining() / (min_bytes_each == 0 ? 1 : min_bytes_each)) {
      fail();
      return false;
    }
    return true;
  }
  uint64_t fail() noexcept {
    ok_ = false;
    return 0;
  }

 private:
  bool need(uint64_t n) noexcept {
    if (!ok_ || n > static_cast<uint64_t>(end_ - p_)) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::string_view fail_view() noexcept {
    ok_ = false;
    return {};
  }

  const char* p_;
  const char* end_;
  bool ok_ = true;
};

}  // namespace monitor::wire
