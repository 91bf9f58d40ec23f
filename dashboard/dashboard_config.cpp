#include "dashboard/dashboard_config.hpp"

#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/json_fields.hpp"

namespace monitor::dashboard {

void DashboardConfig::load_file(const std::string& path) {
  const boost::json::object obj = json_fields::read_json_object(path);
  static constexpr const char* kKnown[] = {"listen", "registry", "web_root", "threads", "api_threads",
                                           "max_api_per_address", "max_connections",
                                           "session_ttl_s", "judger_timeout_s", "server_id", "self_metrics",
                                           "log_level"};
  try {
    using namespace json_fields;
    check_known(obj, kKnown);
    read_string(obj, "listen", listen);
    read_string(obj, "registry", registry);
    read_string(obj, "web_root", web_root);
    read_int(obj, "threads", threads);
    read_int(obj, "api_threads", api_threads);
    read_int(obj, "max_api_per_address", max_api_per_address);
    read_int(obj, "max_connections", max_connections);
    read_int(obj, "session_ttl_s", session_ttl_s);
    read_int(obj, "judger_timeout_s", judger_timeout_s);
    read_int(obj, "server_id", server_id);
    read_bool(obj, "self_metrics", self_metrics);
    read_string(obj, "log_level", log_level);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("config {}: {}", path, e.what()));
  }
}

void DashboardConfig::validate() const {
  if (listen.rfind(':') == std::string::npos) throw std::runtime_error("listen must be host:port");
  if (threads < 1 || threads > 64) throw std::runtime_error("threads must be in [1, 64]");
  if (api_threads < 1 || api_threads > 256) throw std::runtime_error("api_threads must be in [1, 256]");
  if (max_api_per_address < 1) throw std::runtime_error("max_api_per_address must be >= 1");
  if (max_connections < 1) throw std::runtime_error("max_connections must be >= 1");
  if (session_ttl_s < 60 || session_ttl_s > 31 * 86400) throw std::runtime_error("session_ttl_s must be in [60, 2678400]");
  if (judger_timeout_s < 1 || judger_timeout_s > 120) throw std::runtime_error("judger_timeout_s must be in [1, 120]");
  if (server_id < 0) throw std::runtime_error("server_id must be >= 0");
}

}  // namespace monitor::dashboard
