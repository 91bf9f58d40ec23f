// monitorctl report daily.
#pragma once

namespace monitor::console {

/// monitorctl report daily: alarms fired, top services by reports and the
/// system's own health over a day, printed or mailed.
int report_command(int argc, char** argv);

}  // namespace monitor::console
