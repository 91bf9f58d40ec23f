// monitorctl query: a series from the judger that owns it.
#pragma once

namespace monitor::console {

/// `monitorctl query ...`: prints a series from a judger as a table and a
/// sparkline, or as JSON. Returns the process exit code.
int query_command(int argc, char** argv);

}  // namespace monitor::console
