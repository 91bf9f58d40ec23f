// libmonitor C++ API: names checked at compile time, ids interned once.
#pragma once

#include <cstdint>
#include <string_view>

#ifndef MONITOR_CPP_API
#define MONITOR_CPP_API 1  // hides the global monitor() that would clash with namespace monitor
#endif
#include "monitor/monitor.h"

namespace monitor {

/// Mirrors the MONITOR_* result codes of monitor.h.
enum class [[nodiscard]] Errc : int {
  kOk = MONITOR_OK,
  kBadName = MONITOR_ERR_BAD_NAME,
  kRingFull = MONITOR_ERR_RING_FULL,
  kUnavailable = MONITOR_ERR_UNAVAILABLE,
  kBadOps = MONITOR_ERR_BAD_OPS,
  kVersion = MONITOR_ERR_VERSION,
  kNamesFull = MONITOR_ERR_NAMES_FULL,
  kBadTime = MONITOR_ERR_BAD_TIME,
};

/// Op bits; combine with |.
enum Op : int32_t {
  kSum = MONITOR_OP_SUM,
  kMax = MONITOR_OP_MAX,
  kMin = MONITOR_OP_MIN,
  kAvg = MONITOR_OP_AVG,
  kFirst = MONITOR_OP_FIRST,
  kLast = MONITOR_OP_LAST,
  kCount = MONITOR_OP_COUNT,
  kHist = MONITOR_OP_HIST,
};

inline constexpr int kMaxNameBytes = 64;

/// True if `name` follows [A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)+ and fits in
/// kMaxNameBytes. Usable at compile time.
constexpr bool is_valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  bool segment_start = true;
  int segments = 1;
  for (char c : name) {
    if (segment_start) {
      if (c < 'A' || c > 'Z') return false;
      segment_start = false;
    } else if (c == '.') {
      segment_start = true;
      ++segments;
    } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return !segment_start && segments >= 2;
}

/// A service or attr name. From a literal, a bad name is a compile error; from
/// runtime text use Name::checked(), which yields an empty Name when invalid.
class Name {
 public:
  consteval Name(const char* literal) : text_(literal) {  // NOLINT: implicit on purpose
    if (!is_valid_name(text_)) throw "monitor::Name: literal breaks the Service.Attr naming rule";
  }
  static constexpr Name checked(std::string_view text) noexcept {
    return is_valid_name(text) ? Name(text, 0) : Name(std::string_view{}, 0);
  }
  constexpr std::string_view view() const noexcept { return text_; }
  constexpr bool valid() const noexcept { return !text_.empty(); }

 private:
  constexpr Name(std::string_view text, int) noexcept : text_(text) {}
  std::string_view text_;
};

/// Reports `value` for (service, attr) now: the C++ spelling of the C
/// monitor() call. Hashes and compares the names on every call; prefer Attr on
/// hot paths.
inline Errc report(const char* service, const char* attr, int64_t server_id, int64_t value,
                   int32_t op_mask) noexcept {
  return static_cast<Errc>(monitor_report(service, attr, server_id, value, op_mask));
}

/// An interned (service, attr) pair. Copyable and thread-safe to share; the
/// hot call writes ids only. Construction never fails loudly: check error().
class Attr {
 public:
  /// Interns the pair. A bad name or a full handle table is kept in error()
  /// and every report() returns it. No ring yet is not a failure here: the
  /// handle is the process's own, and report() returns kUnavailable until a
  /// ring can be mapped (retried at most once a second), then succeeds.
  Attr(Name service, Name attr) noexcept {
    if (!service.valid() || !attr.valid()) {
      error_ = Errc::kBadName;
      return;
    }
    const int64_t interned = monitor_intern_n(service.view().data(), static_cast<uint32_t>(service.view().size()),
                         attr.view().data(), static_cast<uint32_t>(attr.view().size()));
    if (interned > 0) {
      handle_ = static_cast<monitor_handle_t>(interned);
      error_ = Errc::kOk;
    } else {
      error_ = static_cast<Errc>(interned);
    }
  }

  /// kOk when the pair is interned and report() can succeed.
  Errc error() const noexcept { return error_; }

  /// Reports `value` now. Never blocks; kRingFull when the report was dropped.
  Errc report(int64_t server_id, int64_t value, int32_t op_mask) const noexcept {
    if (handle_ == 0) return error_;
    return static_cast<Errc>(monitor_handle_report(handle_, server_id, value, op_mask));
  }

 private:
  monitor_handle_t handle_ = 0;
  Errc error_ = Errc::kUnavailable;
};

}  // namespace monitor
