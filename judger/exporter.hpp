// Export of finished minutes to time-series databases in InfluxDB line
// protocol over HTTP (docs/export.md).
//
// The store queues a row (minute, version) in the transaction that completes
// each version of a minute, so what is queued is whole. Each target has a
// thread of its own that reads the queue after its durable position (kept in
// export.db beside the store), posts the minutes' points and only then moves
// the position: a judger killed at any moment re-sends at most what it was
// posting, which overwrites the same points. A target that is down keeps its
// position; when it returns it receives every minute of the last
// `backlog_minutes`, and what fell off is counted and logged.
//
// Per-second data (off by default): the store keeps each version's records of
// a minute (export_seconds); a version's seconds are every kept version's
// records merged, so an amended second is sent whole and overwrites.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace monitor::judger {

struct ExportTarget {
  /// How amendments overwrite: InfluxDB replaces a point of the same series
  /// and time; VictoriaMetrics keeps both, so each version of a minute is
  /// written 1 ms later than the one before and the newest wins (docs/export.md).
  enum class Kind { kInfluxDb, kVictoriaMetrics };
  std::string name;  // [A-Za-z0-9._-]: the key of its position
  Kind kind = Kind::kVictoriaMetrics;
  std::string url;   // the /write endpoint, with ?db=… for InfluxDB
};

struct ExportOptions {
  std::vector<ExportTarget> targets;
  int64_t backlog_minutes = 1440;  // minutes a target that was down still receives
  bool seconds = false;  // also each second's aggregates, as measurement monitor_second
  size_t lines_per_post = 5000;
  long timeout_s = 10;
};

/// Per target; counters since start.
struct ExportFigures {
  std::string target;
  uint64_t minutes = 0;   // versions of minutes delivered
  uint64_t points = 0;    // values delivered (a line carries one per op)
  uint64_t failures = 0;  // posts that failed (each retried)
  uint64_t dropped = 0;   // minutes that fell off the backlog before delivery
  uint64_t refused = 0;   // lines the target refused for good (a 4xx such as "beyond retention policy"): dropped
  int64_t backlog = 0;    // queued minutes not yet delivered
  int64_t lag_ms = 0;     // age of the oldest of those (0 when none)
  int64_t last_delivery_ms = 0;  // time from a minute's queueing to its delivery, the last one delivered
  uint64_t seconds_dropped = 0;  // versions of minutes whose seconds were no longer all kept: not sent
};

/// The line protocol text of one point: exposed for the unit test.
std::string export_line(std::string_view measurement, std::string_view service, std::string_view attr,
                        int64_t server_id, const std::vector<std::pair<std::string_view, double>>& fields,
                        int64_t timestamp);

class Exporter {
 public:
  /// Opens export.db in `data_dir` and starts a thread per target. Throws
  /// std::runtime_error when export.db cannot be opened.
  Exporter(const std::filesystem::path& data_dir, const std::filesystem::path& store_file, ExportOptions options);
  ~Exporter();  // stops the threads; a post in flight ends within its timeout
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  /// Wakes the threads: a minute was queued.
  void minute_queued();
  std::vector<ExportFigures> figures() const;

 private:
  struct Target;
  class TargetRun;
  void run(Target& target, std::stop_token stop);

  const std::filesystem::path state_file_;
  const std::filesystem::path store_file_;
  const ExportOptions options_;
  std::vector<std::unique_ptr<Target>> targets_;
  mutable std::mutex mutex_;
  std::condition_variable_any wake_;  // woken at once by a thread's stop token
  uint64_t generation_ = 0;  // GUARDED_BY(mutex_): bumped per queued minute
  std::vector<std::jthread> threads_;  // one per target
};

}  // namespace monitor::judger
