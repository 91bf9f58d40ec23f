#include "proxy/proxy_config.hpp"

#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/json_fields.hpp"
#include "registry/registry.hpp"
#include "net/endpoint.hpp"

namespace monitor::proxy {

void ProxyConfig::load_file(const std::string& path) {
  const boost::json::object obj = json_fields::read_json_object(path);
  static constexpr const char* kKnown[] = {"role",
                                           "name",
                                           "listen",
                                           "dc",
                                           "registry",
                                           "data_dir",
                                           "bonnies_file",
                                           "spool_max_bytes",
                                           "heartbeat_interval_ms",
                                           "heartbeat_timeout_ms",
                                           "idle_timeout_s",
                                           "max_unacked_batches", "max_connections",
                                           "server_id",
                                           "self_metrics",
                                           "metrics_listen",
                                           "log_level"};
  try {
    using namespace json_fields;
    check_known(obj, kKnown);
    read_string(obj, "role", role);
    read_string(obj, "name", name);
    read_string(obj, "listen", listen);
    read_string(obj, "dc", dc);
    read_string(obj, "registry", registry);
    read_string(obj, "data_dir", data_dir);
    read_string(obj, "bonnies_file", bonnies_file);
    read_int(obj, "spool_max_bytes", spool_max_bytes);
    read_int(obj, "heartbeat_interval_ms", heartbeat_interval_ms);
    read_int(obj, "heartbeat_timeout_ms", heartbeat_timeout_ms);
    read_int(obj, "idle_timeout_s", idle_timeout_s);
    read_int(obj, "max_unacked_batches", max_unacked_batches);
    read_int(obj, "max_connections", max_connections);
    read_int(obj, "server_id", server_id);
    read_bool(obj, "self_metrics", self_metrics);
    read_string(obj, "metrics_listen", metrics_listen);
    read_string(obj, "log_level", log_level);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("config {}: {}", path, e.what()));
  }
}

void ProxyConfig::validate() const {
  if (role != "clyde" && role != "bonnie") throw std::runtime_error("role must be clyde or bonnie");
  if (!registry::is_valid_key(name)) throw std::runtime_error("name must be 1-128 bytes of [A-Za-z0-9._-]");
  if (!registry::is_valid_key(dc)) throw std::runtime_error("dc must be 1-128 bytes of [A-Za-z0-9._-]");
  if (!net::parse_endpoint(listen)) throw std::runtime_error("listen must be a numeric host:port");
  if (!metrics_listen.empty() && !net::parse_endpoint(metrics_listen)) {
    throw std::runtime_error("metrics_listen must be a numeric host:port");
  }
  if (is_clyde() && bonnies_file.empty()) throw std::runtime_error("a clyde needs bonnies_file (its Bonnie list)");
  if (spool_max_bytes < (1u << 20)) throw std::runtime_error("spool_max_bytes must be at least 1 MiB");
  if (heartbeat_interval_ms < 10) throw std::runtime_error("heartbeat_interval_ms must be >= 10");
  if (heartbeat_timeout_ms <= heartbeat_interval_ms) {
    throw std::runtime_error("heartbeat_timeout_ms must exceed heartbeat_interval_ms");
  }
  if (idle_timeout_s < 1) throw std::runtime_error("idle_timeout_s must be >= 1");
  if (max_unacked_batches < 1) throw std::runtime_error("max_unacked_batches must be >= 1");
  if (max_connections < 1) throw std::runtime_error("max_connections must be >= 1");
  if (server_id < 0) throw std::runtime_error("server_id must be >= 0");
}

}  // namespace monitor::proxy
