#include "proxy/attr_registrar.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "registry/service_attrs.hpp"

namespace monitor::proxy {

AttrRegistrar::AttrRegistrar(registry::Registry& registry) : registry_(registry) {
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

AttrRegistrar::~AttrRegistrar() {
  thread_.request_stop();
  thread_.join();  // before the queue it reads goes
}

bool AttrRegistrar::admit(const std::string& service, const std::string& attr, size_t registered, int64_t bound) {
  std::lock_guard lock(mutex_);
  auto& waiting = pending_[service];
  if (waiting.contains(attr)) return true;
  if (full_.contains({service, attr}) || static_cast<int64_t>(registered + waiting.size()) >= bound) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  waiting.insert(attr);
  queue_.emplace_back(service, attr);
  wake_.notify_one();
  return true;
}

void AttrRegistrar::drop_registered(
    const std::function<bool(const std::string& service, const std::string& attr)>& registered) {
  std::lock_guard lock(mutex_);
  for (auto it = pending_.begin(); it != pending_.end();) {
    std::erase_if(it->second, [&](const std::string& attr) { return registered(it->first, attr); });
    it = it->second.empty() ? pending_.erase(it) : std::next(it);
  }
}

size_t AttrRegistrar::waiting() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void AttrRegistrar::run(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (true) {
    // A stopped wait returns what the predicate says: with attrs queued and
    // the registry away, a stopping Bonnie retried them in a busy loop and
    // never exited (found by deploy/run-local.sh, which stops etcd first).
    if (stop.stop_requested() || !wake_.wait(lock, stop, [&] { return !queue_.empty(); })) return;
    const auto [service, attr] = queue_.front();
    lock.unlock();
    const auto outcome = registry::add_auto_attr(registry_, service, attr);
    lock.lock();
    if (!outcome) {
      // The registry is away: the attr stays queued (and routed), tried again in a second.
      spdlog::warn("registering attr {} of {}: {}; tried again in 1 s", attr, service, outcome.error().message());
      wake_.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
      continue;
    }
    queue_.pop_front();
    switch (*outcome) {
      case registry::AutoAttr::kAdded:
        registered_.fetch_add(1, std::memory_order_relaxed);
        spdlog::info("registered attr {} of {} (the service takes new attrs: auto_attrs)", attr, service);
        break;
      case registry::AutoAttr::kKnown: break;
      case registry::AutoAttr::kFull:
        // Another Bonnie filled the service first: what was routed is stored; no more.
        full_.insert({service, attr});
        if (auto it = pending_.find(service); it != pending_.end()) it->second.erase(attr);
        refused_.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("attr {} of {} refused: the service has its auto_attrs attrs already", attr, service);
        break;
    }
  }
}

}  // namespace monitor::proxy
