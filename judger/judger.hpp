// The judger daemon: batch ingest, minute roll-up and storage, queries, alarms and export, on one io thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include "registry/live_registration.hpp"
#include "registry/registry.hpp"
#include "judger/alarm_engine.hpp"
#include "judger/exporter.hpp"
#include "judger/feeders.hpp"
#include "judger/notifier.hpp"
#include "judger/placer.hpp"
#include "health/health_reporter.hpp"
#include "health/health_table.hpp"
#include "common/log_throttle.hpp"
#include "judger/judger_config.hpp"
#include "judger/minute_rollup.hpp"
#include "judger/minute_store.hpp"
#include "judger/query_api.hpp"
#include "judger/series_limiter.hpp"
#include "judger/wal_checkpointer.hpp"
#include "net/batch_session.hpp"
#include "net/http_server.hpp"
#include "judger/api_auth.hpp"
#include "net/tls.hpp"
#include "net/tls_settings.hpp"

namespace monitor::judger {

struct QueryUnderWay;  // a store query a session waits on (judger.cpp)

/// Counters behind the judger's health (logged every minute and at stop).
struct JudgerCounters {
  uint64_t batches_stored = 0;
  uint64_t batches_duplicate = 0;
  uint64_t parts_duplicate = 0;  // one service's records of a batch stored before (a replay after a move)
  uint64_t records = 0;
  uint64_t minutes_stored = 0;
  uint64_t store_errors = 0;
  uint64_t records_too_old = 0;  // refused at ingest: older than the store can amend
  uint64_t records_future = 0;   // refused at ingest: beyond the future window
  uint64_t names_refused = 0;        // DICT names past max_names, not interned
  uint64_t records_name_refused = 0; // records of those names, refused
  uint64_t series_over_limit = 0;    // records that would open a series past series_per_service
  // Minutes made final, by what decided it (docs/judger.md, "When a minute is final").
  uint64_t minutes_final_by_watermark = 0;
  uint64_t minutes_final_by_grace = 0;
  uint64_t minutes_final_by_wait_over = 0;  // a live sender's watermark still behind after watermark_wait_s
  uint64_t minutes_amended_after_evaluation = 0;  // stored again with late data after they were final
  uint64_t catch_ups_timed_out = 0;         // catch-up ended by catch_up_s, a sender not back or not caught up
};

/// The judger's ingest: accepts batches over TCP (docs/protocol.md), stores
/// each before acknowledging it, rolls seconds up to minutes and stores them
/// when due, and keeps its live entry in the registry. One io_context thread
/// runs all of that; queries of the store run on threads of their own, each
/// with a read-only connection, so no reader holds up an acknowledgement.
/// Not thread-safe.
class Judger {
 public:
  /// Opens the store, rebuilds unfinished minutes from it, binds the listen
  /// address and opens the registry. Throws std::runtime_error with one line.
  explicit Judger(JudgerConfig config);
  ~Judger();

  /// Serves until SIGTERM or SIGINT, then closes connections and returns 0.
  int run();

  /// The Monitor.Judger attrs it reports (its health table's).
  static std::vector<std::string> health_attrs();

  const JudgerCounters& counters() const noexcept { return counters_; }

 private:
  class Feed;  // a sender's session: dedup and store (judger.cpp)
  // Ingest, in the steps a batch takes: a peer's name to the store's (or
  // kRefusedName past max_names); records the judger takes (its time window,
  // known names, series_per_service); split per origin (sender, service) for
  // dedup; stored, rolled up and counted (false: a store error, no ACK).
  uint32_t intern(const std::string& peer, const wire::DictEntry& entry);
  std::vector<PendingRecord> admit(const std::string& peer, wire::Batch& batch,
                                   const std::unordered_map<uint32_t, uint32_t>& name_ids, int64_t now_s);
  std::vector<MinuteStore::OriginPart> split_by_origin(uint64_t sender_id, std::vector<PendingRecord> records);
  bool store_batch(const std::string& peer, const wire::Batch& batch, const std::vector<MinuteStore::OriginPart>& parts,
                   int64_t now_s);
  boost::asio::awaitable<void> tick_loop();
  // The query API's handler, for the one HTTP server: store queries on the
  // query threads, stopped when their client goes away, streamed if large.
  boost::asio::awaitable<net::HttpReply> handle_query(net::HttpExchange& exchange);
  // On a query thread: answers `target` with a reader of its own, stopped
  // past query_timeout_s or when `cancel` is set.
  QueryResponse run_store_query(const std::string& target, int64_t now_s, std::atomic<bool>& cancel);
  void stream_answer(const std::shared_ptr<QueryUnderWay>& query,
                     const std::function<bool(const QueryResponse::Emit&)>& stream, const std::string& target);
  void stop_queries();
  std::string health_json() const;
  void start_finishing(int64_t now_s);
  boost::asio::awaitable<void> finish_due_minutes(int64_t now_s);
  // Removes the pending rows of completed minutes, a few hundred at a time.
  void start_purging();
  boost::asio::awaitable<void> purge_applied();
  // Every second before the returned one is in (watermarks, grace; 0 while
  // catching up); counts and logs what decided it.
  int64_t complete_before(int64_t now_s);
  void register_self();
  static constexpr uint32_t kRefusedName = UINT32_MAX;  // a peer's name past max_names
  static constexpr int kQueryThreadNice = 10;
  void log_health();
  void report_health();
  static const health::HealthTable<Judger>& health_table();

  JudgerConfig config_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ip::tcp::acceptor http_acceptor_;
  std::unique_ptr<MinuteStore> store_;
  std::unique_ptr<WalCheckpointer> checkpointer_;  // the store's log, off the io thread
  std::unique_ptr<registry::Registry> registry_;
  std::unique_ptr<registry::LiveRegistration> registration_;  // after registry_: removes the entry first
  std::unique_ptr<Placer> placer_;
  std::unique_ptr<MinuteRollup> rollup_;  // after store_: it reads the store's names
  std::unique_ptr<QueryApi> query_api_;
  std::unique_ptr<ApiAuth> api_auth_;  // with query_tokens: who asks, and what they may see
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<AlarmEngine> alarms_;  // after notifier_ and registry_: stops first
  std::unique_ptr<Exporter> exporter_;   // none without targets
  std::shared_ptr<net::TlsContext> tls_;    // null: plain TCP
  std::shared_ptr<net::TlsContext> https_;  // the query API's; null: plain HTTP
  std::unique_ptr<net::BatchListener> listener_;
  JudgerCounters counters_;
  health::Metrics metrics_{"judger"}, registry_metrics_{"registry"};  // served as /metrics
  health::HealthReporter health_;
  health::HealthReporter registry_health_;  // Monitor.Registry, reported by the placement leader
  std::set<std::string> services_;  // every service a batch named, for the load in the registry
  // The load: records and CPU time at the last registry refresh.
  uint64_t load_records_ = 0;
  int64_t load_cpu_ns_ = 0;
  int64_t load_wall_ns_ = 0;
  bool finishing_ = false;  // a finish_due_minutes() run is storing minutes
  bool purge_due_ = true;   // completed minutes may have pending rows left (at the start: a crash's)
  bool purging_ = false;    // a purge_applied() run is removing them
  int64_t final_before_s_ = 0;  // every minute before it is final and stored
  int64_t catch_up_until_s_ = 0;  // while catching up, at most until then (catch_up_s after the start)
  std::unique_ptr<Feeders> feeders_;  // who sends to this judger, and how far each has sent
  LogThrottle wait_over_log_;         // minutes made final past a lagging watermark
  std::map<int64_t, uint64_t> minute_store_failures_;  // minute -> failed tries, while it fails
  LogThrottle window_log_;  // records refused for their time
  LogThrottle limit_log_;   // connections and names refused for a limit
  std::unique_ptr<SeriesLimiter> series_limiter_;
  std::set<std::string> over_limit_services_;  // warned about once each
  std::unique_ptr<net::HttpServer> query_http_;
  // Store queries: their threads, the read-only connections not in use, and
  // the cancel flags of those running (set all at stop).
  std::mutex queries_mutex_;
  std::vector<std::unique_ptr<MinuteReader>> idle_readers_;
  std::set<std::atomic<bool>*> running_queries_;
  bool queries_stopping_ = false;
  std::atomic<uint64_t> queries_served_{0}, queries_stopped_{0}, queries_cut_{0};
  std::atomic<uint64_t> queries_refused_{0};  // no valid token (401) or a service the user does not see (403)
  std::atomic<int64_t> queries_running_{0};
  std::unique_ptr<boost::asio::thread_pool> query_pool_;  // last: its threads stop before what they read goes
  bool stopping_ = false;
};

}  // namespace monitor::judger
