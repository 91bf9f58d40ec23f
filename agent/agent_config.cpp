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

void AgentConfig::load_file(const std::string& path) {
  const boost::json::object obj = json_fields::read_json_object(path);
  static constexpr const char* kKnown[] = {
      "ring", "ring_lanes", "ring_shared_lanes", "ring_slots_per_lane", "ring_name_capacity",
      "recreate_ring", "socket", "udp", "group", "socket_rcvbuf_bytes", "output", "late_window_s",
      "future_window_s", "server_id", "self_metrics", "metrics_listen", "log_level", "forward", "registry", "dc", "spool_dir", "spool_max_bytes",
      "sender_id", "journal", "journal_max_bytes",
      "series_per_service", "max_names", "statsd_socket", "statsd", "host_metrics", "plugins", "checks"};
  try {
    using namespace json_fields;
    check_known(obj, kKnown);
    read_string(obj, "ring", ring);
    read_int(obj, "ring_lanes", ring_lanes);
    read_int(obj, "ring_shared_lanes", ring_shared_lanes);
    read_int(obj, "ring_slots_per_lane", ring_slots_per_lane);
    read_int(obj, "ring_name_capacity", ring_name_capacity);
    read_bool(obj, "recreate_ring", recreate_ring);
    read_string(obj, "socket", socket);
    read_string(obj, "udp", udp);
    read_string(obj, "group", group);
    read_int(obj, "socket_rcvbuf_bytes", socket_rcvbuf_bytes);
    read_string(obj, "output", output);
    read_int(obj, "late_window_s", late_window_s);
    read_int(obj, "future_window_s", future_window_s);
    read_int(obj, "server_id", server_id);
    read_bool(obj, "self_metrics", self_metrics);
    read_string(obj, "metrics_listen", metrics_listen);
    read_string(obj, "log_level", log_level);
    read_string(obj, "forward", forward);
    read_string(obj, "registry", registry);
    read_string(obj, "dc", dc);
    read_string(obj, "spool_dir", spool_dir);
    read_int(obj, "spool_max_bytes", spool_max_bytes);
    read_int(obj, "sender_id", sender_id);
    read_string(obj, "journal", journal);
    read_int(obj, "journal_max_bytes", journal_max_bytes);
    read_int(obj, "series_per_service", series_per_service);
    read_int(obj, "max_names", max_names);
    read_string(obj, "statsd_socket", statsd_socket);
    if (const auto* v = obj.if_contains("statsd")) read_statsd(*v);
    if (const auto* v = obj.if_contains("host_metrics")) read_host_metrics(*v);
    if (const auto* v = obj.if_contains("plugins")) read_plugins(*v);
    if (const auto* v = obj.if_contains("checks")) checks = read_checks(*v);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("config {}: {}", path, e.what()));
  }
}

void AgentConfig::validate() const {
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
  if (late_window_s < 0 || late_window_s > 300) throw std::runtime_error("late_window_s must be in [0, 300]");
  if (future_window_s < 0 || future_window_s > 300) throw std::runtime_error("future_window_s must be in [0, 300]");
  if (server_id < 0) throw std::runtime_error("server_id must be >= 0");
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
  if (socket_rcvbuf_bytes < 4096) throw std::runtime_error("socket_rcvbuf_bytes must be >= 4096");
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
  if (spool_max_bytes < (1u << 20)) throw std::runtime_error("spool_max_bytes must be >= 1 MiB");
  if (max_names < 64) throw std::runtime_error("max_names must be >= 64");
  if (!udp.empty() && udp != "none" && !net::parse_endpoint(udp)) {
    throw std::runtime_error("udp must be a numeric host:port, or none");
  }
  if (statsd_max_connections < 1 || statsd_max_connections > 65536) {
    throw std::runtime_error("statsd.max_connections must be in [1, 65536]");
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
