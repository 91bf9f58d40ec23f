// A deployment's CA and certificates for a test, made by scripts/pki.sh as an
// operator makes them (docs/security.md).
#pragma once

#include <string>

#include "net/tls.hpp"
#include "support/temp_names.hpp"

namespace monitor::test {

class TestPki {
 public:
  TestPki();  // a fresh CA in a directory of its own; throws when the script fails

  /// Issues ROLE-NAME with `options` (`--ip 127.0.0.1 --dns localhost`) and
  /// returns its files beside this CA.
  net::TlsFiles issue(const std::string& role, const std::string& name, const std::string& options = {});
  net::TlsFiles files(const std::string& role, const std::string& name) const;
  std::string ca() const { return dir_.file("ca.pem"); }
  const std::string& dir() const noexcept { return dir_.path(); }

  /// scripts/pki.sh ARGS; throws when it fails.
  static void run(const std::string& args);

 private:
  TempDir dir_;
};

}  // namespace monitor::test
