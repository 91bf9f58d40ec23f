// monitor-proxy's settings: defaults, the JSON config file, flags (docs/proxy.md).
#pragma once

#include <cstdint>
#include <string>

#include "common/default_paths.hpp"
#include "common/settings.hpp"

namespace monitor::proxy {

/// Everything monitor-proxy can be told: defaults, then the JSON config file,
/// then flags (docs/proxy.md).
struct ProxyConfig {
  std::string role;                       // "clyde" or "bonnie"; required
  std::string name = "proxy-1";           // in the registry and in HELLOs
  std::string listen = "127.0.0.1:7200";  // for agents (and, at a Bonnie, Clydes)
  std::string dc = "dc1";                 // agents of this data centre may pick it
  std::string registry = default_registry();
  std::string data_dir = default_state_dir() + "/proxy";  // spools under <data_dir>/spool/<next hop>
  std::string bonnies_file;               // clyde: the Bonnie list, rewritten as it changes
  uint64_t spool_max_bytes = 256ull << 20;  // per next hop
  int heartbeat_interval_ms = 1000;
  int heartbeat_timeout_ms = 5000;        // a next hop silent this long is dead
  int idle_timeout_s = 60;                // an upstream connection silent this long is closed
  int max_unacked_batches = 4096;         // per upstream connection, then it is not read
  int max_connections = 10000;            // upstream connections at once; more are closed at accept
  int64_t server_id = 0;                  // for the Monitor.Proxy health metrics
  bool self_metrics = true;
  std::string metrics_listen;             // host:port serving GET /metrics (Prometheus text); empty: none
  std::string tls_ca, tls_cert, tls_key;  // all three: TLS on every batch link (docs/security.md)
  bool allow_plaintext = false;           // without TLS, listen beyond loopback anyway
  std::string log_level = "info";

  bool is_clyde() const noexcept { return role == "clyde"; }

  /// Throws std::runtime_error naming the file and the problem.
  void load_file(const std::string& path);
  /// Throws std::runtime_error when a value is missing or does not fit the others.
  void validate() const;
};

/// monitor-proxy's settings: its flags, config keys, bounds, --help and the
/// table of docs/proxy.md, from one list.
const SettingsTable<ProxyConfig>& proxy_settings();

}  // namespace monitor::proxy
