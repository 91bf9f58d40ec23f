#include "health/health_reporter.hpp"

#include <unistd.h>

#include <cstdlib>

#include "common/clock.hpp"
#include "monitor/monitor.h"

namespace monitor::health {

HealthReporter::HealthReporter(monitor::Name service, int64_t server_id, bool enabled)
    : service_(service.view()), server_id_(server_id), enabled_(enabled) {}

HealthReporter::HealthReporter(Sink sink) : server_id_(0), enabled_(true), sink_(std::move(sink)) {}

bool HealthReporter::bound() {
  if (bound_) return true;
  if (!enabled_) return false;
  const int64_t now = realtime_ns();
  if (now < next_try_ns_) return false;
  next_try_ns_ = now + 10'000'000'000;  // an agent started later is found within 10 s
  const char* env = std::getenv(MONITOR_RING_ENV);
  const std::string ring = env != nullptr && *env != '\0' ? env : MONITOR_DEFAULT_RING;
  if (::access(("/dev/shm" + ring).c_str(), W_OK) != 0) return false;
  bound_ = monitor_init(ring.c_str()) == MONITOR_OK;
  return bound_;
}

void HealthReporter::send(monitor::Name attr, int64_t value, int32_t ops) {
  if (sink_) {
    if (!sink_(attr, value, ops)) ++failures_;
    return;
  }
  if (!bound()) return;
  const std::string name(attr.view());
  if (monitor_report(service_.c_str(), name.c_str(), server_id_, value, ops) != MONITOR_OK) ++failures_;
}

void HealthReporter::counter(monitor::Name attr, uint64_t total) {
  if (metrics_ != nullptr) metrics_->counter(attr.view(), total);
  uint64_t& last = last_totals_[std::string(attr.view())];
  const uint64_t delta = total >= last ? total - last : total;
  last = total;
  send(attr, static_cast<int64_t>(delta), MONITOR_OP_SUM);
}

void HealthReporter::gauge(monitor::Name attr, int64_t value) {
  if (metrics_ != nullptr) metrics_->gauge(attr.view(), static_cast<double>(value));
  send(attr, value, MONITOR_OP_LAST | MONITOR_OP_MAX | MONITOR_OP_MIN);
}

}  // namespace monitor::health
