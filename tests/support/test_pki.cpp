#include "support/test_pki.hpp"

#include <cstdlib>
#include <stdexcept>

namespace monitor::test {

TestPki::TestPki() { run("init " + dir_.path()); }

net::TlsFiles TestPki::issue(const std::string& role, const std::string& name, const std::string& options) {
  run("issue " + dir_.path() + " " + role + " " + name + (options.empty() ? "" : " " + options));
  return files(role, name);
}

net::TlsFiles TestPki::files(const std::string& role, const std::string& name) const {
  const std::string base = dir_.path() + "/" + role + "-" + name;
  return net::TlsFiles{ca(), base + ".pem", base + ".key"};
}

void TestPki::run(const std::string& args) {
  // Two days: long enough for any test, short enough that a leaked key is worthless.
  const std::string command = std::string(MONITOR_SOURCE_DIR) + "/scripts/pki.sh --days 2 " + args + " >/dev/null";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

}  // namespace monitor::test
