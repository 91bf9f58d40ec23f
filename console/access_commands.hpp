// monitorctl's role, user and auth commands.
#pragma once

namespace monitor::console {

/// monitorctl role add|list|rm
int role_command(int argc, char** argv);
/// monitorctl user add|list|rm|grant|passwd|token
int user_command(int argc, char** argv);
/// monitorctl auth enable|disable (etcd)
int auth_command(int argc, char** argv);

}  // namespace monitor::console
