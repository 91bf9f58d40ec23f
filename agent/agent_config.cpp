#include "agent/agent_config.hpp"

#include "common/default_paths.hpp"

#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/json_fields.hpp"
#include "registry/registry.hpp"
#include "net/endpoint.hpp"
#include "net/tls_settings.hpp"
#include "monitor/monitor.h"
#include "monitor/monitor.hpp"

namespace monitor::agent {

void AgentConfig::read_statsd(const boost::json::value& value) {
  using namespace json_fields;
  if (!value.is_object()) throw std::runtime_error("\"statsd\" must be an object");
  const boost::json::object& obj = value.as_object();
  static constexpr const char* kKnown[] = {"rules", "default_service", "prefix", "gauge_sign", "max_connections"};
  check_known(obj, kKnown);
  read_string(obj, "default_service", statsd.default_service);
  read_string(obj, "prefix", statsd.prefix);
  read_int(obj, "max_connections", statsd_max_connections);
  read_int(obj, "idle_timeout_s", statsd_idle_timeout_s);
  std::string gauge_sign = statsd.signed_gauge_is_delta ? "delta" : "value";
  read_string(obj, "gauge_sign", gauge_sign);
  if (gauge_sign != "delta" && gauge_sign != "value") {
    throw std::runtime_error("\"statsd.gauge_sign\" must be \"delta\" (statsd) or \"value\" (DogStatsD)");
  }
  statsd.signed_gauge_is_delta = gauge_sign == "delta";
  if (const auto* rules = obj.if_contains("rules")) {
    if (!rules->is_array()) throw std::runtime_error("\"statsd.rules\" must be an array");
    statsd.rules.clear();
    for (const auto& r : rules->as_array()) {
      if (!r.is_object()) throw std::runtime_error("each statsd rule must be an object {match, service, attr}");
      static constexpr const char* kRuleKeys[] = {"match", "service", "attr"};
      check_known(r.as_object(), kRuleKeys);
      StatsdRule rule;
      read_string(r.as_object(), "match", rule.match);
      read_string(r.as_object(), "service", rule.service);
      read_string(r.as_object(), "attr", rule.attr);
      statsd.rules.push_back(std::move(rule));
    }
  }
}

void AgentConfig::read_plugins(const boost::json::value& value) {
  if (!value.is_object()) throw std::runtime_error("plugins must be an object");
  const auto& obj = value.as_object();
  static constexpr const char* kKeys[] = {"dir", "max_running", "max_timeout_s", "max_output_bytes", "rescan_s"};
  using namespace json_fields;
  check_known(obj, kKeys);
  read_string(obj, "dir", plugins.dir);
  read_int(obj, "max_running", plugins.max_running);
  read_int(obj, "max_timeout_s", plugins.max_timeout_s);
  read_int(obj, "max_output_bytes", plugins.max_output_bytes);
  read_int(obj, "rescan_s", plugins.rescan_s);
}

void AgentConfig::read_host_metrics(const boost::json::value& value) {
  if (!value.is_object()) throw std::runtime_error("host_metrics must be an object");
  const auto& obj = value.as_object();
  static constexpr const char* kKeys[] = {"enabled",       "interval_ms",     "service",         "per_core",
                                          "skip_fs_types", "skip_mounts",     "skip_disks",      "skip_interfaces",
                                          "max_devices",   "statvfs_timeout_ms"};
  using namespace json_fields;
  check_known(obj, kKeys);
  read_bool(obj, "enabled", host.enabled);
  read_int(obj, "interval_ms", host.interval_ms);
  read_string(obj, "service", host.service);
  read_bool(obj, "per_core", host.per_core);
  read_int(obj, "max_devices", host.max_devices);
  read_int(obj, "statvfs_timeout_ms", host.statvfs_timeout_ms);
  auto read_globs = [&](const char* key, std::vector<std::string>& out) {
    const auto* list = obj.if_contains(key);
    if (list == nullptr) return;
    if (!list->is_array()) throw std::runtime_error(fmt::format("host_metrics.{} must be a list of globs", key));
    out.clear();
    for (const auto& glob : list->as_array()) {
      if (!glob.is_string()) throw std::runtime_error(fmt::format("host_metrics.{} must be a list of globs", key));
      out.emplace_back(glob.as_string());
    }
  };
  read_globs("skip_fs_types", host.skip_fs_types);
  read_globs("skip_mounts", host.skip_mounts);
  read_globs("skip_disks", host.skip_disks);
  read_globs("skip_interfaces", host.skip_interfaces);
}

const SettingsTable<AgentConfig>& agent_settings() {
  using C = AgentConfig;
  using Custom = SettingsTable<AgentConfig>::Custom;
  // A nested object of the file, read by its own reader.
  auto object = [](void (AgentConfig::*read)(const boost::json::value&)) {
    return Custom{[read](const boost::json::value& v, C& config) { (config.*read)(v); }, Custom::Flag::kNone, {}};
  };
  static const SettingsTable<AgentConfig> table = [&] {
    SettingsTable<AgentConfig> t;
    t.add("ring", &C::ring, "shm name of the ring", "`$MONITOR_RING`, or `/monitor-ring`")
        .add_bounded("ring_lanes", &C::ring_lanes, "lanes, if the agent creates the ring", 2, 65'536)
        .add_bounded("ring_shared_lanes", &C::ring_shared_lanes,
                     "of those, lanes shared call by call", 1, 65'535)
        .add_bounded("ring_slots_per_lane", &C::ring_slots_per_lane, "slots per lane, a power of two", 64, 1 << 24)
        .add_bounded("ring_name_capacity", &C::ring_name_capacity,
                     "(service, attr) pairs the ring's name table holds, a power of two", 64, 1 << 24)
        .add("recreate_ring", &C::recreate_ring,
             "remove an existing ring first (e.g. of another version)")
        .add("socket", &C::socket, "Unix datagram socket, mode 0660; `\"\"` for none. Its directory is created if missing. A socket file left by a dead "
             "agent is replaced; one a live agent serves stops the start",
             "`/run/monitor/agent.sock` as root, else `$XDG_RUNTIME_DIR/monitor/agent.sock` (or "
             "`/tmp/monitor-<uid>/agent.sock`)")
        .add_bounded("socket_rcvbuf_bytes", &C::socket_rcvbuf_bytes, "the socket's receive buffer", 4096,
                     1 << 30, "8 MiB")
        .add("udp", &C::udp,
             "`host:port` of a UDP socket taking the same lines: statsd clients, and bindings that cannot open a Unix "
             "datagram socket (Node.js: `bindings/node`); `none` for no UDP. Any local user can send to it. When the "
             "default address is taken (another statsd daemon), the agent logs a warning and runs without UDP; an "
             "address that was set and cannot be bound stops the start")
        .add("statsd_socket", &C::statsd_socket, "Unix stream socket for statsd lines, mode 0660 and group as `socket`; `none` for none (also when `socket` "
             "is `\"\"`). When the default path is served by another live agent, a warning, and no stream socket; a "
             "path that was set must bind",
             "`statsd.sock` beside `socket`")
        .add("statsd", object(&C::read_statsd),
             "how statsd names map (docs/socket.md): `rules` (list of `{match, service, attr}`, first match wins), "
             "`default_service`, `prefix` (`Statsd`), `gauge_sign` (`delta`, statsd's rule, or `value`, DogStatsD's), "
             "`max_connections` (256) of the stream socket, `idle_timeout_s` (120): a stream client silent this long "
             "is closed",
             "`{}`")
        .add("", Custom{{}, Custom::Flag::kValue,
                        [](const std::vector<std::string>& v, C& config) { config.statsd.default_service = v.at(0); }},
             "service of statsd lines that no rule and no `service:` tag map (`statsd.default_service`)")
        .flag("statsd-default-service")
        .add("group", &C::group, "group given the ring and the socket (both 0660): who may report",
             "`monitor` if it exists, else the agent's own")
        .add("output", &C::output, "JSON-lines file (appended), `-` for stdout, `none`. A forwarding agent writes no copy unless asked: a "
             "slow stdout would stall its only thread",
             "stdout when not forwarding, `none` when forwarding")
        .flag("o,output")
        .add("forward", &C::forward, "numeric `host:port` to send each second's batch to (spooled while it is down); empty: a proxy from the registry")
        .add("registry", &C::registry, "registry address (`file:<dir>`); with `forward` empty, batches go to a live proxy of `dc` from it; both empty: no forwarding")
        .add("dc", &C::dc, "this host's data centre: only proxies registered with it are picked")
        .add("spool_dir", &C::spool_dir, "where batches wait until the next hop acknowledges them",
             "`/var/lib/monitor/agent-spool` as root; `$XDG_STATE_HOME/monitor/agent-spool` (or "
             "`~/.local/state/monitor/agent-spool`) otherwise")
        .add_bounded("spool_max_bytes", &C::spool_max_bytes, "past this the oldest batches are dropped and counted",
                     1 << 20, INT64_MAX, "256 MiB")
        .add("sender_id", &C::sender_id, "this agent's id on the wire; 0 derives it from the host name and the ring, or with TLS takes the id its certificate names")
        .add("journal", &C::journal, "crash journal (see \"Crash story\"); `none` for none (a SIGKILL then loses the open seconds)",
             "`/dev/shm/<ring>.journal`")
        .add_bounded("journal_max_bytes", &C::journal_max_bytes, "room for reports of open seconds in the journal (32 bytes each; tmpfs pages are used only as needed), a multiple of 4096", 1 << 20,
                     16LL << 30, "256 MiB")
        .add("series_per_service", &C::series_per_service,
             "series (one per series and op mask) one service may open in one second; reports that would open more are "
             "dropped, counted as `Series.OverLimit`, and the first time per service a warning names it. A `server_id` "
             "loop in one service then costs a bounded amount of memory. 0: no limit")
        .add_bounded("max_names", &C::max_names,
                     "(service, attr) names the agent holds (they are never forgotten); a report of a new name past it is dropped, "
                     "logged (at most once a second) and counted as `Names.Refused`", 64,
                     UINT32_MAX)
        .add_bounded("max_line_names", &C::max_line_names,
                     "of `max_names`, those first seen in socket and statsd lines: a flood of line names never takes "
                     "the room of the SDK's, which must hold `ring_name_capacity`. 0: half of `max_names`", 0,
                     UINT32_MAX)
        .add_bounded("late_window_s", &C::late_window_s, "how long after its second ends a report is still taken", 0, 300)
        .flag("late-window")
        .add_bounded("future_window_s", &C::future_window_s, "how far ahead of the agent's clock a report may be", 0,
                     300)
        .flag("future-window")
        .add_bounded("server_id", &C::server_id,
                     "for statsd lines without a server tag, for `Monitor.Agent` and the host's metrics", 0,
                     INT64_MAX)
        .add("host_metrics", object(&C::read_host_metrics), "the host's own metrics (docs/host-metrics.md): `enabled` (true), `interval_ms` (1000), `service` "
             "(`Host.System`), `per_core` (false), `skip_fs_types`, `skip_mounts`, `skip_disks`, `skip_interfaces` (lists "
             "of globs, replacing the defaults), `max_devices` (64 per kind), `statvfs_timeout_ms` (1000)",
             "on")
        .add("", Custom{{}, Custom::Flag::kSwitch, [](const std::vector<std::string>&, C& config) { config.host.enabled = false; }},
             "do not collect this host's metrics (`host_metrics.enabled`)", "collected every second as `Host.System`")
        .flag("no-host-metrics")
        .add("plugins", object(&C::read_plugins), "executables run on their interval (docs/plugins.md): `dir`, `max_running` (4), `max_timeout_s` (60), "
             "`max_output_bytes` (262144), `rescan_s` (10)",
             "`dir` as `--plugin-dir`")
        .add("", Custom{{}, Custom::Flag::kValue, [](const std::vector<std::string>& v, C& config) { config.plugins.dir = v.at(0); }},
             "directory of plugins, executables named `<interval s>_<name>`; `none` for no plugins (`plugins.dir`)",
             "`/etc/monitor/plugins` as root, else `$XDG_CONFIG_HOME/monitor/plugins` (or `~/.config/monitor/plugins`)")
        .flag("plugin-dir")
        .add("checks", Custom{[](const boost::json::value& v, C& config) { config.checks = read_checks(v); }, Custom::Flag::kNone, {}},
             "built-in checks (docs/plugins.md, \"Checks\"): a list of `{\"type\": \"tcp\", \"name\", \"address\"}`, "
             "`{\"type\": \"process\", \"name\", \"process\" or \"cmdline\"}`, `{\"type\": \"http\", \"name\", \"url\"}`, each with "
             "`interval_s` (10) and `timeout_ms` (1000)")
        .add("self_metrics", &C::self_metrics, "report `Monitor.Agent` health metrics")
        .add("metrics_listen", &C::metrics_listen, "`host:port` serving `GET /metrics`: the same figures as Prometheus text (docs/metrics.md)");
    net::add_tls_settings(t, false);
    t.add("log_level", &C::log_level, "trace, debug, info, warn, error");
    return t;
  }();
  return table;
}

void AgentConfig::load_file(const std::string& path) { agent_settings().load_file(path, *this); }

void AgentConfig::validate() const {
  agent_settings().check_bounds(*this, AgentConfig{});
  if (max_line_names > max_names) throw std::runtime_error("max_line_names must not exceed max_names");
  // The names lines may not take are the SDK's (and host metrics'): they must
  // hold every name the ring can, or an SDK name could be refused for room.
  const uint64_t line_budget = max_line_names == 0 ? max_names / 2 : max_line_names;
  if (uint64_t{max_names} - line_budget < ring_name_capacity) {
    throw std::runtime_error(fmt::format(
        "max_names less the names of lines (max_line_names, or half of max_names) leaves {} for the SDK's names, "
        "fewer than ring_name_capacity ({}): raise max_names or lower max_line_names",
        uint64_t{max_names} - line_budget, ring_name_capacity));
  }
  if (!metrics_listen.empty() && !net::parse_endpoint(metrics_listen)) {
    throw std::runtime_error("metrics_listen must be a numeric host:port");
  }
  if (!std::has_single_bit(ring_slots_per_lane) || ring_slots_per_lane < 64) {
    throw std::runtime_error("ring_slots_per_lane must be a power of two >= 64");
  }
  if (!std::has_single_bit(ring_name_capacity) || ring_name_capacity < 64 || ring_name_capacity > (1u << 24)) {
    throw std::runtime_error("ring_name_capacity must be a power of two in [64, 2^24]");
  }
  if (ring_lanes < 2 || ring_lanes > 65536 || ring_shared_lanes == 0 || ring_shared_lanes >= ring_lanes) {
    throw std::runtime_error("need 2 <= ring_lanes <= 65536 and 0 < ring_shared_lanes < ring_lanes");
  }
  if (host.interval_ms < 100 || host.interval_ms > 60'000) {
    throw std::runtime_error("host_metrics.interval_ms must be in [100, 60000]");
  }
  if (host.max_devices < 1 || host.max_devices > 4096) throw std::runtime_error("host_metrics.max_devices must be in [1, 4096]");
  if (host.statvfs_timeout_ms < 10 || host.statvfs_timeout_ms > 60'000) {
    throw std::runtime_error("host_metrics.statvfs_timeout_ms must be in [10, 60000]");
  }
  if (host.enabled && !monitor::is_valid_name(host.service)) {
    throw std::runtime_error(fmt::format("host_metrics.service \"{}\" is not a service name (like Host.System)", host.service));
  }
  if (plugins.max_running < 1 || plugins.max_running > 64) throw std::runtime_error("plugins.max_running must be in [1, 64]");
  if (plugins.max_timeout_s < 1 || plugins.max_timeout_s > 3600) {
    throw std::runtime_error("plugins.max_timeout_s must be in [1, 3600]");
  }
  if (plugins.max_output_bytes < 1024 || plugins.max_output_bytes > (64u << 20)) {
    throw std::runtime_error("plugins.max_output_bytes must be in [1024, 67108864]");
  }
  if (plugins.rescan_s < 1 || plugins.rescan_s > 3600) throw std::runtime_error("plugins.rescan_s must be in [1, 3600]");
  if (!forward.empty() && !net::parse_endpoint(forward)) throw std::runtime_error("forward must be a numeric host:port");
  if (!registry::is_valid_key(dc)) throw std::runtime_error("dc must be 1-128 bytes of [A-Za-z0-9._-]");
  if (!udp.empty() && udp != "none" && !net::parse_endpoint(udp)) {
    throw std::runtime_error("udp must be a numeric host:port, or none");
  }
  if (statsd_max_connections < 1 || statsd_max_connections > 65536) {
    throw std::runtime_error("statsd.max_connections must be in [1, 65536]");
  }
  if (statsd_idle_timeout_s < 1 || statsd_idle_timeout_s > 86'400) {
    throw std::runtime_error("statsd.idle_timeout_s must be in [1, 86400]");
  }
  try {
    statsd.validate();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
  if (journal_max_bytes < (1u << 20) || journal_max_bytes > (16ull << 30) || journal_max_bytes % 4096 != 0) {
    throw std::runtime_error("journal_max_bytes must be a multiple of 4096 in [1 MiB, 16 GiB]");
  }
  const std::string name = ring_name();
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos || name.size() > 200) {
    throw std::runtime_error(fmt::format("ring name \"{}\" must look like /name", name));
  }
}

std::string AgentConfig::effective_output() const {
  if (!output.empty()) return output;
  return forward.empty() && registry.empty() ? "-" : "none";
}

std::string AgentConfig::effective_journal() const {
  if (!journal.empty()) return journal;
  return "/dev/shm" + ring_name() + ".journal";
}

std::string AgentConfig::effective_statsd_socket() const {
  if (!statsd_socket.empty()) return statsd_socket;
  if (socket.empty()) return "none";
  const size_t slash = socket.rfind('/');
  return (slash == std::string::npos ? std::string(".") : socket.substr(0, slash)) + "/statsd.sock";
}

std::string AgentConfig::default_socket_path() { return default_runtime_dir() + "/agent.sock"; }

std::string AgentConfig::default_state_dir() { return monitor::default_state_dir(); }

std::string AgentConfig::ring_name() const {
  if (!ring.empty()) return ring;
  const char* env = std::getenv(MONITOR_RING_ENV);
  return env != nullptr && env[0] != '\0' ? env : MONITOR_DEFAULT_RING;
}

}  // namespace monitor::agent
