// A sink that tells the crash journal where each second's write-out stands.
#pragma once

#include <cstdint>

#include "agent/aggregate_record.hpp"
#include "agent/forwarder.hpp"
#include "agent/recovery_journal.hpp"

namespace monitor::agent {

/// Tells the crash journal where each second's write-out stands: begun (and
/// at which batch sequence) before its first record reaches `inner`,
/// finished once `inner` has it. A second cut off between the two is
/// written out again by the next agent under the same sequences.
class JournalingSink final : public AggregateSink {
 public:
  JournalingSink(AggregateSink& inner, RecoveryJournal& journal, const Forwarder* forwarder)
      : inner_(inner), journal_(journal), forwarder_(forwarder) {}

  void write(const AggregateRecord& record) override {
    if (record.second != open_second_) {
      open_second_ = record.second;
      journal_.begin_flush(record.second, forwarder_ != nullptr ? forwarder_->first_sequence_for(record.second) : 0);
    }
    inner_.write(record);
  }
  void end_second(int64_t second) override {
    inner_.end_second(second);
    journal_.end_flush(second);
    open_second_ = INT64_MIN;
  }

 private:
  AggregateSink& inner_;
  RecoveryJournal& journal_;
  const Forwarder* forwarder_;
  int64_t open_second_ = INT64_MIN;
};

}  // namespace monitor::agent
