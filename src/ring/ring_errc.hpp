// Error codes of the ring layer, as a boost::system error category so they sit
// beside errno values in one error_code.
#pragma once

#include <boost/system/error_code.hpp>

namespace monitor::ring {

enum class RingErrc {
  kNotReady = 1,     // the segment exists but its creator has not finished it
  kBadMagic,         // the object is not a libmonitor ring
  kVersionMismatch,  // made by an incompatible libmonitor
  kBadGeometry,      // header sizes are inconsistent with the object's size
};

const boost::system::error_category& ring_category() noexcept;

inline boost::system::error_code make_error_code(RingErrc e) noexcept {
  return {static_cast<int>(e), ring_category()};
}

}  // namespace monitor::ring

template <>
struct boost::system::is_error_code_enum<monitor::ring::RingErrc> : std::true_type {};
