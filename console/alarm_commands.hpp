// monitorctl's rule, alarm and silence commands, and the judger reads they share.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>

namespace monitor::console {

class Console;

/// The live judgers' names and query addresses.
std::vector<std::pair<std::string, std::string>> judger_queries(Console& console);
/// The alarm history of every live judger in [from, to) (rule "" for all),
/// newest first, each row with its "judger"; a judger that does not answer
/// is said on stderr.
boost::json::array history_of(Console& console, const std::string& rule, int64_t from, int64_t to);

/// monitorctl rule add|list|show|rm|enable|disable|check|test
int rule_command(int argc, char** argv);
/// monitorctl alarm list|show|ack|history
int alarm_command(int argc, char** argv);
/// monitorctl silence add|list|rm
int silence_command(int argc, char** argv);

}  // namespace monitor::console
