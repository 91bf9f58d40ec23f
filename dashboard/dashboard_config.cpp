#include "dashboard/dashboard_config.hpp"

#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/json_fields.hpp"
#include "net/tls_settings.hpp"

namespace monitor::dashboard {

const SettingsTable<DashboardConfig>& dashboard_settings() {
  using C = DashboardConfig;
  static const SettingsTable<DashboardConfig> table = [] {
    SettingsTable<DashboardConfig> t;
    t.add("listen", &C::listen, "`host:port` of the web application and its API")
        .add("registry", &C::registry, "registry address (docs/registry.md)",
             "`file:/var/lib/monitor/registry` as root, else `file:$XDG_STATE_HOME/monitor/registry` (or "
             "`~/.local/state/monitor/registry`)")
        .add("web_root", &C::web_root, "directory of the built web application",
             "this build's, or `share/monitor/dashboard` of the installation")
        .add_bounded("threads", &C::threads, "HTTP threads: they parse and write; API calls run on `api_threads`", 1, 64)
        .add_bounded("api_threads", &C::api_threads, "threads running API calls, which may wait on judgers", 1, 256)
        .add_bounded("max_api_per_address", &C::max_api_per_address,
                     "API calls of one client address under way at once; more get 429", 1, 1'000'000)
        .add_bounded("max_connections", &C::max_connections, "connections at once; more are closed at accept", 1,
                     1'000'000)
        .add_bounded("max_connections_per_address", &C::max_connections_per_address,
                     "connections of one client address at once; more are closed at accept", 1, 1'000'000)
        .add_bounded("session_ttl_s", &C::session_ttl_s, "seconds a sign-in lasts", 60, 31 * 86'400)
        .flag("session-ttl")
        .add_bounded("max_sessions_per_user", &C::max_sessions_per_user,
                     "sessions of one user at once; one more ends the user's oldest", 1, 10'000)
        .add_bounded("sign_in_free_failures", &C::sign_in_free_failures,
                     "failed sign-ins of a user, or from an address, before each next waits (1 s, doubling)", 1,
                     1'000'000)
        .add_bounded("sign_in_max_delay_s", &C::sign_in_max_delay_s, "the longest wait between sign-in attempts", 1,
                     86'400)
        .add_bounded("judger_timeout_s", &C::judger_timeout_s, "seconds to wait for a judger's answer", 1, 120)
        .flag("judger-timeout")
        .add("judger_token", &C::judger_token,
             "API token (`monitorctl user token`) of a user who sees every service, for judgers with `query_tokens`; "
             "the dashboard applies each signed-in user's roles itself");
    net::add_https_settings(t, "the dashboard");
    t        .add_bounded("server_id", &C::server_id, "server id of its `Monitor.Dashboard` metrics", 0, INT64_MAX)
        .add("self_metrics", &C::self_metrics, "report `Monitor.Dashboard` through the local agent, if one runs")
        .add("log_level", &C::log_level, "trace, debug, info, warn, error");
    return t;
  }();
  return table;
}

void DashboardConfig::load_file(const std::string& path) { dashboard_settings().load_file(path, *this); }

void DashboardConfig::validate() const {
  dashboard_settings().check_bounds(*this, DashboardConfig{});
  if (listen.rfind(':') == std::string::npos) throw std::runtime_error("listen must be host:port");
}

}  // namespace monitor::dashboard
