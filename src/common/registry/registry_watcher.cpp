#include "common/registry/registry_watcher.hpp"

#include <thread>

namespace monitor::registry {

bool RegistryWatcher::poll() {
  auto entries = registry_.list(kind_);
  if (!entries) return false;
  // A refresh moves only the expiry: not a change anyone needs to hear about.
  std::vector<Entry> comparable = *entries;
  for (auto& e : comparable) e.expires_at_ns = 0;
  if (!last_ || *last_ != comparable) {
    last_ = std::move(comparable);
    on_change_(*entries);
  }
  return true;
}

void RegistryWatcher::run(std::chrono::milliseconds interval, const std::function<bool()>& keep_going) {
  while (keep_going()) {
    poll();
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace monitor::registry
