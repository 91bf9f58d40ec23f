// Failed sign-ins, per user and per client address: after a few free
// failures each next attempt waits a delay that doubles per failure, so
// guessing passwords is slow, and a flood at one user or from one address
// costs the others nothing (docs/dashboard.md).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace monitor::dashboard {

struct ThrottleOptions {
  int free_failures = 5;        // failures before any delay
  int64_t max_delay_s = 300;    // the delay's ceiling
  int64_t forget_after_s = 900; // a record with no failure for this long is dropped
  size_t max_records = 10000;   // per table (users, addresses): whatever input, a bound
};

/// Thread-safe.
class SignInThrottle {
 public:
  explicit SignInThrottle(ThrottleOptions options) : options_(options) {}

  /// Seconds before `user` from `address` may try again; 0: now.
  int64_t wait_s(const std::string& user, const std::string& address, int64_t now_s);
  void failed(const std::string& user, const std::string& address, int64_t now_s);
  /// The user's record goes; the address's stays (one good account must not
  /// clear an address that guesses at others).
  void succeeded(const std::string& user);

 private:
  struct Record {
    int failures = 0;
    int64_t next_try_s = 0;
    int64_t last_failure_s = 0;
  };
  using Table = std::unordered_map<std::string, Record>;
  int64_t wait_in(const Table& table, const std::string& key, int64_t now_s) const;
  void fail_in(Table& table, const std::string& key, int64_t now_s);
  void sweep(Table& table, int64_t now_s);

  const ThrottleOptions options_;
  std::mutex mutex_;
  Table users_, addresses_;  // GUARDED_BY(mutex_)
};

}  // namespace monitor::dashboard
