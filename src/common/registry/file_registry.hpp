#pragma once

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>

#include "common/log_throttle.hpp"
#include "common/registry/registry.hpp"

namespace monitor::registry {

/// The `file:` backend: <dir>/<kind>/<name>.json, written by atomic rename
/// (docs/registry.md). Thread-safe; many processes may share the directory.
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
  uint64_t bad_entries() const noexcept override { return bad_entries_.load(std::memory_order_relaxed); }

  /// Deletes the expired entries of `kind`; returns how many.
  boost::system::result<size_t> remove_expired(std::string_view kind);

  const std::filesystem::path& dir() const noexcept { return dir_; }

 private:
  explicit FileRegistry(std::filesystem::path dir) : dir_(std::move(dir)) {}
  boost::system::result<void> write(std::string_view kind, std::string_view name, const boost::json::value& value,
                                    int64_t expires_at_ns);
  // Reads one entry file: nullopt if missing; kBadEntry if it does not parse.
  boost::system::result<std::optional<Entry>> read(const std::filesystem::path& file, std::string name);

  const std::filesystem::path dir_;
  std::atomic<uint64_t> bad_entries_{0};
  std::mutex log_mutex_;
  LogThrottle bad_entry_log_;  // GUARDED_BY(log_mutex_); watchers re-read bad files every poll
};

}  // namespace monitor::registry
