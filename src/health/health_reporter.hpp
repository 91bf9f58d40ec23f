// A daemon's own health metrics (Monitor.Proxy, Monitor.Judger), reported
// through libmonitor into the local agent like any other service's, so they
// are rolled up, stored and queried the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "health/metrics.hpp"
#include "monitor/monitor.hpp"

namespace monitor::health {

/// Not thread-safe: the daemon's event loop. Names are monitor::Name, so a
/// literal that breaks the Service.Attr rule does not compile (the SDK would
/// refuse it at run time, every time).
class HealthReporter {
 public:
  /// Reports nothing unless `enabled` and an agent's ring exists: a daemon
  /// must not create a ring nobody drains.
  HealthReporter(monitor::Name service, int64_t server_id, bool enabled);
  /// Reports into `sink` instead (the agent's own aggregator: the agent is
  /// what drains the ring); false from it counts as a failure.
  using Sink = std::function<bool(monitor::Name attr, int64_t value, int32_t ops)>;
  explicit HealthReporter(Sink sink);

  /// Every value reported also goes to `metrics` (served as /metrics),
  /// whether or not an agent takes the reports.
  void expose(Metrics* metrics) noexcept { metrics_ = metrics; }

  /// A monotonic counter: the increase since the last call is reported (SUM).
  void counter(monitor::Name attr, uint64_t total);
  /// A level (LAST, MAX, MIN).
  void gauge(monitor::Name attr, int64_t value);

  /// Reports the SDK refused (ring full, no room for a name); counted, not retried.
  uint64_t failures() const noexcept { return failures_; }

 private:
  bool bound();
  void send(monitor::Name attr, int64_t value, int32_t ops);

  const std::string service_;
  const int64_t server_id_;
  const bool enabled_;
  bool bound_ = false;
  int64_t next_try_ns_ = 0;
  std::unordered_map<std::string, uint64_t> last_totals_;
  uint64_t failures_ = 0;
  Metrics* metrics_ = nullptr;
  Sink sink_;
};

}  // namespace monitor::health
