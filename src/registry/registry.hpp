// The registry every part reads and registers in (docs/registry.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

namespace monitor::registry {

/// One entry of a kind.
struct Entry {
  std::string name;
  boost::json::value value;
  bool live = false;    // vanishes unless its owner refreshes it
  int64_t version = 0;  // 1 when created, +1 per write: what commit() compares
  friend bool operator==(const Entry&, const Entry&) = default;
};

/// Errors of the registry layer beside errno values.
enum class RegistryErrc {
  kBadName = 1,     // kind or name breaks [A-Za-z0-9._-]{1,128}
  kBadEntry,        // an entry that exists but does not parse
  kUnreachable,     // no endpoint of the registry answered
  kPermissionDenied,// the registry refused the change for this user
  kAuthFailed,      // wrong user name or password
  kProtocol,        // the registry answered something this code cannot read
};
const boost::system::error_category& registry_category() noexcept;
inline boost::system::error_code make_error_code(RegistryErrc e) noexcept {
  return {static_cast<int>(e), registry_category()};
}

/// A failed result<bool> (an error code alone would convert to the bool).
inline boost::system::result<bool> failed(boost::system::error_code ec) {
  return boost::system::result<bool>(boost::system::in_place_error, ec);
}

/// True if `s` may be a kind or a name.
inline bool is_valid_key(std::string_view s) noexcept {
  if (s.empty() || s.size() > 128 || s.front() == '.') return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/// kBadName unless both may be a kind and a name: every backend's first check.
boost::system::error_code check_keys(std::string_view kind, std::string_view name) noexcept;

/// commit() writes only if each named entry is at `version` (0: absent).
struct Precondition {
  std::string kind, name;
  int64_t version = 0;
};
/// One write of a commit(): a static entry, or its removal (no value).
struct Write {
  std::string kind, name;
  std::optional<boost::json::value> value;
};

/// A watch in progress; destroying it stops it (and waits for its callback).
class Watch {
 public:
  virtual ~Watch() = default;
};

/// One interface, two backends: `file:` and `etcd:`. Every method may block
/// on I/O (for etcd up to its request timeout); call from a daemon's own
/// thread, never its event loop or a hot path. Thread-safe: an instance may be
/// shared by threads of one process, and any number of processes may use one
/// registry at once.
class Registry {
 public:
  /// Called from the watch's own thread with every unexpired entry of `kind`
  /// whenever that set changes (first: once it was read).
  using OnChange = std::function<void(const std::string& kind, const std::vector<Entry>& entries)>;
  /// Called from the watch's own thread when the registry stops or starts answering.
  using OnReachable = std::function<void(bool reachable)>;

  virtual ~Registry() = default;

  /// Writes a static entry (replacing any entry of that name).
  [[nodiscard]] virtual boost::system::result<void> put(std::string_view kind, std::string_view name,
                                                        const boost::json::value& value) = 0;

  /// Writes or refreshes a live entry that readers stop seeing `ttl` from
  /// now unless it is refreshed again. Re-creates the entry if it vanished
  /// meanwhile (expired, or the registry lost its data).
  [[nodiscard]] virtual boost::system::result<void> put_live(std::string_view kind, std::string_view name,
                                                             const boost::json::value& value,
                                                             std::chrono::milliseconds ttl) = 0;

  /// Removes an entry; removing one that is absent is not an error.
  [[nodiscard]] virtual boost::system::result<void> remove(std::string_view kind, std::string_view name) = 0;

  /// The entry, or nullopt if absent or expired; kBadEntry if it does not parse.
  [[nodiscard]] virtual boost::system::result<std::optional<Entry>> get(std::string_view kind,
                                                                        std::string_view name) = 0;

  /// Every unexpired entry of `kind`, by name. Entries that do not parse are
  /// skipped and counted (bad_entries()).
  [[nodiscard]] virtual boost::system::result<std::vector<Entry>> list(std::string_view kind) = 0;

  /// All or nothing: if every precondition holds, applies every write and
  /// returns true; otherwise changes nothing and returns false. What the
  /// console's compare-and-set writes (id allocation) are built on.
  [[nodiscard]] virtual boost::system::result<bool> commit(const std::vector<Precondition>& preconditions,
                                                           const std::vector<Write>& writes) = 0;

  /// Follows `kinds` from a thread of its own: pushed by etcd, polled every
  /// `poll_interval` on file:. While the registry cannot be reached the last
  /// known entries stay in force; on_reachable hears of it.
  [[nodiscard]] virtual std::unique_ptr<Watch> watch(std::vector<std::string> kinds, OnChange on_change,
                                                     OnReachable on_reachable = {},
                                                     std::chrono::milliseconds poll_interval =
                                                         std::chrono::milliseconds(500)) = 0;

  /// Entries skipped so far because they did not parse.
  virtual uint64_t bad_entries() const noexcept = 0;
};

/// Opens a registry from its address: "file:<dir>" (created if missing), or
/// "etcd:host:port[,host:port...]" (with `user`/`password` if etcd has
/// authentication on; also taken from MONITOR_REGISTRY_USER/_PASSWORD).
[[nodiscard]] boost::system::result<std::unique_ptr<Registry>> open_registry(std::string_view address);
[[nodiscard]] boost::system::result<std::unique_ptr<Registry>> open_registry(std::string_view address,
                                                                             const std::string& user,
                                                                             const std::string& password);

}  // namespace monitor::registry

template <>
struct boost::system::is_error_code_enum<monitor::registry::RegistryErrc> : std::true_type {};
