// monitor-agent's settings: defaults, the JSON config file, flags (docs/agent.md).
#pragma once

#include <cstdint>
#include <string>

#include <boost/json/fwd.hpp>

#include "agent/host_checks.hpp"
#include "agent/host_metrics.hpp"
#include "agent/plugin_runner.hpp"
#include "agent/statsd_line.hpp"
#include "common/settings.hpp"

namespace monitor::agent {

/// Everything monitor-agent can be told. Defaults, then the config file, then
/// flags (flags win). The file format is documented in docs/agent.md.
struct AgentConfig {
  std::string ring;  // empty: $MONITOR_RING or "/monitor-ring"
  uint32_t ring_lanes = 128;
  uint32_t ring_shared_lanes = 8;
  uint32_t ring_slots_per_lane = 8192;
  uint32_t ring_name_capacity = 16384;
  bool recreate_ring = false;

  std::string socket = default_socket_path();  // empty: no socket
  int socket_rcvbuf_bytes = 8 << 20;
  // The same lines over UDP (host:port): statsd clients, and bindings without
  // Unix datagram sockets (Node). "none" or empty: no UDP. Any local user can
  // send to it. The default address, when taken by another process, is
  // skipped with a warning; an address that was set must bind.
  static constexpr const char* kDefaultUdp = "127.0.0.1:8125";
  std::string udp = kDefaultUdp;
  // statsd lines over a Unix stream socket (clients whose Unix socket is a
  // stream, e.g. python-statsd's UnixSocketStatsClient). Empty: statsd.sock
  // beside `socket`; "none": no stream socket.
  std::string statsd_socket;
  uint32_t statsd_max_connections = 256;
  int64_t statsd_idle_timeout_s = 120;  // a stream client silent this long is closed: its slot is free again
  StatsdOptions statsd;
  // Group that may write the ring and the socket (both 0660). Empty: "monitor"
  // when that group exists, else the agent's own group.
  std::string group;

  // JSON lines of every aggregate: a file, "-" for stdout, "none"; empty: stdout
  // only when not forwarding (a slow stdout must not stall a forwarding agent).
  std::string output;
  std::string forward;        // host:port of the next hop; empty: pick one from the registry
  std::string registry;       // e.g. file:.data/registry; with forward empty, forwards to a live proxy of `dc`
  std::string dc = "dc1";
  std::string spool_dir = default_state_dir() + "/agent-spool";
  uint64_t spool_max_bytes = 256ull << 20;
  uint64_t sender_id = 0;     // 0: derived from the host name and the ring, or from tls_cert
  std::string tls_ca, tls_cert, tls_key;  // all three: forwards over TLS (docs/security.md)
  // Crash journal (docs/agent.md, "Crash story"): empty for /dev/shm/<ring>.journal,
  // "none" for no journal (a SIGKILL then loses the open seconds).
  std::string journal;
  // Series cells (one per series and op mask) one service may open in one
  // second; new ones past it are dropped and counted. 0: no limit.
  uint32_t series_per_service = 500'000;
  // (service, attr) names the agent interns at most (they are never
  // forgotten); reports of new names past it are dropped and counted.
  uint32_t max_names = 1'000'000;
  uint32_t max_line_names = 0;  // of max_names, first seen in lines; 0: half
  uint64_t journal_max_bytes = 256ull << 20;
  int late_window_s = 2;
  int future_window_s = 2;
  int64_t server_id = 0;  // for statsd lines without a server tag, Monitor.Agent and the host's metrics
  // The host's own metrics (docs/host-metrics.md): on unless switched off.
  HostMetricsOptions host;
  // Executables run on their interval (docs/plugins.md); dir "none": none.
  PluginOptions plugins;
  std::vector<CheckSpec> checks;
  bool self_metrics = true;
  std::string metrics_listen;  // host:port serving GET /metrics (Prometheus text); empty: none
  std::string log_level = "info";

  /// Reads a JSON config file over the current values. Throws
  /// std::runtime_error naming the file and the problem.
  void load_file(const std::string& path);

  /// Reads the "statsd" object: rules, default_service, prefix, gauge_sign, max_connections, idle_timeout_s.
  void read_statsd(const boost::json::value& value);
  /// Reads the "host_metrics" object (docs/host-metrics.md).
  void read_host_metrics(const boost::json::value& value);
  /// Reads the "plugins" object (docs/plugins.md).
  void read_plugins(const boost::json::value& value);

  /// Throws std::runtime_error when a value is out of range.
  void validate() const;

  std::string ring_name() const;

  /// The journal's path after defaults are applied, or "none".
  std::string effective_journal() const;

  /// The statsd stream socket's path after defaults are applied, or "none".
  std::string effective_statsd_socket() const;

  /// Where aggregates go after defaults are applied: a path, "-", or "none".
  std::string effective_output() const;

  /// /run/monitor/agent.sock as root; $XDG_RUNTIME_DIR/monitor/agent.sock, or
  /// /tmp/monitor-<uid>/agent.sock, otherwise.
  static std::string default_socket_path();
  /// /var/lib/monitor as root; $XDG_STATE_HOME/monitor, or ~/.local/state/monitor, otherwise.
  static std::string default_state_dir();
};

/// monitor-agent's settings: its flags, config keys, bounds, --help and the
/// table of docs/agent.md, from one list.
const SettingsTable<AgentConfig>& agent_settings();

}  // namespace monitor::agent
