// What a Bonnie knows from the registry (docs/registry.md): the registered
// services and attrs, which judger owns each service and where it listens,
// and the live Bonnies (the member list heartbeat replies carry).
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "registry/registry.hpp"

namespace monitor::proxy {

class Catalogue {
 public:
  // kNewAttr: an attr not registered of a service that takes new ones
  // (auto_attrs); routed like kRoute once the proxy has room for it.
  enum class Verdict { kRoute, kUnknownService, kUnknownAttr, kUnassigned, kNewAttr };

  /// The kinds a Catalogue is built from.
  static const std::vector<std::string>& kinds();

  /// Reads the kinds() from the registry.
  /// Entries of the wrong shape are skipped and described in `problems`.
  static boost::system::result<Catalogue> load(registry::Registry& registry, std::vector<std::string>& problems);

  /// Builds it from entries already read (by a watch), by kind.
  static Catalogue build(const std::map<std::string, std::vector<registry::Entry>>& by_kind,
                         std::vector<std::string>& problems);

  /// Whether a report of (service, attr) is routed, and to which judger.
  Verdict judge(std::string_view service, std::string_view attr, std::string& judger) const;

  /// The judger's batch address, or empty if it is not live.
  std::string judger_address(const std::string& judger) const;

  /// A judger gone for good: not live, not known in parts/ (removed with
  /// `monitorctl judger rm`), and owning no service. What Bonnie spooled for
  /// it is handed to the services' judgers now.
  bool judger_retired(const std::string& judger) const;

  /// Addresses of the live Bonnies, sorted.
  const std::vector<std::string>& bonnies() const noexcept { return bonnies_; }

  size_t services() const noexcept { return attrs_.size(); }
  /// The attrs a service has registered, and how many it may have registered
  /// for it on first sight (its auto_attrs; 0: none).
  size_t attr_count(std::string_view service) const;
  bool has_attr(const std::string& service, const std::string& attr) const;
  int64_t auto_attrs(std::string_view service) const;
  /// Every judger some service is assigned to.
  std::set<std::string> assigned_judgers() const;

  friend bool operator==(const Catalogue&, const Catalogue&) = default;

 private:
  std::unordered_map<std::string, std::unordered_set<std::string>> attrs_;  // service -> attrs
  std::unordered_map<std::string, std::string> judger_of_;                  // service -> judger
  std::unordered_map<std::string, int64_t> auto_attrs_;                     // service -> bound, if it takes new attrs
  std::map<std::string, std::string> judger_addresses_;                     // judger -> address
  std::vector<std::string> bonnies_;
  std::set<std::string> known_judgers_;  // in parts/: declared, or registered once
};

}  // namespace monitor::proxy
