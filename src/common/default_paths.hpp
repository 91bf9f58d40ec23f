// Where the daemons keep their state and sockets unless told otherwise:
// conventional absolute places, so a daemon started from another directory
// finds the same data.
#pragma once

#include <string>

namespace monitor {

/// /var/lib/monitor as root; $XDG_STATE_HOME/monitor, or
/// ~/.local/state/monitor, otherwise.
std::string default_state_dir();

/// /run/monitor as root; $XDG_RUNTIME_DIR/monitor, or /tmp/monitor-<uid>,
/// otherwise.
std::string default_runtime_dir();

/// The registry every part uses unless told: file:<state dir>/registry.
inline std::string default_registry() { return "file:" + default_state_dir() + "/registry"; }

}  // namespace monitor
