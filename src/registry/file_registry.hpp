// The registry in a local directory (docs/registry.md).
#pragma once

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>

#include "common/log_throttle.hpp"
#include "registry/registry.hpp"

namespace monitor::registry {

/// The `file:` backend: <dir>/<kind>/<name>.json, written by atomic rename
/// under an flock(2) of <dir>/.lock (docs/registry.md). Thread-safe; many
/// processes on one host may share the directory.
class FileRegistry final : public Registry {
 public:
  /// Uses `dir`, creating it if needed.
  [[nodiscard]] static boost::system::result<std::unique_ptr<FileRegistry>> open(const std::filesystem::path& dir);

  boost::system::result<void> put(std::string_view kind, std::string_view name,
                                  const boost::json::value& value) override;
  boost::system::result<void> put_live(std::string_view kind, std::string_view name,
                                       const boost::json::value& value, std::chrono::milliseconds ttl) override;
  boost::system::result<void> remove(std::string_view kind, std::string_view name) override;
  boost::system::result<std::optional<Entry>> get(std::string_view kind, std::string_view name) override;
  boost::system::result<std::vector<Entry>> list(std::string_view kind) override;
  boost::system::result<bool> commit(const std::vector<Precondition>& preconditions,
                                     const std::vector<Write>& writes) override;
  std::unique_ptr<Watch> watch(std::vector<std::string> kinds, OnChange on_change, OnReachable on_reachable,
                               std::chrono::milliseconds poll_interval) override;
  uint64_t bad_entries() const noexcept override { return bad_entries_.load(std::memory_order_relaxed); }

  /// Deletes the expired entries of `kind`; returns how many. Watches do it
  /// for the kinds they follow.
  boost::system::result<size_t> remove_expired(std::string_view kind);

  const std::filesystem::path& dir() const noexcept { return dir_; }

 private:
  struct Stored;  // an entry file as read, expired or not
  class DirLock;
  explicit FileRegistry(std::filesystem::path dir) : dir_(std::move(dir)) {}
  // Under the lock: writes the next version of an entry.
  boost::system::result<void> write_locked(std::string_view kind, std::string_view name,
                                           const boost::json::value& value, int64_t expires_at_ns);
  // Reads one entry file: nullopt if missing; kBadEntry if it does not parse.
  boost::system::result<std::optional<Stored>> read(const std::filesystem::path& file, std::string name);
  boost::system::result<std::optional<Entry>> read_unexpired(const std::filesystem::path& file, std::string name);

  const std::filesystem::path dir_;
  std::atomic<uint64_t> bad_entries_{0};
  std::mutex log_mutex_;
  LogThrottle bad_entry_log_;  // GUARDED_BY(log_mutex_); watchers re-read bad files every poll
};

}  // namespace monitor::registry
