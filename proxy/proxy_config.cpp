#include "proxy/proxy_config.hpp"

#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "registry/registry.hpp"
#include "net/endpoint.hpp"
#include "net/tls_settings.hpp"

namespace monitor::proxy {

const SettingsTable<ProxyConfig>& proxy_settings() {
  using C = ProxyConfig;
  static const SettingsTable<ProxyConfig> table = [] {
    SettingsTable<ProxyConfig> t;
    t.add("role", &C::role, "`clyde` or `bonnie`", "(required)")
        .add("name", &C::name, "its registry entry `proxies/<name>`, and its name in HELLOs")
        .add("listen", &C::listen, "numeric `host:port` for agents (and, at a Bonnie, Clydes)")
        .add("dc", &C::dc, "data centre: agents of this `dc` may pick it")
        .add("registry", &C::registry, "registry address (docs/registry.md)",
             "`file:/var/lib/monitor/registry` as root, else `file:$XDG_STATE_HOME/monitor/registry` (or "
             "`~/.local/state/monitor/registry`)")
        .add("data_dir", &C::data_dir, "spools, one per next hop, under `<data_dir>/spool/<hop>`",
             "`/var/lib/monitor/proxy` as root, else under the XDG state directory as above")
        .add("bonnies_file", &C::bonnies_file, "the Bonnie list: one `host:port` per line, `#` comments",
             "(Clyde: required)")
        .add_bounded("spool_max_bytes", &C::spool_max_bytes,
                     "per next hop; past it the oldest parts are dropped and counted", 1 << 20, INT64_MAX, "256 MiB")
        .add_bounded("heartbeat_interval_ms", &C::heartbeat_interval_ms, "how often it heartbeats each next hop", 10,
                     3'600'000)
        .add_bounded("heartbeat_timeout_ms", &C::heartbeat_timeout_ms,
                     "a next hop silent this long is dead: reconnect, or fail over", 20, 3'600'000)
        .add_bounded("idle_timeout_s", &C::idle_timeout_s, "an upstream connection silent this long is closed", 1,
                     86'400)
        .add_bounded("max_unacked_batches", &C::max_unacked_batches,
                     "per upstream connection; beyond it the connection is not read (back-pressure through TCP)", 1,
                     1'000'000)
        .add_bounded("max_connections", &C::max_connections,
                     "upstream connections at once; more are closed at accept, logged and counted "
                     "(`Connections.Refused`); their senders retry",
                     1, 1'000'000)
        .add_bounded("server_id", &C::server_id, "server id of its `Monitor.Proxy` metrics", 0, INT64_MAX)
        .add("self_metrics", &C::self_metrics, "report `Monitor.Proxy` through the local agent, if one runs")
        .add("metrics_listen", &C::metrics_listen,
             "`host:port` serving `GET /metrics`: the same figures as Prometheus text (docs/metrics.md)");
    net::add_tls_settings(t, true);
    t.add("log_level", &C::log_level, "trace, debug, info, warn, error");
    return t;
  }();
  return table;
}

void ProxyConfig::load_file(const std::string& path) { proxy_settings().load_file(path, *this); }

void ProxyConfig::validate() const {
  proxy_settings().check_bounds(*this, ProxyConfig{});
  if (role != "clyde" && role != "bonnie") throw std::runtime_error("role must be clyde or bonnie");
  if (!registry::is_valid_key(name)) throw std::runtime_error("name must be 1-128 bytes of [A-Za-z0-9._-]");
  if (!registry::is_valid_key(dc)) throw std::runtime_error("dc must be 1-128 bytes of [A-Za-z0-9._-]");
  if (!net::parse_endpoint(listen)) throw std::runtime_error("listen must be a numeric host:port");
  if (!metrics_listen.empty() && !net::parse_endpoint(metrics_listen)) {
    throw std::runtime_error("metrics_listen must be a numeric host:port");
  }
  net::check_transport(net::tls_files(*this), allow_plaintext, "listen", listen);
  if (is_clyde() && bonnies_file.empty()) throw std::runtime_error("a clyde needs bonnies_file (its Bonnie list)");
  if (heartbeat_timeout_ms <= heartbeat_interval_ms) {
    throw std::runtime_error("heartbeat_timeout_ms must exceed heartbeat_interval_ms");
  }
}

}  // namespace monitor::proxy
