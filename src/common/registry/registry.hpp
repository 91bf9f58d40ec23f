// The registry every part reads and registers in (docs/registry.md).
#pragma once

#include <chrono>
#include <cstdint>
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
  int64_t expires_at_ns = 0;  // 0: static
  friend bool operator==(const Entry&, const Entry&) = default;
};

/// Errors of the registry layer beside errno values.
enum class RegistryErrc {
  kBadName = 1,  // kind or name breaks [A-Za-z0-9._-]{1,128}
  kBadEntry,     // an entry that exists but does not parse
};
const boost::system::error_category& registry_category() noexcept;
inline boost::system::error_code make_error_code(RegistryErrc e) noexcept {
  return {static_cast<int>(e), registry_category()};
}

/// True if `s` may be a kind or a name.
bool is_valid_key(std::string_view s) noexcept;

/// One interface, two backends (file now, etcd next). Every method may block
/// on I/O for milliseconds; call from a daemon's own thread, never a hot path.
/// Thread-safe: an instance may be shared by threads of one process, and any
/// number of processes may use one registry at once.
class Registry {
 public:
  virtual ~Registry() = default;

  /// Writes a static entry (replacing any entry of that name).
  [[nodiscard]] virtual boost::system::result<void> put(std::string_view kind, std::string_view name,
                                                        const boost::json::value& value) = 0;

  /// Writes or refreshes a live entry that readers stop seeing `ttl` from
  /// now unless it is refreshed again.
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

  /// Entries skipped so far because they did not parse.
  virtual uint64_t bad_entries() const noexcept = 0;
};

/// Opens a registry from its address: "file:<dir>" (created if missing).
/// "etcd:" is not implemented yet and fails with ENOTSUP.
[[nodiscard]] boost::system::result<std::unique_ptr<Registry>> open_registry(std::string_view address);

}  // namespace monitor::registry

template <>
struct boost::system::is_error_code_enum<monitor::registry::RegistryErrc> : std::true_type {};
