// monitor-dashboard's HTTP server: the web application's files, its JSON API
// (dashboard_api.hpp), its own health on /api/health and /metrics. Several
// threads run one io_context that only reads and writes; API calls, which may
// wait on judgers, run on a pool of their own, so a judger that never answers
// holds a chart, never the server.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include "registry/registry.hpp"
#include "dashboard/dashboard_api.hpp"
#include "dashboard/dashboard_config.hpp"
#include "health/health_reporter.hpp"
#include "health/health_table.hpp"
#include "health/metrics.hpp"
#include "net/http_server.hpp"

namespace monitor::dashboard {

class DashboardServer {
 public:
  /// Opens the registry, finds the web application and binds the listen
  /// address. Throws std::runtime_error with one line.
  explicit DashboardServer(DashboardConfig config);
  ~DashboardServer();

  /// Serves until SIGTERM or SIGINT, then returns 0.
  int run();

  /// The Monitor.Dashboard attrs it reports (its health table's).
  static std::vector<std::string> health_attrs();

 private:
  // The routes: the API (on the API pool), health, metrics, the web application's files.
  boost::asio::awaitable<net::HttpReply> handle(net::HttpExchange& exchange);
  boost::asio::awaitable<ApiResponse> call_api(const std::string& address, ApiRequest request);
  void serve_file(const std::string& path, net::HttpReply& reply) const;
  boost::asio::awaitable<void> health_loop();
  void report_health();
  std::string health_json() const;
  static const health::HealthTable<DashboardServer>& health_table();

  DashboardConfig config_;
  std::string web_root_;
  std::filesystem::path web_root_canonical_;  // what every file served must be under
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<registry::Registry> registry_;
  std::unique_ptr<DashboardApi> api_;
  health::Metrics metrics_{"dashboard"};
  health::HealthReporter health_;
  std::shared_ptr<net::TlsContext> https_;  // null: plain HTTP
  std::unique_ptr<net::HttpServer> http_;
  std::atomic<bool> stopping_{false};
  // API calls under way, in all and per client address (bounded per address).
  std::mutex api_mutex_;
  std::map<std::string, int> api_by_address_;
  std::atomic<int64_t> api_running_{0};
  std::atomic<uint64_t> api_refused_{0};
  std::atomic<uint64_t> cross_origin_refused_{0};  // state-changing calls not from this dashboard's pages
  std::unique_ptr<boost::asio::thread_pool> api_pool_;
};

}  // namespace monitor::dashboard
