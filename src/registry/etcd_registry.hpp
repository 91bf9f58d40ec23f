// The registry on etcd (docs/registry.md).
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "common/log_throttle.hpp"
#include "registry/etcd_gateway.hpp"
#include "registry/registry.hpp"

namespace monitor::registry {

/// The `etcd:` backend (docs/registry.md): entry (kind, name) is the key
/// /monitor/<kind>/<name> holding the value's JSON; a live entry is attached
/// to a lease of its own, kept alive by put_live(); a watch follows the kinds
/// with one streaming watch over /monitor/, resumed from the last revision.
class EtcdRegistry final : public Registry {
 public:
  explicit EtcdRegistry(GatewayOptions options);
  ~EtcdRegistry() override;

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

  /// etcd's words for the last refusal (for messages to a person).
  std::string last_error() const { return gateway_.last_error(); }
  /// The gateway, for the console's user and role administration.
  EtcdGateway& gateway() noexcept { return gateway_; }

  /// Parses one key-value of a reply into an entry of `kind`; nullopt (and
  /// counted) if it is not one.
  std::optional<Entry> to_entry(std::string_view kind, const boost::json::object& kv);

  static std::string key_of(std::string_view kind, std::string_view name);
  static std::string kind_prefix(std::string_view kind);
  static constexpr std::string_view kRoot = "/monitor/";

 private:
  struct Lease {
    int64_t id = 0;
    std::string value;  // as last put with it
  };

  const GatewayOptions options_;
  EtcdGateway gateway_;
  std::mutex leases_mutex_;
  std::map<std::string, Lease> leases_;  // by key; GUARDED_BY(leases_mutex_)
  std::atomic<uint64_t> bad_entries_{0};
  std::mutex log_mutex_;
  LogThrottle bad_entry_log_;  // GUARDED_BY(log_mutex_)
};

/// The smallest key after every key that starts with `prefix` (etcd's range_end).
std::string prefix_end(std::string prefix);

}  // namespace monitor::registry
