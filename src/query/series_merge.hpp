// A minute whose data two judgers hold (its service moved during it) read
// exactly: the mergeable state of each minute (/api/cells of every judger
// that held the service) merged by each op's rule, then turned into the
// op's value, in the same shape /api/series answers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace monitor::query {

/// Merges the /api/cells replies of several judgers into an /api/series-like
/// body ({"points": [[time, value, min, max, minutes], ...], ...}), buckets of
/// `step` seconds aligned to the epoch, each the average of its minutes'
/// values with their min and max (as a judger answers). nullopt and `error`
/// set when a reply does not have the expected shape or bounds.
std::optional<boost::json::object> merge_cells(const std::vector<boost::json::value>& replies, const std::string& op,
                                               int64_t step, std::string& error);

}  // namespace monitor::query
