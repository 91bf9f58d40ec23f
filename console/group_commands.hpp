// monitorctl's group and template commands.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace monitor::console {

class Console;

/// monitorctl group add|list|show|rm|bind|unbind
int group_command(int argc, char** argv);
/// monitorctl template add|list|show|rm
int template_command(int argc, char** argv);

/// Which of `candidates` the group holds now; nullopt when there is no such group.
std::optional<std::vector<int64_t>> group_servers(Console& console, const std::string& group,
                                                  const std::vector<int64_t>& candidates);

}  // namespace monitor::console
