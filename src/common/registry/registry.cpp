#include "common/registry/registry.hpp"

#include <cerrno>

#include "common/registry/file_registry.hpp"

namespace monitor::registry {
namespace {

class RegistryCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "monitor.registry"; }
  std::string message(int ev) const override {
    switch (static_cast<RegistryErrc>(ev)) {
      case RegistryErrc::kBadName: return "kind or name must be 1-128 bytes of [A-Za-z0-9._-], not starting with '.'";
      case RegistryErrc::kBadEntry: return "registry entry does not parse";
    }
    return "unknown registry error";
  }
};

}  // namespace

const boost::system::error_category& registry_category() noexcept {
  static const RegistryCategory category;
  return category;
}

bool is_valid_key(std::string_view s) noexcept {
  if (s.empty() || s.size() > 128 || s.front() == '.') return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

boost::system::result<std::unique_ptr<Registry>> open_registry(std::string_view address) {
  if (address.starts_with("file:")) {
    auto file = FileRegistry::open(std::filesystem::path(std::string(address.substr(5))));
    if (!file) return file.error();
    return std::unique_ptr<Registry>(std::move(*file));
  }
  if (address.starts_with("etcd:")) return boost::system::error_code(ENOTSUP, boost::system::system_category());
  return boost::system::error_code(EINVAL, boost::system::system_category());
}

}  // namespace monitor::registry
