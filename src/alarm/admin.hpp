// Changing alarms' state in the registry as people do, from monitorctl and
// the dashboard alike: one compare-and-set loop for each change.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/system/error_code.hpp>

#include "common/registry/registry.hpp"

namespace monitor::alarm {

struct AckOutcome {
  enum class Status { kDone, kNoAlarms, kNothingToAcknowledge, kRegistryFailed, kKeptChanging };
  Status status = Status::kDone;
  int acknowledged = 0;
  boost::system::error_code error;  // kRegistryFailed: what the registry said
};

/// Marks `rule`'s firing, unacknowledged alarms (every one, or only `server`'s;
/// -1 is the total's) acknowledged by `by` at `minute`: no repeats, no
/// escalation. By compare-and-set on alarms/<rule>, read again after each
/// write that lost to another (the judger's, an ack from elsewhere), at most
/// `tries` times, so neither side's change is lost.
AckOutcome acknowledge(registry::Registry& registry, const std::string& rule, std::optional<int64_t> server,
                       const std::string& by, int64_t minute, int tries = 50);

}  // namespace monitor::alarm
