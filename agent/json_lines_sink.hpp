// A sink writing aggregates as JSON lines to a file or stdout.
#pragma once

#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "agent/aggregate_record.hpp"
#include "common/log_throttle.hpp"
#include "agent/name_registry.hpp"

namespace monitor::agent {

/// Writes each record as one JSON object per line (format in docs/agent.md) to
/// a file or stdout, in chunks of kFlushBytes and at the end of each second. A failed write (disk full, closed
/// pipe) is counted and the second's records are dropped, never fatal.
/// Not thread-safe.
class JsonLinesSink final : public AggregateSink {
 public:
  /// Opens `path` for appending; "-" means stdout. Throws std::runtime_error
  /// with the reason when the file cannot be opened (a startup error).
  JsonLinesSink(const std::string& path, const NameRegistry& names);
  ~JsonLinesSink() override;
  JsonLinesSink(const JsonLinesSink&) = delete;
  JsonLinesSink& operator=(const JsonLinesSink&) = delete;

  void write(const AggregateRecord& record) override;
  void end_second(int64_t second) override;

  uint64_t records_written() const noexcept { return records_written_; }
  uint64_t records_failed() const noexcept { return records_failed_; }

 private:
  static constexpr size_t kFlushBytes = 256 * 1024;  // bounds memory whatever the series count
  void write_out();

  const NameRegistry& names_;
  std::FILE* file_;
  bool owns_file_;
  fmt::memory_buffer buffer_;
  uint64_t pending_ = 0;
  uint64_t records_written_ = 0;
  uint64_t records_failed_ = 0;
  LogThrottle write_log_;
};

}  // namespace monitor::agent
