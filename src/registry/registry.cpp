#include "registry/registry.hpp"

#include <cerrno>
#include <cstdlib>

#include "registry/etcd_gateway.hpp"
#include "registry/etcd_registry.hpp"
#include "registry/file_registry.hpp"

namespace monitor::registry {
namespace {

class RegistryCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "monitor.registry"; }
  std::string message(int ev) const override {
    switch (static_cast<RegistryErrc>(ev)) {
      case RegistryErrc::kBadName: return "kind or name must be 1-128 bytes of [A-Za-z0-9._-], not starting with '.'";
      case RegistryErrc::kBadEntry: return "registry entry does not parse";
      case RegistryErrc::kUnreachable: return "the registry cannot be reached";
      case RegistryErrc::kPermissionDenied:
        return "permission denied by the registry: the user's roles do not cover that entry";
      case RegistryErrc::kAuthFailed: return "the registry refused the user name or password";
      case RegistryErrc::kProtocol: return "the registry sent a reply this program cannot read";
    }
    return "unknown registry error";
  }
};

}  // namespace

const boost::system::error_category& registry_category() noexcept {
  static const RegistryCategory category;
  return category;
}

boost::system::error_code check_keys(std::string_view kind, std::string_view name) noexcept {
  if (!is_valid_key(kind) || !is_valid_key(name)) return RegistryErrc::kBadName;
  return {};
}

boost::system::result<std::unique_ptr<Registry>> open_registry(std::string_view address) {
  const char* user = std::getenv("MONITOR_REGISTRY_USER");
  const char* password = std::getenv("MONITOR_REGISTRY_PASSWORD");
  return open_registry(address, user != nullptr ? user : "", password != nullptr ? password : "");
}

boost::system::result<std::unique_ptr<Registry>> open_registry(std::string_view address, const std::string& user,
                                                               const std::string& password) {
  if (address.starts_with("file:")) {
    auto file = FileRegistry::open(std::filesystem::path(std::string(address.substr(5))));
    if (!file) return file.error();
    return std::unique_ptr<Registry>(std::move(*file));
  }
  if (address.starts_with("etcd:")) {
    GatewayOptions options;
    std::string_view rest = address.substr(5);
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view endpoint = rest.substr(0, comma);
      if (endpoint.empty() || endpoint.find(':') == std::string_view::npos) {
        return boost::system::error_code(EINVAL, boost::system::system_category());
      }
      options.endpoints.emplace_back(endpoint);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    if (options.endpoints.empty()) return boost::system::error_code(EINVAL, boost::system::system_category());
    options.user = user;
    options.password = password;
    options.tls = registry_tls_from_environment();
    return std::unique_ptr<Registry>(std::make_unique<EtcdRegistry>(std::move(options)));
  }
  return boost::system::error_code(EINVAL, boost::system::system_category());
}

}  // namespace monitor::registry
