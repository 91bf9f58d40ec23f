// The registry the daemons and monitorctl of an end-to-end test use: the
// file: directory under the test's own directory, unless the test runs on
// etcd (UseRegistry), so one set of helpers serves both backends.
#pragma once

#include <string>

#include "support/temp_names.hpp"

namespace monitor::e2e {

inline std::string& registry_override() {
  static std::string address;
  return address;
}

inline std::string registry_address(const test::TempDir& dir) {
  return registry_override().empty() ? "file:" + dir.file("registry") : registry_override();
}

/// For its lifetime, every helper points the parts at `address` (an etcd:).
class UseRegistry {
 public:
  explicit UseRegistry(const std::string& address) { registry_override() = address; }
  ~UseRegistry() { registry_override().clear(); }
  UseRegistry(const UseRegistry&) = delete;
};

}  // namespace monitor::e2e
