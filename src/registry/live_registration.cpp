#include "registry/live_registration.hpp"

#include <algorithm>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "registry/placement.hpp"

namespace monitor::registry {

LiveRegistration::LiveRegistration(Registry& registry, std::string role, std::string kind, std::string name,
                                   std::chrono::milliseconds ttl)
    : registry_(registry),
      role_(std::move(role)),
      kind_(std::move(kind)),
      name_(std::move(name)),
      ttl_(ttl),
      thread_([this](std::stop_token stop) { run(stop); }) {}

LiveRegistration::~LiveRegistration() {
  thread_.request_stop();
  thread_.join();  // no refresh may follow the removal
  if (auto r = registry_.remove(kind_, name_); !r) {
    spdlog::warn("registry: cannot remove {}/{} on the way out: {} (it expires within {} ms)", kind_, name_,
                 r.error().message(), ttl_.count());
  }
}

void LiveRegistration::update(boost::json::value value) {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    first = !value_.has_value();
    value_ = std::move(value);
  }
  if (first) wake_.notify_all();  // register at once, not a period later
}

bool LiveRegistration::refresh(const boost::json::value& value) {
  if (auto r = registry_.put_live(kind_, name_, value, ttl_); !r) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    if (reachable_.exchange(false)) {
      spdlog::warn("registry: cannot refresh {}/{}: {}; working on the last known view and retrying", kind_, name_,
                   r.error().message());
    }
    traced_ = false;
    return false;
  }
  if (!traced_) {
    // Static, so it outlives the lease: how `status` knows a part that is gone.
    const std::string part = role_ + "." + name_;
    boost::json::object trace{{"role", role_}, {"name", name_}, {"registered", true},
                              {"first_seen_s", realtime_ns() / 1'000'000'000}};
    auto existing = registry_.get(kPartsKind, part);
    const bool has = existing && *existing && (*existing)->value.is_object() &&
                     (*existing)->value.as_object().contains("registered");
    if (has || registry_.put(kPartsKind, part, trace)) traced_ = true;
  }
  if (!reachable_.exchange(true)) spdlog::info("registry: reachable again; {}/{} registered again", kind_, name_);
  return true;
}

void LiveRegistration::run(std::stop_token stop) {
  using namespace std::chrono;
  const milliseconds period = std::max(milliseconds(100), ttl_ / 3);
  milliseconds backoff(100);
  std::unique_lock lock(mutex_);
  wake_.wait(lock, stop, [this] { return value_.has_value(); });
  while (!stop.stop_requested()) {
    const boost::json::value value = *value_;
    lock.unlock();
    const bool ok = refresh(value);
    lock.lock();
    const milliseconds wait = ok ? period : std::min(backoff, period);
    backoff = ok ? milliseconds(100) : std::min(backoff * 2, period);
    wake_.wait_for(lock, stop, wait, [] { return false; });
  }
}

}  // namespace monitor::registry
