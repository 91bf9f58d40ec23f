#pragma once

namespace monitor::console {

/// monitorctl rule add|list|show|rm|enable|disable|check
int rule_command(int argc, char** argv);
/// monitorctl alarm list|show|ack|history
int alarm_command(int argc, char** argv);
/// monitorctl silence add|list|rm
int silence_command(int argc, char** argv);

}  // namespace monitor::console
