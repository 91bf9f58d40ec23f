// monitorctl host list|show: the hosts whose agents registered (docs/console.md).
#pragma once

namespace monitor::console {

int host_command(int argc, char** argv);

}  // namespace monitor::console
