#pragma once

#include <string>
#include <vector>

namespace monitor::console {

class Console;

/// A part the registry knows: live (with its address and health in words),
/// gone (its lease expired) or declared (never ran).
struct PartState {
  std::string role, name, state = "gone", address = "-", health = "-";
};
std::vector<PartState> part_states(Console& console);

/// monitorctl judger list|add|rm
int judger_command(int argc, char** argv);
/// monitorctl status: every part, live or gone.
int status_command(int argc, char** argv);

}  // namespace monitor::console
