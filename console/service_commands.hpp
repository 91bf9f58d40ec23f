// monitorctl's service, attr and placement commands.
#pragma once

namespace monitor::console {

/// monitorctl service add|list|show|rm|assign
int service_command(int argc, char** argv);
/// monitorctl attr add|list|rm
int attr_command(int argc, char** argv);
/// monitorctl placement [auto|manual]
int placement_command(int argc, char** argv);

}  // namespace monitor::console
