// monitor-dashboard: the web application and its JSON API (docs/dashboard.md).
#include "common/daemon_main.hpp"
#include "dashboard/dashboard_server.hpp"

int main(int argc, char** argv) {
  using monitor::dashboard::DashboardConfig;
  const monitor::Daemon<DashboardConfig> daemon{
      "monitor-dashboard",
      "Dashboard: serves the web application and its JSON API; signs in the console's\n"
      "users and shows them the services of their roles, read from the judgers.",
      "docs/dashboard.md", monitor::dashboard::dashboard_settings()};
  return monitor::daemon_main(argc, argv, daemon, [](DashboardConfig config, const cxxopts::ParseResult&) {
    monitor::dashboard::DashboardServer server(std::move(config));
    return server.run();
  });
}
