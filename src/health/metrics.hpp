// A daemon's own health as Prometheus text (`/metrics`): the counters and
// gauges it reports as Monitor.*, under conventional names, so the system can
// be watched from outside even while it is down itself.
//
//   Monitor.Proxy Reports.In (a counter)  ->  monitor_proxy_reports_in_total
//   Monitor.Proxy Spool.Batches (a gauge) ->  monitor_proxy_spool_batches
//   Process.RssBytes                       ->  process_resident_memory_bytes
//   Flush.Millis                           ->  monitor_agent_flush_seconds (scaled to seconds)
//   Monitor.Judger Minutes.Stored          ->  monitor_judger_rollups_stored_total (minutes as things, not time)
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace monitor::health {

/// Thread-safe: the daemon's loop sets values, the metrics server reads them.
class Metrics {
 public:
  /// `daemon`: agent, proxy or judger (the names' prefix monitor_<daemon>_).
  explicit Metrics(std::string daemon) : daemon_(std::move(daemon)) {}

  /// A monotonic total (the _total counter).
  void counter(std::string_view attr, uint64_t total);
  /// A level.
  void gauge(std::string_view attr, double value);

  /// The text exposition format 0.0.4, one HELP and TYPE per metric, sorted.
  std::string text() const;

 private:
  struct Value {
    bool counter = false;
    double value = 0;
  };
  const std::string daemon_;
  mutable std::mutex mutex_;
  std::map<std::string, Value, std::less<>> values_;  // by attr; GUARDED_BY(mutex_)
};

/// The Prometheus name of a Monitor.<Daemon> attr, and the factor its value
/// is multiplied by for the name's unit (Millis -> seconds).
std::string prometheus_name(std::string_view daemon, std::string_view attr, bool counter, double& scale);

}  // namespace monitor::health
