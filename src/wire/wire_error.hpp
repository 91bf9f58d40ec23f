// Why a frame or payload was rejected (docs/protocol.md, "Frames").
#pragma once

#include <string_view>

namespace monitor::wire {

enum class WireError {
  kOk,
  kBadMagic,
  kBadVersion,
  kUnknownType,
  kBadFlags,
  kTooLarge,
  kBadChecksum,
  kBadPayload,
  kUnknownNameId,
};

/// The reason as docs/protocol.md names it ("bad_checksum").
constexpr std::string_view wire_error_name(WireError e) noexcept {
  switch (e) {
    case WireError::kOk: return "ok";
    case WireError::kBadMagic: return "bad_magic";
    case WireError::kBadVersion: return "bad_version";
    case WireError::kUnknownType: return "unknown_type";
    case WireError::kBadFlags: return "bad_flags";
    case WireError::kTooLarge: return "too_large";
    case WireError::kBadChecksum: return "bad_checksum";
    case WireError::kBadPayload: return "bad_payload";
    case WireError::kUnknownNameId: return "unknown_name_id";
  }
  return "unknown";
}

}  // namespace monitor::wire
