// monitorctl's judger and status commands.
#pragma once

#include <string>
#include <vector>

#include "registry/parts.hpp"

namespace monitor::console {

class Console;

using registry::PartState;
/// registry::read_part_states(), or a ConsoleError.
std::vector<PartState> part_states(Console& console);

/// monitorctl judger list|add|rm
int judger_command(int argc, char** argv);
/// monitorctl status: every part, live or gone.
int status_command(int argc, char** argv);

}  // namespace monitor::console
