#include "registry/etcd_registry.hpp"

#include <algorithm>
#include <condition_variable>
#include <set>
#include <thread>

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "registry/watch_state.hpp"

namespace monitor::registry {
namespace {

using boost::system::error_code;

const boost::json::array* kvs_of(const boost::json::object& reply) {
  const auto* kvs = reply.if_contains("kvs");
  return kvs != nullptr && kvs->is_array() ? &kvs->as_array() : nullptr;
}

}  // namespace

std::string prefix_end(std::string prefix) {
  // Keys here are ASCII, so the last byte never overflows.
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

EtcdRegistry::EtcdRegistry(GatewayOptions options) : options_(options), gateway_(std::move(options)) {}

EtcdRegistry::~EtcdRegistry() = default;

std::string EtcdRegistry::key_of(std::string_view kind, std::string_view name) {
  return std::string(kRoot) + std::string(kind) + "/" + std::string(name);
}

std::string EtcdRegistry::kind_prefix(std::string_view kind) { return std::string(kRoot) + std::string(kind) + "/"; }

std::optional<Entry> EtcdRegistry::to_entry(std::string_view kind, const boost::json::object& kv) {
  bool unreadable = false;
  auto entry = entry_of_kv(kind_prefix(kind), kv, unreadable);
  if (unreadable) {
    bad_entries_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(log_mutex_);
    uint64_t suppressed = 0;
    if (bad_entry_log_.allow(realtime_ns(), suppressed)) {
      spdlog::warn("registry: skipping an etcd key of {}: its value is not JSON [{} more not shown]", kind, suppressed);
    }
  }
  return entry;
}

boost::system::result<void> EtcdRegistry::put(std::string_view kind, std::string_view name,
                                              const boost::json::value& value) {
  if (auto ec = check_keys(kind, name)) return ec;
  auto reply = gateway_.call("/v3/kv/put", {{"key", b64(key_of(kind, name))}, {"value", b64(boost::json::serialize(value))}});
  if (!reply) return reply.error();
  return {};
}

boost::system::result<void> EtcdRegistry::put_live(std::string_view kind, std::string_view name,
                                                   const boost::json::value& value, std::chrono::milliseconds ttl) {
  if (auto ec = check_keys(kind, name)) return ec;
  const std::string key = key_of(kind, name);
  const std::string text = boost::json::serialize(value);
  std::lock_guard lock(leases_mutex_);
  Lease& lease = leases_[key];
  if (lease.id != 0) {
    auto alive = gateway_.call("/v3/lease/keepalive", {{"ID", std::to_string(lease.id)}});
    if (!alive) return alive.error();
    const auto* result = alive->if_contains("result");
    const boost::json::object& reply = result != nullptr && result->is_object() ? result->as_object() : *alive;
    // No TTL: the lease expired, or etcd lost its data. Start again.
    if (gateway_int(reply, "TTL") <= 0) lease = Lease{};
  }
  if (lease.id == 0) {
    const int64_t seconds = std::max<int64_t>(1, (ttl.count() + 999) / 1000);
    auto granted = gateway_.call("/v3/lease/grant", {{"TTL", std::to_string(seconds)}});
    if (!granted) return granted.error();
    lease.id = gateway_int(*granted, "ID");
    if (lease.id == 0) return error_code(RegistryErrc::kProtocol);
  }
  if (text != lease.value) {
    auto put = gateway_.call("/v3/kv/put", {{"key", b64(key)}, {"value", b64(text)}, {"lease", std::to_string(lease.id)}});
    if (!put) return put.error();
    lease.value = text;
  }
  return {};
}

boost::system::result<void> EtcdRegistry::remove(std::string_view kind, std::string_view name) {
  if (auto ec = check_keys(kind, name)) return ec;
  const std::string key = key_of(kind, name);
  {
    std::lock_guard lock(leases_mutex_);
    if (auto it = leases_.find(key); it != leases_.end()) {
      // Revoked, not left to expire: a stopping owner's entry goes at once.
      (void)gateway_.call("/v3/lease/revoke", {{"ID", std::to_string(it->second.id)}});
      leases_.erase(it);
    }
  }
  auto reply = gateway_.call("/v3/kv/deleterange", {{"key", b64(key)}});
  if (!reply) return reply.error();
  return {};
}

boost::system::result<std::optional<Entry>> EtcdRegistry::get(std::string_view kind, std::string_view name) {
  if (auto ec = check_keys(kind, name)) return ec;
  auto reply = gateway_.call("/v3/kv/range", {{"key", b64(key_of(kind, name))}});
  if (!reply) return reply.error();
  const auto* kvs = kvs_of(*reply);
  if (kvs == nullptr || kvs->empty() || !kvs->at(0).is_object()) return std::optional<Entry>{};
  auto entry = to_entry(kind, kvs->at(0).as_object());
  if (!entry) return error_code(RegistryErrc::kBadEntry);
  return std::optional<Entry>{std::move(*entry)};
}

boost::system::result<std::vector<Entry>> EtcdRegistry::list(std::string_view kind) {
  if (!is_valid_key(kind)) return error_code(RegistryErrc::kBadName);
  const std::string prefix = kind_prefix(kind);
  auto reply = gateway_.call("/v3/kv/range", {{"key", b64(prefix)}, {"range_end", b64(prefix_end(prefix))}});
  if (!reply) return reply.error();
  std::vector<Entry> entries;
  if (const auto* kvs = kvs_of(*reply)) {
    for (const auto& kv : *kvs) {
      if (!kv.is_object()) continue;
      if (auto entry = to_entry(kind, kv.as_object())) entries.push_back(std::move(*entry));
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return entries;
}

boost::system::result<bool> EtcdRegistry::commit(const std::vector<Precondition>& preconditions,
                                                 const std::vector<Write>& writes) {
  boost::json::array compare, success;
  for (const auto& p : preconditions) {
    if (auto ec = check_keys(p.kind, p.name)) return failed(ec);
    // An absent key compares as version 0.
    compare.push_back(boost::json::object{{"key", b64(key_of(p.kind, p.name))},
                       {"target", "VERSION"},
                       {"result", "EQUAL"},
                       {"version", std::to_string(p.version)}});
  }
  for (const auto& w : writes) {
    if (auto ec = check_keys(w.kind, w.name)) return failed(ec);
    const std::string key = b64(key_of(w.kind, w.name));
    if (w.value) {
      success.push_back(boost::json::object{
          {"request_put", boost::json::object{{"key", key}, {"value", b64(boost::json::serialize(*w.value))}}}});
    } else {
      success.push_back(boost::json::object{{"request_delete_range", boost::json::object{{"key", key}}}});
    }
  }
  auto reply = gateway_.call("/v3/kv/txn", {{"compare", compare}, {"success", success}});
  if (!reply) return failed(reply.error());
  const auto* succeeded = reply->if_contains("succeeded");
  return succeeded != nullptr && succeeded->is_bool() && succeeded->as_bool();
}

namespace {

// Follows kinds with one watch over the range of their prefixes: read the
// kinds, then stream the changes from the revision after the read; resume
// from the last revision seen after a disconnect, read everything again when
// etcd compacted that revision away or lost its data (its revision went back).
class EtcdWatch final : public Watch {
 public:
  EtcdWatch(EtcdRegistry& registry, GatewayOptions options, std::vector<std::string> kinds,
            Registry::OnChange on_change, Registry::OnReachable on_reachable)
      : registry_(registry),
        gateway_(std::move(options)),
        state_(std::move(kinds), std::move(on_change), std::move(on_reachable)),
        thread_([this] { run(); }) {}

  ~EtcdWatch() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    gateway_.interrupt();
    wake_.notify_all();
    thread_.join();
  }

 private:
  bool stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  // Reads every kind; the revision to watch from is the oldest read's + 1
  // (an event replayed onto a later read is harmless: it sets what is set).
  bool read_all() {
    int64_t oldest = INT64_MAX;
    for (const auto& kind : state_.kinds()) {
      const std::string prefix = EtcdRegistry::kind_prefix(kind);
      auto reply = gateway_.call("/v3/kv/range", {{"key", b64(prefix)}, {"range_end", b64(prefix_end(prefix))}});
      if (!reply) return false;
      const auto* header = reply->if_contains("header");
      oldest = std::min(oldest, header != nullptr && header->is_object() ? gateway_int(header->as_object(), "revision") : 0);
      auto& known = entries_[kind];
      known.clear();
      if (const auto* kvs = reply->if_contains("kvs"); kvs != nullptr && kvs->is_array()) {
        for (const auto& kv : kvs->as_array()) {
          if (!kv.is_object()) continue;
          if (auto entry = registry_.to_entry(kind, kv.as_object())) known[entry->name] = std::move(*entry);
        }
      }
      report(kind);
    }
    revision_ = oldest;
    return true;
  }

  void report(const std::string& kind) {
    std::vector<Entry> list;
    for (const auto& [name, entry] : entries_[kind]) list.push_back(entry);
    state_.replace(kind, std::move(list));
  }

  // One message of the watch stream; false ends the stream.
  bool on_message(const boost::json::object& message, bool& read_again) {
    const auto* header = message.if_contains("header");
    const int64_t header_revision =
        header != nullptr && header->is_object() ? gateway_int(header->as_object(), "revision") : 0;
    if (const auto* created = message.if_contains("created"); created != nullptr && created->is_bool() &&
                                                              created->as_bool()) {
      state_.set_reachable(true);
      backoff_ = kFirstBackoff;
      if (header_revision < revision_) {  // etcd lost its data: its history starts again
        spdlog::warn("registry: etcd is at revision {}, behind the {} already seen: reading everything again",
                     header_revision, revision_);
        read_again = true;
        return false;
      }
    }
    if (gateway_int(message, "compact_revision") > 0) {
      spdlog::info("registry: revision {} was compacted away: reading everything again", revision_ + 1);
      read_again = true;
      return false;
    }
    const auto* events = message.if_contains("events");
    if (events == nullptr || !events->is_array()) return !stopping();
    std::set<std::string> touched;
    for (const auto& event : events->as_array()) {
      if (!event.is_object()) continue;
      const auto* kv_value = event.as_object().if_contains("kv");
      if (kv_value == nullptr || !kv_value->is_object()) continue;
      const auto& kv = kv_value->as_object();
      revision_ = std::max(revision_, gateway_int(kv, "mod_revision"));
      const auto* key_value = kv.if_contains("key");
      const auto key = key_value != nullptr && key_value->is_string() ? unb64(key_value->as_string()) : std::nullopt;
      if (!key) continue;
      for (const auto& kind : state_.kinds()) {
        const std::string prefix = EtcdRegistry::kind_prefix(kind);
        if (!key->starts_with(prefix)) continue;
        const std::string name = key->substr(prefix.size());
        const auto* type = event.as_object().if_contains("type");
        if (type != nullptr && type->is_string() && type->as_string() == "DELETE") {
          entries_[kind].erase(name);
        } else if (auto entry = registry_.to_entry(kind, kv)) {
          entries_[kind][name] = std::move(*entry);
        } else {
          entries_[kind].erase(name);  // replaced by something unreadable: gone for us
        }
        touched.insert(kind);
      }
    }
    for (const auto& kind : touched) report(kind);
    return !stopping();
  }

  void run() {
    bool read_again = true;
    while (!stopping()) {
      bool failed = false;
      if (read_again) {
        failed = !read_all();
        read_again = failed;
      }
      if (!failed) {
        // Over the keys from the first kind watched to the last, not all of
        // /monitor/: a daemon's etcd role may not read what it does not
        // watch (users' records), and etcd refuses a watch over a key it
        // may not read. Kinds in between come along and are ignored.
        const auto& kinds = state_.kinds();
        const auto [first, last] = std::minmax_element(kinds.begin(), kinds.end());
        const std::string from = kinds.empty() ? std::string(EtcdRegistry::kRoot) : EtcdRegistry::kind_prefix(*first);
        const std::string to = kinds.empty() ? from : EtcdRegistry::kind_prefix(*last);
        boost::json::object create{{"key", b64(from)}, {"range_end", b64(prefix_end(to))},
                                   {"start_revision", std::to_string(revision_ + 1)}};
        auto streamed = gateway_.stream("/v3/watch", {{"create_request", create}}, kIdle,
                                        [&](const boost::json::object& m) { return on_message(m, read_again); });
        // A quiet stream timing out is no failure: resume at once.
        failed = !streamed && streamed.error() != boost::beast::error::timeout &&
                 streamed.error() != boost::asio::error::operation_aborted;
        if (!failed && !read_again && streamed) backoff_ = kFirstBackoff;
      }
      if (!failed) continue;
      state_.set_reachable(false);
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, backoff_, [this] { return stopping_; })) return;
      backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    }
  }

  static constexpr std::chrono::milliseconds kFirstBackoff{100}, kMaxBackoff{5000}, kIdle{30000};

  EtcdRegistry& registry_;
  EtcdGateway gateway_;  // its own connections, so interrupt() touches nobody else's
  WatchState state_;
  std::map<std::string, std::map<std::string, Entry>> entries_;  // by kind, by name
  int64_t revision_ = 0;                                         // the last one applied
  std::chrono::milliseconds backoff_ = kFirstBackoff;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
  std::thread thread_;     // last: started once the rest is built
};

}  // namespace

std::unique_ptr<Watch> EtcdRegistry::watch(std::vector<std::string> kinds, OnChange on_change,
                                           OnReachable on_reachable, std::chrono::milliseconds /*poll_interval*/) {
  return std::make_unique<EtcdWatch>(*this, options_, std::move(kinds), std::move(on_change), std::move(on_reachable));
}

}  // namespace monitor::registry
