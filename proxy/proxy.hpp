// monitor-proxy (docs/proxy.md): one binary, two roles.
//
// Clyde, in a remote data centre, relays every batch of its agents to one
// Bonnie from its list, failing over to another when that one dies, and keeps
// its list file up to date from the member lists of heartbeat replies.
// Bonnie, central, checks every record against the registered services and
// attrs (dropping and counting the rest) and splits each batch by service into
// parts for the judgers the registry assigns.
//
// Both acknowledge an upstream batch only when every part of it is
// acknowledged by the next hop or in that hop's spool (net/batch_sender.hpp), and
// keep the origin's (sender id, sequence) on every part so the judger's ingest
// stays idempotent end to end. One io_context thread runs everything.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/log_throttle.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "registry/live_registration.hpp"
#include "registry/registry.hpp"
#include "health/health_reporter.hpp"
#include "health/health_table.hpp"
#include "net/frame_connection.hpp"
#include "net/http_server.hpp"
#include "net/tls.hpp"
#include "net/tls_settings.hpp"
#include "proxy/attr_registrar.hpp"
#include "proxy/catalogue.hpp"
#include "net/batch_sender.hpp"
#include "net/batch_session.hpp"
#include "proxy/proxy_config.hpp"
#include "wire/dictionary.hpp"

namespace monitor::proxy {

/// Counters behind the proxy's health (logged every minute, reported as Monitor.Proxy).
struct ProxyCounters {
  uint64_t batches_in = 0;
  uint64_t records_in = 0;
  uint64_t records_routed = 0;
  uint64_t dropped_unknown_service = 0;
  uint64_t dropped_unknown_attr = 0;
  uint64_t dropped_unassigned = 0;
  uint64_t batches_acked = 0;
  uint64_t batches_refused = 0;
  uint64_t link_failures = 0;    // links that could not be opened (their spool)  // not acknowledged: a part could be neither delivered nor spooled
  uint64_t bonnie_list_updates = 0;
  uint64_t records_handed_over = 0;  // from the spool of a judger gone for good to their services' judgers now
};

class Proxy {
 public:
  /// Binds the listen address, opens the registry and (Clyde) reads the Bonnie
  /// list. Throws std::runtime_error with one line.
  explicit Proxy(ProxyConfig config);
  ~Proxy();

  /// Serves until SIGTERM or SIGINT, then returns 0.
  int run();

  /// The Monitor.Proxy attrs it reports (its health table's).
  static std::vector<std::string> health_attrs();

 private:
  class Upstream;  // an upstream session: routes and acknowledges in order (proxy.cpp)

  boost::asio::awaitable<void> tick_loop();
  void route(Upstream& from, wire::Batch batch);
  // Tells every next hop the lowest watermark of the live senders: every
  // second before it that this proxy received is on its way to them.
  void announce_watermarks(int64_t now_s);
  // Closes `upstream` without acknowledging its batch number `index` (sender,
  // sequence), counted and logged with `why`: a part of it could be kept nowhere.
  void refuse(Upstream& upstream, uint64_t index, uint64_t sender, uint64_t sequence, std::string_view why);
  /// The link to `next_hop`, opened on first use; null when its spool cannot
  /// be opened (logged, at most once a minute per hop, and counted).
  net::BatchSender* link_to(const std::string& next_hop);
  std::string next_bonnie(bool last_failed);
  void update_bonnie_list(const std::vector<std::string>& members);
  // On the event loop: the catalogue from the latest entries the watch brought.
  void apply_catalogue();
  // Hands what was spooled for judgers gone for good to their services' judgers now.
  void hand_over_retired();
  void reroute(const std::string& from, wire::SpoolRecord part, net::BatchSender::Finished finished);
  // The catalogue's verdict, with a new attr of a service that takes them
  // routed (and queued for registration) while there is room, else refused.
  Catalogue::Verdict judge(std::string_view service, std::string_view attr, std::string& judger);
  void register_self();
  void report_health();
  void log_health();
  static const health::HealthTable<Proxy>& health_table();

  ProxyConfig config_;
  const uint64_t own_id_;
  std::shared_ptr<net::TlsContext> tls_;  // null: plain TCP
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<registry::Registry> registry_;
  health::Metrics metrics_{"proxy"};
  health::HealthReporter health_;
  std::unique_ptr<net::MetricsServer> metrics_server_;

  Catalogue catalogue_;  // Bonnie
  uint64_t catalogue_version_ = 1;
  std::vector<std::string> bonnies_;  // Clyde: its list, in file order
  size_t bonnie_index_ = 0;

  std::map<std::string, std::unique_ptr<net::BatchSender>> links_;  // by next hop: judger name, or "bonnie"

  std::unordered_map<std::string, int64_t> link_failure_log_;  // next_hop -> when to log its failure again
  std::unique_ptr<net::BatchListener> listener_;
  ProxyCounters counters_;
  bool stopping_ = false;
  bool catalogue_loaded_ = false;  // Bonnie: refuses batches until the registry was read once

  // Filled by the watch's thread, applied on the event loop.
  std::mutex watched_mutex_;
  std::map<std::string, std::vector<registry::Entry>> watched_;  // GUARDED_BY(watched_mutex_)
  // Last: stopped before anything they call into is destroyed.
  std::unique_ptr<AttrRegistrar> registrar_;  // Bonnie
  std::unique_ptr<registry::LiveRegistration> registration_;
  std::unique_ptr<registry::Watch> catalogue_watch_;
};

}  // namespace monitor::proxy
