// A sink handing every aggregate to two others.
#pragma once

#include "agent/aggregate_record.hpp"

namespace monitor::agent {

/// Hands every record to two sinks (the JSON output and the forwarder).
class TeeSink final : public AggregateSink {
 public:
  TeeSink(AggregateSink& first, AggregateSink& second) : first_(first), second_(second) {}
  void write(const AggregateRecord& record) override {
    first_.write(record);
    second_.write(record);
  }
  void end_second(int64_t second) override {
    first_.end_second(second);
    second_.end_second(second);
  }

 private:
  AggregateSink& first_;
  AggregateSink& second_;
};

}  // namespace monitor::agent
