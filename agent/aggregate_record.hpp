// One finished per-second aggregate, and the sink interface the aggregator writes them to.
#pragma once

#include <cstdint>

#include "model/log_histogram.hpp"
#include "model/stats.hpp"

namespace monitor::agent {

/// One finished per-second aggregate of one series key (service, attr, server,
/// op), as the aggregator hands it to a sink. Views stay valid for the call.
struct AggregateRecord {
  int64_t second;  // Unix seconds
  uint32_t name_id;
  int64_t server_id;
  uint32_t op;  // a single op bit
  const model::Stats* stats;
  const model::LogHistogram* hist;  // non-null for HIST only
};

/// Where finished seconds go. Called from the agent's one thread.
class AggregateSink {
 public:
  virtual ~AggregateSink() = default;
  virtual void write(const AggregateRecord& record) = 0;
  /// Called after the last record of `second`; a place to flush.
  virtual void end_second(int64_t second) = 0;
};

}  // namespace monitor::agent
