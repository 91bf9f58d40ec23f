// A real etcd (Debian's etcd-server) on loopback for one test: its own data
// directory and ports; stopped, killed, restarted or wiped as a test needs.
#pragma once

#include <optional>
#include <string>

#include "support/child_process.hpp"
#include "support/temp_names.hpp"

namespace monitor::test {

/// etcd over HTTPS, verifying clients' certificates against `ca`; the
/// client files are what the server's own readiness check shows.
struct EtcdTls {
  std::string ca, server_cert, server_key, client_cert, client_key;
};

class EtcdServer {
 public:
  /// Starts etcd and waits (bounded) until it answers; throws if it does not.
  EtcdServer();
  explicit EtcdServer(EtcdTls tls);
  ~EtcdServer();

  /// "etcd:127.0.0.1:<port>", for open_registry() and --registry.
  std::string address() const;
  std::string endpoint() const;
  int client_port() const noexcept { return client_port_; }

  /// Starts again on `client_port` (default: its own), with its data.
  void start(int client_port = 0);
  void kill();  // SIGKILL and reap
  /// Kills it and removes its data: etcd comes back empty (lost its data).
  void wipe();
  /// POSTs a JSON body to the gateway where it listens now (for what the registry interface does
  /// not do: compaction, auth set-up); returns the reply body, or "" if none.
  std::string post(const std::string& path, const std::string& json_body) const;

 private:
  TempDir dir_;
  std::optional<EtcdTls> tls_;
  int client_port_ = 0, peer_port_ = 0;
  int serving_port_ = 0;  // where it listens now (start() may move it)
  std::optional<ChildProcess> process_;
  int starts_ = 0;
};

}  // namespace monitor::test
