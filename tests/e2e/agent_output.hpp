// Reads monitor-agent JSON-lines output and merges it per series across seconds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include "model/log_histogram.hpp"
#include "model/stats.hpp"

namespace monitor::e2e {

using SeriesKey = std::tuple<std::string, std::string, int64_t, std::string>;  // service, attr, server, op

struct MergedSeries {
  model::Stats stats;  // fields that op reports, merged by its rule
  model::LogHistogram hist;
  int seconds = 0;
};

/// Parses every line of `path` and merges records per series key. Throws
/// std::runtime_error on a line that is not a well-formed record.
std::map<SeriesKey, MergedSeries> read_agent_output(const std::string& path);

/// Sum of a Monitor.Agent SUM counter over all seconds (0 if absent).
int64_t self_metric_sum(const std::map<SeriesKey, MergedSeries>& series, const std::string& attr);

}  // namespace monitor::e2e
