// monitor-dashboard's settings: defaults, the JSON config file, flags (docs/dashboard.md).
#pragma once

#include <cstdint>
#include <string>

#include "common/default_paths.hpp"
#include "common/settings.hpp"

namespace monitor::dashboard {

/// Everything monitor-dashboard can be told: defaults, then the JSON config
/// file, then flags (docs/dashboard.md).
struct DashboardConfig {
  std::string listen = "127.0.0.1:7303";
  std::string registry = default_registry();
  std::string web_root;  // the built web application; empty: the one this build installed or made
  int threads = 4;       // HTTP threads: they parse and write; API calls run on api_threads
  int api_threads = 8;   // threads running API calls, which may wait on judgers
  int max_api_per_address = 8;  // API calls of one client address under way at once; more: 429
  uint32_t max_connections = 256;
  uint32_t max_connections_per_address = 32;  // so one client cannot take every connection
  int64_t session_ttl_s = 12 * 3600;
  int max_sessions_per_user = 8;
  int sign_in_free_failures = 5;
  int64_t sign_in_max_delay_s = 300;
  int judger_timeout_s = 5;
  std::string judger_token;  // shown to judgers that ask for a token (their query_tokens)
  std::string https_cert, https_key;  // both: the dashboard is served over HTTPS
  std::string query_ca;               // the judgers' API is HTTPS, their certificates from this CA
  int64_t server_id = 0;     // for the Monitor.Dashboard health metrics
  bool self_metrics = true;  // report Monitor.Dashboard through the local agent, if one runs
  std::string log_level = "info";

  /// Throws std::runtime_error naming the file and the problem.
  void load_file(const std::string& path);
  /// Throws std::runtime_error when a value is out of range.
  void validate() const;
};

/// monitor-dashboard's settings: its flags, config keys, bounds, --help and
/// the table of docs/dashboard.md, from one list.
const SettingsTable<DashboardConfig>& dashboard_settings();

}  // namespace monitor::dashboard
