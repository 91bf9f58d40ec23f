#pragma once

namespace monitor::console {

/// monitorctl judger list|add|rm
int judger_command(int argc, char** argv);
/// monitorctl status: every part, live or gone.
int status_command(int argc, char** argv);

}  // namespace monitor::console
