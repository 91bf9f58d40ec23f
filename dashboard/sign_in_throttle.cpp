#include "dashboard/sign_in_throttle.hpp"

#include <algorithm>

namespace monitor::dashboard {

int64_t SignInThrottle::wait_in(const Table& table, const std::string& key, int64_t now_s) const {
  const auto it = table.find(key);
  return it == table.end() ? 0 : std::max<int64_t>(0, it->second.next_try_s - now_s);
}

int64_t SignInThrottle::wait_s(const std::string& user, const std::string& address, int64_t now_s) {
  std::lock_guard lock(mutex_);
  return std::max(wait_in(users_, user, now_s), wait_in(addresses_, address, now_s));
}

void SignInThrottle::sweep(Table& table, int64_t now_s) {
  std::erase_if(table, [&](const auto& entry) { return entry.second.last_failure_s + options_.forget_after_s <= now_s; });
}

void SignInThrottle::fail_in(Table& table, const std::string& key, int64_t now_s) {
  auto it = table.find(key);
  if (it == table.end()) {
    if (table.size() >= options_.max_records) sweep(table, now_s);
    // Still full of fresh failures: this key goes untracked; the other table
    // (the address, the user) still holds the attempt back.
    if (table.size() >= options_.max_records) return;
    it = table.emplace(key, Record{}).first;
  } else if (it->second.last_failure_s + options_.forget_after_s <= now_s) {
    it->second = Record{};
  }
  Record& r = it->second;
  ++r.failures;
  r.last_failure_s = now_s;
  const int over = r.failures - options_.free_failures;
  if (over > 0) r.next_try_s = now_s + std::min<int64_t>(options_.max_delay_s, int64_t{1} << std::min(over - 1, 30));
}

void SignInThrottle::failed(const std::string& user, const std::string& address, int64_t now_s) {
  std::lock_guard lock(mutex_);
  fail_in(users_, user, now_s);
  fail_in(addresses_, address, now_s);
}

void SignInThrottle::succeeded(const std::string& user) {
  std::lock_guard lock(mutex_);
  users_.erase(user);
}

}  // namespace monitor::dashboard
