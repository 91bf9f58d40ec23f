// Changing rules, alarms and silences in the registry as people do, from
// monitorctl and the dashboard alike: one compare-and-set loop for each change.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/system/error_code.hpp>

#include "alarm/records.hpp"
#include "alarm/rule.hpp"
#include "registry/registry.hpp"

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

/// What a change of a rule or a silence came to.
struct ChangeOutcome {
  enum class Status { kDone, kNotFound, kExists, kChangedMeanwhile, kRegistryFailed };
  Status status = Status::kDone;
  std::string name;                 // kExists / kNotFound: which one
  boost::system::error_code error;  // kRegistryFailed: what the registry said
};

/// Stores `rules` in one commit; a rule of the same name is an error
/// (kExists) unless `replace`. kChangedMeanwhile when another writer changed
/// one of them between the read and the commit: nothing was stored.
ChangeOutcome store_rules(registry::Registry& registry, const std::vector<Rule>& rules, bool replace);

/// Removes a rule and its alarms' states in one commit: the judger writes the
/// states only while the rule stands, so neither outlives the other.
ChangeOutcome remove_rule(registry::Registry& registry, const std::string& name);

/// Turns a rule's evaluation on or off, keeping its alarms' states (a
/// compare-and-set loop of at most `tries` rounds).
ChangeOutcome set_rule_enabled(registry::Registry& registry, const std::string& name, bool enabled, int tries = 50);

/// Stores a new silence under a fresh id ("s" + the milliseconds of `now_ms`),
/// set in `silence`; kExists if that id is taken (two at once: try again).
ChangeOutcome add_silence(registry::Registry& registry, Silence& silence, int64_t now_ms);

/// Removes a silence; kNotFound if there is none of that id.
ChangeOutcome remove_silence(registry::Registry& registry, const std::string& id);

}  // namespace monitor::alarm
