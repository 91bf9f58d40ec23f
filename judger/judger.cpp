#include "judger/judger.hpp"

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <span>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "common/hash.hpp"
#include "common/process_info.hpp"
#include "net/endpoint.hpp"
#include "net/spawn.hpp"
#include "query/judger_client.hpp"
#include "wire/dictionary.hpp"
#include "wire/messages.hpp"

namespace monitor::judger {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

constexpr auto kRegistryTtl = 10s;

// The origin a service's records of a batch are deduplicated under.
uint64_t origin_of(uint64_t sender_id, std::string_view service) {
  return mix64(sender_id, hash_bytes(service.data(), service.size(), 0x6f726967696e));
}
constexpr uint64_t kJudgerId = 0;  // judgers do not send batches yet

}  // namespace

// A store query under way on a query thread, and what the session that
// asked for it waits on (on the io thread).
struct QueryUnderWay {
  explicit QueryUnderWay(asio::io_context& io) : done(io, asio::steady_timer::time_point::max()) {}
  QueryResponse answer;            // written by the query thread, read after `finished`
  std::atomic<bool> cancel{false};  // set when the client goes away
  asio::steady_timer done;         // cancelled (on the io thread) when the query returns
  tcp::socket* socket = nullptr;   // the client's, whose wait is cancelled then too
  bool finished = false;           // io thread only
  bool streamed = false;           // the answer's body follows in `pieces`; set before `finished`

  // A streamed answer's pieces, from the query thread to the session, at
  // most kBuffered bytes of them: a client that reads slowly holds its query
  // thread, not the judger's memory.
  static constexpr size_t kBuffered = 4 * QueryResponse::kStreamPiece;
  std::mutex pieces_mutex;
  std::condition_variable pieces_taken;
  std::deque<std::string> pieces;  // under pieces_mutex, as are the next three
  size_t pieces_bytes = 0;
  bool stream_ended = false;
  bool stream_whole = false;       // every piece was made: the answer ends properly
};

namespace {

// Writes a streamed answer as HTTP chunks as its pieces come. A write that
// fails or times out (a client gone or not reading), or the session ending
// any other way, stops the query; an answer the query could not finish ends
// without its last chunk, so the client sees it unfinished, not short.
asio::awaitable<void> send_streamed(net::HttpConnection& connection, QueryUnderWay& query, unsigned version) {
  namespace http = boost::beast::http;
  struct StopsTheQuery {
    QueryUnderWay& query;
    ~StopsTheQuery() {
      query.cancel.store(true);
      query.pieces_taken.notify_all();
    }
  } stops{query};
  const auto status = static_cast<unsigned>(query.answer.status);
  const std::string head = fmt::format(
      "HTTP/1.{} {} {}\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
      version == 10 ? 0 : 1, status, std::string_view(http::obsolete_reason(static_cast<http::status>(status))),
      query.answer.content_type);
  if (!co_await connection.write(head, 10s)) co_return;
  std::string chunk;
  for (;;) {
    std::deque<std::string> taken;
    bool ended = false, whole = false;
    {
      std::lock_guard lock(query.pieces_mutex);
      taken.swap(query.pieces);
      query.pieces_bytes = 0;
      ended = query.stream_ended;
      whole = query.stream_whole;
    }
    query.pieces_taken.notify_all();
    for (const auto& piece : taken) {
      if (piece.empty()) continue;  // an empty chunk would end the body
      chunk.clear();
      fmt::format_to(std::back_inserter(chunk), "{:x}\r\n", piece.size());
      chunk += piece;
      chunk += "\r\n";
      if (!co_await connection.write(chunk, 10s)) co_return;
    }
    if (!taken.empty()) continue;
    if (ended && !whole) co_return;
    if (ended) break;
    co_await query.done.async_wait(asio::as_tuple(asio::use_awaitable));  // cancelled when a piece comes
  }
  co_await connection.write("0\r\n\r\n", 10s);
}

}  // namespace

Judger::Judger(JudgerConfig config)
    : config_(std::move(config)),
      acceptor_(io_),
      http_acceptor_(io_),
      health_("Monitor.Judger", config_.server_id, config_.self_metrics),
      registry_health_("Monitor.Registry", config_.server_id, config_.self_metrics) {
  config_.validate();
  tls_ = net::make_tls(net::tls_files(config_), wire::Role::kJudger);
  // Client certificates are asked for when there is a deployment CA: a
  // judger's is a credential (it reads the minutes of a service that moved).
  https_ = net::make_https_server(config_.https_cert, config_.https_key, config_.tls_ca);
  query::JudgerClient::set_token(config_.query_token);
  if (!config_.query_ca.empty()) {
    query::JudgerClient::set_https(net::make_https_client(config_.query_ca, config_.tls_cert, config_.tls_key));
  }
  health_.expose(&metrics_);
  registry_health_.expose(&registry_metrics_);
  std::error_code fs_ec;
  std::filesystem::create_directories(config_.data_dir, fs_ec);
  auto store = MinuteStore::open(std::filesystem::path(config_.data_dir) / "judger.db");
  if (!store) throw std::runtime_error(fmt::format("open store in {}: {}", config_.data_dir, store.error().message()));
  store_ = std::move(*store);
  if (auto manual = store_->stop_automatic_checkpoints(); !manual) {
    throw std::runtime_error(fmt::format("store in {}: {}", config_.data_dir, manual.error().message()));
  }
  checkpointer_ = std::make_unique<WalCheckpointer>(std::filesystem::path(config_.data_dir) / "judger.db", 1s);
  rollup_ = std::make_unique<MinuteRollup>(
      MinuteRollup::Options{config_.grace_s, config_.late_window_s, Retention{}.minute_s}, store_->names(),
      [this](int64_t minute) {
        auto cells = store_->reader().minute_cells(minute);
        if (!cells) {
          spdlog::error("reading stored minute {}: {}", minute, cells.error().message());
          return std::vector<MinuteCell>{};
        }
        return std::move(*cells);
      });
  series_limiter_ = std::make_unique<SeriesLimiter>(config_.series_per_service, store_->names());
  auto pending = store_->pending();
  if (!pending) throw std::runtime_error(fmt::format("read store: {}", pending.error().message()));
  const int64_t now_s = realtime_ns() / 1'000'000'000;
  for (const auto& record : *pending) rollup_->add(record, now_s);
  spdlog::info("store {}/judger.db: {} pending records rebuilt into {} open minutes", config_.data_dir,
               pending->size(), rollup_->open_minutes());
  // A store with a past (records or minutes of an earlier run): this judger
  // was down, and its senders kept what they could not send meanwhile.
  const auto stored_series = store_->reader().list_series();
  const bool resumed = !pending->empty() || !stored_series || !stored_series->empty();

  auto reg = registry::open_registry(config_.registry);
  if (!reg) throw std::runtime_error(fmt::format("open registry {}: {}", config_.registry, reg.error().message()));
  registry_ = std::move(*reg);
  if (config_.query_tokens) api_auth_ = std::make_unique<ApiAuth>(*registry_);

  net::listen_on(acceptor_, config_.listen, "batches");
  net::listen_on(http_acceptor_, config_.query_listen, "queries");
  net::HttpServer::Options http_options;
  http_options.name = "query";
  http_options.max_connections = config_.max_query_connections;
  http_options.max_per_address = config_.max_query_connections;
  http_options.read_timeout = 10s;  // a client that does not finish its request in time is dropped
  http_options.write_timeout = 10s;
  http_options.keep_alive = false;
  http_options.tls = https_;
  query_http_ = std::make_unique<net::HttpServer>(http_acceptor_, http_options,
                                                  [this](net::HttpExchange& exchange) { return handle_query(exchange); });
  net::BatchListener::Options receiving;
  receiving.own_id = kJudgerId;
  receiving.max_connections = config_.max_connections;
  receiving.idle_timeout = std::chrono::seconds(config_.idle_timeout_s);
  receiving.tls = tls_;
  receiving.peers = {wire::Role::kAgent, wire::Role::kClyde, wire::Role::kBonnie};
  listener_ = std::make_unique<net::BatchListener>(
      acceptor_, std::move(receiving),
      [this](net::BatchSession& session) { return std::make_unique<Feed>(*this, session); });
  notifier_ = std::make_unique<Notifier>(
      config_.data_dir, NotifierOptions{config_.smtp_url, config_.mail_from, config_.notify_tries,
                                        config_.notify_backoff_ms, config_.command_timeout_s,
                                        config_.command_max_running});
  query_api_ = std::make_unique<QueryApi>(
      [this] { return health_json(); },
      [this](const std::string& rule, int64_t from, int64_t to, size_t limit) {
        return notifier_->history(rule, from, to, limit);
      },
      [this] { return metrics_.text() + registry_metrics_.text(); });
  alarms_ = std::make_unique<AlarmEngine>(*registry_, config_.name, *notifier_, config_.dashboard_url);
  alarms_->load_rules();
  // The minutes the rules read, from the store: a restarted judger evaluates
  // windows and no-data as if it had never stopped.
  for (const auto& [service, attr, op, span] : alarms_->wanted_series()) {
    const int64_t to = (now_s / 60 + 1) * 60;
    auto points = store_->reader().minute_points(service, attr, op, to - (span + 1) * 60, to);
    if (points) alarms_->minute_stored(*points);
    else spdlog::warn("alarms: reading stored minutes of {} {}: {}", service, attr, points.error().message());
  }
  if (!config_.export_targets.empty()) {
    // A target away for the whole backlog receives the seconds too.
    if (config_.export_seconds) store_->keep_seconds_for_export(config_.export_backlog_minutes * 60 + 3600);
    exporter_ = std::make_unique<Exporter>(
        config_.data_dir, std::filesystem::path(config_.data_dir) / "judger.db",
        ExportOptions{config_.export_targets, config_.export_backlog_minutes, config_.export_seconds});
  }
  registration_ = std::make_unique<registry::LiveRegistration>(*registry_, "judger", "judgers", config_.name,
                                                               kRegistryTtl);
  if (config_.placement) placer_ = std::make_unique<Placer>(*registry_, config_.name, kRegistryTtl);
  query_pool_ = std::make_unique<asio::thread_pool>(static_cast<size_t>(config_.query_threads));
  feeders_ = std::make_unique<Feeders>(std::filesystem::path(config_.data_dir) / "feeders",
                                       Feeders::Options{config_.grace_s, config_.watermark_wait_s}, now_s);
  // Whom to wait for: the senders that fed this judger when it stopped (an
  // earlier version kept no list: then the whole bound).
  if (config_.catch_up_s > 0 && resumed && (feeders_->awaited() != 0 || !feeders_->knew_feeders())) {
    catch_up_until_s_ = now_s + config_.catch_up_s;
    spdlog::info("catch-up: no minute is final until the {} senders that fed this judger are back and caught up, "
                 "for at most {} s",
                 feeders_->knew_feeders() ? std::to_string(feeders_->awaited()) : std::string("(unknown)"),
                 config_.catch_up_s);
  }
  spdlog::info("judger {} listening on {} (batches{}) and {} ({} queries)", config_.name, config_.listen,
               tls_ ? ", TLS" : "", config_.query_listen, https_ ? "HTTPS" : "HTTP");
}

Judger::~Judger() = default;

void Judger::register_self() {
  // The bound addresses, so a configured port 0 is still found.
  auto bound = [](const tcp::acceptor& acceptor, const std::string& configured) {
    boost::system::error_code ec;
    const auto endpoint = acceptor.local_endpoint(ec);
    return ec ? configured : net::format_endpoint(endpoint);
  };
  // The load, over the time since the last refresh (what monitorctl shows per judger).
  const int64_t wall_ns = realtime_ns(), cpu_ns = process_cpu_ns();
  const double seconds = load_wall_ns_ == 0 ? 0 : static_cast<double>(wall_ns - load_wall_ns_) / 1e9;
  const double reports_per_s = seconds > 0 ? static_cast<double>(counters_.records - load_records_) / seconds : 0;
  const double cpu_percent = seconds > 0 ? static_cast<double>(cpu_ns - load_cpu_ns_) / 1e7 / seconds : 0;
  load_wall_ns_ = wall_ns;
  load_cpu_ns_ = cpu_ns;
  load_records_ = counters_.records;
  const RssInfo rss = read_rss();
  boost::json::object load{{"cpu_percent", std::round(cpu_percent * 10) / 10},
                           {"rss_bytes", rss.anon_bytes + rss.file_bytes},
                           {"reports_per_s", std::round(reports_per_s)},
                           {"services", services_.size()},
                           {"series", series_limiter_->open_series()},
                           {"open_minutes", rollup_->open_minutes()}};
  // "places": whether this judger may lead placement (docs/registry.md).
  boost::json::object value{{"address", bound(acceptor_, config_.listen)},
                            {"query", bound(http_acceptor_, config_.query_listen)},
                            {"places", config_.placement},
                            {"load", load}};
  registration_->update(std::move(value));
}

void Judger::start_finishing(int64_t now_s) {
  // One run at a time: parts of two runs for one minute must not interleave.
  if (finishing_) return;
  finishing_ = true;
  net::spawn(io_, finish_due_minutes(now_s), "storing finished minutes");
}

asio::awaitable<void> Judger::finish_due_minutes(int64_t now_s) {
  const int64_t complete = complete_before(now_s);
  // While catching up, minutes are stored as they come (a replay amends them
  // exactly); only judging them waits.
  const int64_t store_before = complete != 0 ? complete : feeders_->complete_before(now_s, false).complete_before;
  const int64_t pending_through = store_->last_pending_id();
  // Stored in parts of a few thousand rows, yielding to the io thread between
  // them: one transaction for a minute of 100 000 series held batches and
  // heartbeats for seconds.
  constexpr size_t kPart = 4096;
  for (const FinishedMinute& minute : rollup_->due(now_s, store_before)) {
    auto stored = [&]() -> asio::awaitable<boost::system::result<void>> {
      const std::span<const MinutePoint> points(minute.points);
      for (size_t i = 0; i < points.size(); i += kPart) {
        if (auto r = store_->put_minute_points(points.subspan(i, std::min(kPart, points.size() - i))); !r) co_return r;
        co_await asio::post(io_, asio::use_awaitable);
      }
      // Archives in ranges of series ids, each a short transaction.
      auto series_end = store_->series_id_end();
      if (!series_end) co_return series_end.error();
      constexpr int64_t kSeriesPart = 16384;
      for (int64_t from = 0; from < *series_end; from += kSeriesPart) {
        if (auto r = store_->put_minute_archives(minute.minute, from, from + kSeriesPart); !r) co_return r;
        co_await asio::post(io_, asio::use_awaitable);
      }
      const std::span<const MinuteCell> cells(minute.cells);
      for (size_t i = 0; i == 0 || i < cells.size(); i += kPart) {
        const auto part = cells.subspan(i, std::min(kPart, cells.size() - i));
        if (auto r = store_->stage_minute_cells(minute.minute, part, i == 0); !r) co_return r;
        co_await asio::post(io_, asio::use_awaitable);
      }
      if (auto r = store_->put_service_reports(minute.minute, cells); !r) co_return r;
      co_return store_->complete_minute(minute.minute, pending_through);
    };
    if (auto r = co_await stored(); !r) {
      // The minute's records stay pending in the store (a restart rolls them
      // up again) and the roll-up keeps it due: stored at a later tick.
      rollup_->store_failed(minute.minute);
      ++counters_.store_errors;
      uint64_t& tries = minute_store_failures_[minute.minute];
      if (++tries == 1 || tries % 60 == 0) {
        spdlog::error("storing minute {}: {}; it stays due and is tried again every second ({} tries so far)",
                      minute.minute, r.error().message(), tries);
      }
      continue;
    }
    if (auto failed = minute_store_failures_.find(minute.minute); failed != minute_store_failures_.end()) {
      spdlog::info("stored minute {} after {} failed tries", minute.minute, failed->second);
      minute_store_failures_.erase(failed);
    }
    rollup_->stored(minute.minute);
    purge_due_ = true;
    // Final (and judged) before, with less: counted, and each rule reading a changed series says so.
    if (minute.amended && minute.minute < final_before_s_) ++counters_.minutes_amended_after_evaluation;
    if (exporter_) exporter_->minute_queued();
    alarms_->minute_stored(minute.points);
    ++counters_.minutes_stored;
    spdlog::debug("stored minute {} ({} points{})", minute.minute, minute.points.size(),
                  minute.amended ? ", amended" : "");
  }
  // Minutes before this are final; one that could not be stored holds evaluation back.
  int64_t final_before = std::max(final_before_s_, complete / 60 * 60);
  if (!minute_store_failures_.empty()) final_before = std::min(final_before, minute_store_failures_.begin()->first);
  final_before_s_ = final_before;
  alarms_->final_before(final_before);
  finishing_ = false;
}

void Judger::start_purging() {
  if (purging_ || !purge_due_) return;
  purging_ = true;
  purge_due_ = false;
  net::spawn(io_, purge_applied(), "removing applied pending records");
}

asio::awaitable<void> Judger::purge_applied() {
  // A few milliseconds of the io thread per part, even while a long query
  // keeps the store's log from being reset.
  constexpr int64_t kRows = 256;
  while (!stopping_) {
    const auto more = store_->purge_applied(kRows);
    if (!more) {
      // Left in place, they are still marked applied: tried again at the next tick.
      ++counters_.store_errors;
      spdlog::error("removing pending records of completed minutes: {}", more.error().message());
      purge_due_ = true;
      break;
    }
    if (!*more) break;
    co_await asio::post(io_, asio::use_awaitable);
  }
  purging_ = false;
}

int64_t Judger::complete_before(int64_t now_s) {
  feeders_->save(now_s);
  const bool catching_up = catch_up_until_s_ != 0;
  Feeders::Verdict verdict = feeders_->complete_before(now_s, catching_up);
  if (catching_up) {
    // Just after a start, the minutes that ended while this judger was down
    // hold only what it had stored before: senders are reconnecting and
    // replaying the rest. Judged now, they would page on part of their data.
    if (verdict.bound != Feeders::Bound::kCatchingUp) {
      spdlog::info("catch-up over: every sender that fed this judger is back and caught up to second {}",
                   verdict.complete_before);
      catch_up_until_s_ = 0;
    } else if (now_s >= catch_up_until_s_) {
      ++counters_.catch_ups_timed_out;
      spdlog::warn("catch-up over after catch_up_s ({} s): {} senders that fed this judger are not back, {} of {} "
                   "connected say how far they have sent; minutes are final by the grace for them",
                   config_.catch_up_s, feeders_->awaited(), feeders_->marked_live(now_s), feeders_->live());
      catch_up_until_s_ = 0;
      verdict = feeders_->complete_before(now_s, false);
    } else {
      return 0;
    }
  }
  const int64_t minutes = final_before_s_ == 0 ? 0 : std::max<int64_t>(0, verdict.complete_before / 60 * 60 - final_before_s_) / 60;
  switch (verdict.bound) {
    case Feeders::Bound::kWatermarks: counters_.minutes_final_by_watermark += minutes; break;
    case Feeders::Bound::kGrace: counters_.minutes_final_by_grace += minutes; break;
    case Feeders::Bound::kWaitOver: {
      counters_.minutes_final_by_wait_over += minutes;
      uint64_t suppressed = 0;
      if (minutes != 0 && wait_over_log_.allow(realtime_ns(), suppressed)) {
        spdlog::warn("the minutes before {} are final though sender {} has sent only up to an earlier second: its "
                     "watermark lags past watermark_wait_s ({} s); what it sends later amends them",
                     verdict.complete_before / 60 * 60, verdict.slowest_sender, config_.watermark_wait_s);
      }
      break;
    }
    case Feeders::Bound::kCatchingUp: break;
  }
  return verdict.complete_before;
}

namespace {

// Summed over targets, the lag and backlog of the one furthest behind; zeros
// without targets, so every registered attr is always reported.
ExportFigures export_totals(const Exporter* exporter) {
  ExportFigures all;
  for (const ExportFigures& f : exporter != nullptr ? exporter->figures() : std::vector<ExportFigures>{}) {
    all.minutes += f.minutes;
    all.points += f.points;
    all.failures += f.failures;
    all.dropped += f.dropped;
    all.seconds_dropped += f.seconds_dropped;
    all.refused += f.refused;
    all.backlog = std::max(all.backlog, f.backlog);
    all.lag_ms = std::max(all.lag_ms, f.lag_ms);
  }
  return all;
}

}  // namespace

const health::HealthTable<Judger>& Judger::health_table() {
  using J = Judger;
  static const health::HealthTable<Judger> table = [] {
    health::HealthTable<Judger> t;
    t.counter("Batches.Stored", "batches_stored", "batches stored", [](const J& j) { return j.counters_.batches_stored; })
        .counter("Batches.Duplicate", "batches_duplicate", "duplicates",
                 [](const J& j) { return j.counters_.batches_duplicate; })
        .counter("Parts.Duplicate", "parts_duplicate", "", [](const J& j) { return j.counters_.parts_duplicate; })
        .counter("Reports.Stored", "records", "records", [](const J& j) { return j.counters_.records; })
        .counter("Reports.TooLate", "too_late", "too late",
                 [](const J& j) { return j.rollup_->too_late() + j.counters_.records_too_old; })
        .counter("Reports.Future", "future", "", [](const J& j) { return j.counters_.records_future; })
        .counter("Frames.Bad", "bad_frames", "bad frames", [](const J& j) { return j.listener_->counters().bad_frames; })
        .counter("Peers.Refused", "peers_refused", "",
                 [](const J& j) { return j.listener_->counters().tls_failures + j.listener_->counters().identity_refused; })
        .counter("Connections.Refused", "connections_refused", "",
                 [](const J& j) {
                   return j.query_http_->counters().connections_refused + j.listener_->counters().connections_refused;
                 })
        .counter("Names.Refused", "names_refused", "", [](const J& j) { return j.counters_.names_refused; })
        .counter("Reports.NameRefused", "records_name_refused", "",
                 [](const J& j) { return j.counters_.records_name_refused; })
        .counter("Reports.OverLimit", "series_over_limit", "", [](const J& j) { return j.counters_.series_over_limit; })
        .counter("Minutes.Stored", "minutes_stored", "minutes stored", [](const J& j) { return j.counters_.minutes_stored; })
        .counter("Minutes.FinalByWatermark", "minutes_final_by_watermark", "",
                 [](const J& j) { return j.counters_.minutes_final_by_watermark; })
        .counter("Minutes.FinalByGrace", "minutes_final_by_grace", "",
                 [](const J& j) { return j.counters_.minutes_final_by_grace; })
        .counter("Minutes.FinalByWaitOver", "minutes_final_by_wait_over", "",
                 [](const J& j) { return j.counters_.minutes_final_by_wait_over; })
        .counter("CatchUp.TimedOut", "catch_ups_timed_out", "", [](const J& j) { return j.counters_.catch_ups_timed_out; })
        .counter("Minutes.AmendedAfterEvaluation", "minutes_amended_after_evaluation", "",
                 [](const J& j) { return j.counters_.minutes_amended_after_evaluation; })
        .counter("Store.Errors", "store_errors", "store errors", [](const J& j) { return j.counters_.store_errors; })
        .counter("Queries.Served", "queries_served", "",
                 [](const J& j) { return j.queries_served_.load(std::memory_order_relaxed); })
        .counter("Queries.Stopped", "queries_stopped", "",
                 [](const J& j) { return j.queries_stopped_.load(std::memory_order_relaxed); })
        .counter("Queries.Refused", "queries_refused", "",
                 [](const J& j) { return j.queries_refused_.load(std::memory_order_relaxed); })
        .counter("Queries.Cut", "queries_cut", "", [](const J& j) { return j.queries_cut_.load(std::memory_order_relaxed); })
        .gauge("Minutes.Open", "open_minutes", "", [](const J& j) { return static_cast<int64_t>(j.rollup_->open_minutes()); })
        .gauge("Connections.Live", "", "",
               [](const J& j) { return static_cast<int64_t>(j.listener_->sessions().size()); })
        .gauge("Services.Owned", "", "", [](const J& j) { return static_cast<int64_t>(j.services_.size()); })
        .resident_memory()
        .gauge("Alarms.Rules", "", "", [](const J& j) { return static_cast<int64_t>(j.alarms_->figures().rules); })
        .gauge("Alarms.Firing", "", "", [](const J& j) { return static_cast<int64_t>(j.alarms_->figures().firing); })
        .gauge("Alarms.Pending", "", "", [](const J& j) { return static_cast<int64_t>(j.alarms_->figures().pending); })
        .counter("Alarms.StateWriteFailures", "", "", [](const J& j) { return j.alarms_->figures().state_write_failures; })
        .counter("Alarms.Corrected", "alarms_corrected", "", [](const J& j) { return j.alarms_->figures().corrected; })
        .gauge("Rules.Bad", "", "", [](const J& j) { return static_cast<int64_t>(j.alarms_->figures().bad_rules); })
        .counter("Notifications.Sent", "", "", [](const J& j) { return j.notifier_->counters().sent; })
        .counter("Notifications.Retried", "", "", [](const J& j) { return j.notifier_->counters().retried; })
        .counter("Notifications.Failed", "", "", [](const J& j) { return j.notifier_->counters().failed; })
        .gauge("Notifications.Pending", "", "", [](const J& j) { return static_cast<int64_t>(j.notifier_->pending()); })
        .gauge("Registry.Reachable", "", "", [](const J& j) { return j.registration_->reachable() ? 1 : 0; })
        // Not ".Minutes": promtool reads minutes as a unit.
        .counter("Export.Delivered", "", "", [](const J& j) { return export_totals(j.exporter_.get()).minutes; })
        .counter("Export.Points", "", "", [](const J& j) { return export_totals(j.exporter_.get()).points; })
        .counter("Export.Failures", "", "", [](const J& j) { return export_totals(j.exporter_.get()).failures; })
        .counter("Export.Dropped", "", "", [](const J& j) { return export_totals(j.exporter_.get()).dropped; })
        .counter("Export.SecondsDropped", "", "",
                 [](const J& j) { return export_totals(j.exporter_.get()).seconds_dropped; })
        .counter("Export.Refused", "", "", [](const J& j) { return export_totals(j.exporter_.get()).refused; })
        .gauge("Export.Backlog", "", "", [](const J& j) { return export_totals(j.exporter_.get()).backlog; })
        .gauge("Export.LagMillis", "", "", [](const J& j) { return export_totals(j.exporter_.get()).lag_ms; })
        .counter("Registry.Failures", "", "", [](const J& j) { return j.registration_->failures(); });
    return t;
  }();
  return table;
}

std::vector<std::string> Judger::health_attrs() { return health_table().attrs(); }

void Judger::report_health() {
  health_table().report(*this, health_);
  if (placer_) {
    // One judger speaks for the registry, so the system's view of its parts is counted once.
    const Placer::Figures f = placer_->figures();
    if (f.leader) {
      registry_health_.gauge("Parts.Live", f.parts_live);
      registry_health_.gauge("Parts.Gone", f.parts_gone);
      registry_health_.gauge("Judgers.Live", f.judgers_live);
      registry_health_.gauge("Judgers.Gone", f.judgers_gone);
      registry_health_.gauge("Proxies.Gone", f.proxies_gone);
      registry_health_.gauge("Agents.Gone", f.agents_gone);
      registry_health_.gauge("Services.Unassigned", f.services_unassigned);
      registry_health_.counter("Placement.Moves", f.moves);
    }
  }
}

void Judger::log_health() {
  spdlog::info("health: {} connections, {}, {} own health reports refused by the SDK", listener_->counters().connections,
               health_table().log_line(*this), health_.failures());
}

asio::awaitable<void> Judger::tick_loop() {
  asio::steady_timer timer(io_);
  int ticks = 0;
  while (!stopping_) {
    const int64_t now_s = realtime_ns() / 1'000'000'000;
    start_finishing(now_s);
    start_purging();
    // Minutes no longer open in the roll-up need no series count.
    series_limiter_->forget_before(now_s - 60 - config_.grace_s - config_.late_window_s - 60);
    // Each step survives its own failure: a tick loop that died would stop
    // finishing minutes and registering without a word.
    if (ticks % 3 == 0) net::guarded("registering", [&] { register_self(); });
    if (ticks % 5 == 0) net::guarded("reporting health", [&] { report_health(); });
    if (ticks % 60 == 0) {
      net::guarded("applying retention", [&] {
        if (auto removed = store_->apply_retention(now_s); !removed) {
          spdlog::warn("retention: {}", removed.error().message());
        }
      });
      net::guarded("logging health", [&] { log_health(); });
    }
    ++ticks;
    timer.expires_after(1s);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

/// One sender's session: dedups and stores its batches, acknowledging each
/// once it is stored; the names it defines map to the store's.
class Judger::Feed final : public net::SessionPolicy {
 public:
  Feed(Judger& judger, net::BatchSession& session) : judger_(judger), session_(session) {}

  wire::HelloAck on_hello(const wire::Hello& hello) override {
    judger_.feeders_->connected(&session_, hello.sender_id, hello.sender_name, realtime_ns() / 1'000'000'000);
    // An agent sends its own batches over one ordered connection, so all up
    // to its highest stored sequence may be skipped. A proxy relays batches
    // of many senders that may also arrive over other paths: it must send
    // everything it holds.
    const uint64_t skip = hello.role == wire::Role::kAgent ? judger_.store_->last_sequence(hello.sender_id) : 0;
    return wire::HelloAck{kJudgerId, wire::Role::kJudger, judger_.config_.name, skip};
  }

  void on_names(const std::vector<wire::DictEntry>& entries) override {
    for (const auto& entry : entries) name_ids_[entry.id] = judger_.intern(session_.peer(), entry);
  }

  void on_batch(wire::Batch batch) override {
    const int64_t now_s = realtime_ns() / 1'000'000'000;
    std::vector<MinuteStore::OriginPart> parts =
        judger_.split_by_origin(batch.sender_id, judger_.admit(session_.peer(), batch, name_ids_, now_s));
    // Stored before acknowledged: an ACK means the batch survives a kill -9.
    if (!judger_.store_batch(session_.peer(), batch, parts, now_s)) {
      session_.close("store error");  // no ACK: the sender replays it
      return;
    }
    session_.ack(batch.sender_id, batch.sequence);
  }

  void on_watermark(int64_t complete_before) override {
    // The batches ahead of it on this connection are in the roll-up already.
    const int64_t now_s = realtime_ns() / 1'000'000'000;
    // A minute may be complete now: judged at once, not at the next tick.
    if (judger_.feeders_->marked(&session_, complete_before, now_s)) judger_.start_finishing(now_s);
  }

  void on_closed(std::string_view) override { judger_.feeders_->disconnected(&session_, realtime_ns() / 1'000'000'000); }

 private:
  Judger& judger_;
  net::BatchSession& session_;
  std::unordered_map<uint32_t, uint32_t> name_ids_;  // the peer's name id -> the store's
};

uint32_t Judger::intern(const std::string& peer, const wire::DictEntry& entry) {
  NameTable& names = store_->names();
  if (names.size() >= config_.max_names && !names.contains(entry.service, entry.attr)) {
    // Records naming it are refused: a peer cannot grow the table without bound.
    ++counters_.names_refused;
    uint64_t suppressed = 0;
    if (limit_log_.allow(realtime_ns(), suppressed)) {
      spdlog::warn("{}: refused name {} {}: the judger holds max_names ({}) names already; records naming it are "
                   "refused ({} names refused so far)",
                   peer, entry.service, entry.attr, config_.max_names, counters_.names_refused);
    }
    return kRefusedName;
  }
  services_.insert(entry.service);
  return names.intern(entry.service, entry.attr);
}

std::vector<PendingRecord> Judger::admit(const std::string& peer, wire::Batch& batch,
                                         const std::unordered_map<uint32_t, uint32_t>& name_ids, int64_t now_s) {
  std::vector<PendingRecord> records;
  records.reserve(batch.records.size());
  // Seconds the store could not amend any more, or far ahead of this judger's
  // clock (a sender's clock gone wrong), are refused before they are stored:
  // kept, they would hold memory and pending rows forever.
  const int64_t oldest = now_s - Retention{}.minute_s;
  const int64_t newest = now_s + config_.future_window_s;
  for (auto& record : batch.records) {
    if (record.second < oldest || record.second > newest) {
      ++(record.second < oldest ? counters_.records_too_old : counters_.records_future);
      uint64_t suppressed = 0;
      if (window_log_.allow(realtime_ns(), suppressed)) {
        spdlog::warn("{}: refused a record of second {} from sender {}: outside [{}, {}] ({} too old, {} ahead so far)",
                     peer, record.second, batch.sender_id, oldest, newest, counters_.records_too_old,
                     counters_.records_future);
      }
      continue;
    }
    const auto known = name_ids.find(record.name_id);  // defined: decode_batch() checked
    const uint32_t name = known == name_ids.end() ? kRefusedName : known->second;
    if (name == kRefusedName) {
      ++counters_.records_name_refused;
      continue;
    }
    if (!series_limiter_->admit(name, record.server_id, minute_of(record.second))) {
      ++counters_.series_over_limit;
      const std::string& service = store_->names().service(name);
      if (over_limit_services_.insert(service).second) {
        spdlog::warn("{}: service {} has more series in one minute than series_per_service ({}) allows: records of "
                     "new series are refused and counted as Reports.OverLimit (told once per service)",
                     peer, service, config_.series_per_service);
      }
      continue;
    }
    records.push_back(PendingRecord{name, std::move(record)});
  }
  return records;
}

std::vector<MinuteStore::OriginPart> Judger::split_by_origin(uint64_t sender_id, std::vector<PendingRecord> records) {
  // Deduplicated per (sender, service): a batch split across judgers before a
  // service moved, replayed whole after, stores exactly the services this
  // judger has not stored for that origin. The part with no records keeps the
  // sender's own sequences (the HELLO_ACK's skip).
  std::vector<MinuteStore::OriginPart> parts{{sender_id, {}}};
  std::unordered_map<uint32_t, size_t> part_of_name;
  for (auto& record : records) {
    auto [at, fresh] = part_of_name.try_emplace(record.name, 0);
    if (fresh) {
      const uint64_t origin = origin_of(sender_id, store_->names().service(record.name));
      const auto same = std::find_if(parts.begin(), parts.end(), [&](const auto& p) { return p.origin == origin; });
      at->second = static_cast<size_t>(same - parts.begin());
      if (same == parts.end()) parts.push_back({origin, {}});
    }
    parts[at->second].records.push_back(std::move(record));
  }
  return parts;
}

bool Judger::store_batch(const std::string& peer, const wire::Batch& batch,
                         const std::vector<MinuteStore::OriginPart>& parts, int64_t now_s) {
  const auto stored = store_->append_parts(batch.sequence, parts, now_s);
  if (!stored) {
    ++counters_.store_errors;
    spdlog::error("{}: storing batch {} of sender {}: {}", peer, batch.sequence, batch.sender_id,
                  stored.error().message());
    return false;
  }
  size_t stored_records = 0, duplicate_parts = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!(*stored)[i]) {
      duplicate_parts += parts[i].records.empty() ? 0 : 1;
      continue;
    }
    stored_records += parts[i].records.size();
    for (const auto& record : parts[i].records) rollup_->add(record, now_s);
  }
  if (std::find(stored->begin(), stored->end(), true) != stored->end()) {
    ++counters_.batches_stored;
    counters_.records += stored_records;
  } else {
    ++counters_.batches_duplicate;
  }
  counters_.parts_duplicate += duplicate_parts;
  return true;
}

std::string Judger::health_json() const {
  boost::json::object health{{"name", config_.name},
                             {"connections", listener_->counters().connections},
                             {"queries_running", queries_running_.load(std::memory_order_relaxed)},
                             // Every minute before it is final and stored here (a service's
                             // new owner waits for it to judge a minute the move split).
                             {"final_before", final_before_s_},
                             {"catching_up", catch_up_until_s_ != 0},
                             {"senders_live", feeders_->live()},
                             {"senders_marked", feeders_->marked_live(realtime_ns() / 1'000'000'000)}};
  health_table().add_json(*this, health);
  const AlarmEngine::Figures alarms = alarms_->figures();
  health["alarm_series_amended"] = alarms.amended_after_evaluation;
  health["split_minutes"] = alarms.split_minutes;
  health["split_minutes_partial"] = alarms.split_minutes_partial;
  if (exporter_) {
    boost::json::array targets;
    for (const ExportFigures& f : exporter_->figures()) {
      targets.push_back({{"target", f.target},
                         {"minutes", f.minutes},
                         {"points", f.points},
                         {"failures", f.failures},
                         {"dropped", f.dropped},
                         {"seconds_dropped", f.seconds_dropped},
                         {"refused", f.refused},
                         {"backlog", f.backlog},
                         {"lag_ms", f.lag_ms},
                         {"last_delivery_ms", f.last_delivery_ms}});
    }
    health["export"] = std::move(targets);
  }
  return boost::json::serialize(health);
}

asio::awaitable<net::HttpReply> Judger::handle_query(net::HttpExchange& exchange) {
  namespace http = boost::beast::http;
  auto& request = exchange.request;
  auto& connection = exchange.connection;
  QueryResponse answer;
  const std::string target(request.target());
  const int64_t now_s = realtime_ns() / 1'000'000'000;
  std::optional<registry::UserAccess> access;
  if (api_auth_ && exchange.peer_certificate && exchange.peer_certificate->role == wire::Role::kJudger) {
    access = ApiAuth::everything(exchange.peer_certificate->text());  // verified against the deployment's CA
  } else if (api_auth_) {
    auto verdict = api_auth_->check(request[http::field::authorization], realtime_ns());
    std::string refusal = verdict.error;
    if (verdict.status == 200) {
      access = std::move(verdict.access);
      if (auto why = ApiAuth::refusal(target, *access)) {
        verdict.status = 403;
        refusal = std::move(*why);
      }
    }
    if (verdict.status != 200) {
      queries_refused_.fetch_add(1, std::memory_order_relaxed);
      co_return net::HttpReply{verdict.status, "application/json",
                               boost::json::serialize(boost::json::object{{"error", refusal}}), {}, false};
    }
  }
  if (request.method() != http::verb::get) {
    answer = {405, R"({"error":"only GET"})"};
  } else if (QueryApi::reads_store(target)) {
    // On a query thread; meanwhile this one ingests. A client that closes
    // its end stops its query: nobody would read the answer.
    auto query = std::make_shared<QueryUnderWay>(io_);
    query->socket = &connection.socket();
    asio::post(*query_pool_, [this, query, target, now_s] {
      query->answer = run_store_query(target, now_s, query->cancel);
      auto body = std::move(query->answer.stream);
      query->streamed = static_cast<bool>(body);
      asio::post(io_, [query] {
        query->finished = true;
        boost::system::error_code ignored;
        query->socket->cancel(ignored);
        query->done.cancel();
      });
      if (body) stream_answer(query, body, target);
    });
    bool watching = true, gone = false;
    while (!query->finished) {
      if (!watching) {
        co_await query->done.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      auto [wait_ec] = co_await connection.socket().async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
      if (query->finished) break;
      watching = false;  // whatever happened, one look is enough
      if (wait_ec) continue;
      char byte = 0;
      const ssize_t n = ::recv(connection.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        watching = true;  // woken for nothing
      } else if (n <= 0) {
        gone = true;
        query->cancel.store(true);
      }
    }
    if (gone) co_return net::HttpReply{0, {}, {}, {}, true};
    if (query->streamed) {
      co_await send_streamed(connection, *query, request.version());
      co_return net::HttpReply{0, {}, {}, {}, true};
    }
    answer = std::move(query->answer);
    // Lists of every service (/api/services, /api/reports) hold only what the user sees.
    if (access && answer.status == 200 && target.find("service=") == std::string::npos) {
      answer.body = ApiAuth::filtered(answer.body, *access);
    }
  } else {
    answer = query_api_->handle(target, now_s, store_->reader());
  }
  co_return net::HttpReply{static_cast<unsigned>(answer.status), answer.content_type, std::move(answer.body), {}, false};
}

QueryResponse Judger::run_store_query(const std::string& target, int64_t now_s, std::atomic<bool>& cancel) {
  // Readers yield the CPU to the data path: on two cores, two query threads
  // reading a day of 1 000 servers took the io thread's share to a third, and
  // storing a minute paused ACKs 80-300 ms. Niced by 10, a query thread weighs
  // a tenth of the io thread when both want a core, and has every idle one.
  static thread_local const bool niced = [] {
    return ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kQueryThreadNice) == 0;
  }();
  (void)niced;
  std::unique_ptr<MinuteReader> reader;
  {
    std::lock_guard lock(queries_mutex_);
    if (queries_stopping_) return {503, R"({"error":"the judger is stopping"})"};
    running_queries_.insert(&cancel);
    queries_running_.fetch_add(1, std::memory_order_relaxed);
    if (!idle_readers_.empty()) {
      reader = std::move(idle_readers_.back());
      idle_readers_.pop_back();
    }
  }
  QueryResponse answer;
  if (!reader) {  // at most one per query thread
    auto opened = MinuteReader::open_read_only(std::filesystem::path(config_.data_dir) / "judger.db", Retention{});
    if (opened) reader = std::move(*opened);
    else answer = {500, boost::json::serialize(boost::json::object{{"error", "opening the store to read: " + opened.error().message()}})};
  }
  if (reader) {
    reader->stop_after(std::chrono::steady_clock::now() + std::chrono::seconds(config_.query_timeout_s), &cancel);
    try {
      answer = query_api_->handle(target, now_s, *reader);
    } catch (const std::exception& e) {  // out of memory building an answer
      answer = {500, boost::json::serialize(boost::json::object{{"error", e.what()}})};
    }
    reader->clear_stop();
  }
  (answer.status == 503 ? queries_stopped_ : queries_served_).fetch_add(1, std::memory_order_relaxed);
  if (answer.status == 503) spdlog::info("query stopped ({}): {}", cancel.load() ? "its client went away or the judger stops" : "past query_timeout_s", target);
  std::lock_guard lock(queries_mutex_);
  if (!answer.stream) {  // else it runs on, and counts as running, until its stream ends
    running_queries_.erase(&cancel);
    queries_running_.fetch_sub(1, std::memory_order_relaxed);
  }
  if (reader) idle_readers_.push_back(std::move(reader));
  return answer;
}

// On the query thread, after run_store_query (which left the query
// registered as running): makes the answer's pieces for the session to send,
// as long as its client reads and, when it does not, for query_timeout_s.
void Judger::stream_answer(const std::shared_ptr<QueryUnderWay>& shared, const std::function<bool(const QueryResponse::Emit&)>& stream,
                           const std::string& target) {
  QueryUnderWay& query = *shared;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config_.query_timeout_s);
  bool past_deadline = false;
  const auto emit = [&](std::string&& piece) {
    std::unique_lock lock(query.pieces_mutex);
    while (query.pieces_bytes >= QueryUnderWay::kBuffered && !query.cancel.load()) {
      query.pieces_taken.wait_for(lock, 100ms);
      past_deadline = std::chrono::steady_clock::now() >= deadline;
      if (past_deadline) return false;
    }
    if (query.cancel.load()) return false;
    query.pieces_bytes += piece.size();
    query.pieces.push_back(std::move(piece));
    lock.unlock();
    asio::post(io_, [shared] { shared->done.cancel(); });
    return true;
  };
  bool whole = false;
  try {
    whole = stream(emit);
  } catch (const std::exception& e) {  // out of memory making a piece
    spdlog::warn("answer to {} cut: {}", target, e.what());
  }
  if (!whole) {
    ++queries_cut_;
    spdlog::info("answer to {} cut after its headers: {}", target,
                 past_deadline ? "past query_timeout_s" : "its client went away or stopped reading, or the judger stops");
  }
  {
    std::lock_guard lock(query.pieces_mutex);
    query.stream_ended = true;
    query.stream_whole = whole;
  }
  asio::post(io_, [shared] { shared->done.cancel(); });
  std::lock_guard lock(queries_mutex_);
  running_queries_.erase(&query.cancel);
  queries_running_.fetch_sub(1, std::memory_order_relaxed);
}

void Judger::stop_queries() {
  {
    std::lock_guard lock(queries_mutex_);
    queries_stopping_ = true;
    // The flags are the sessions'; their queries hold them until they return.
    for (auto* cancel : running_queries_) cancel->store(true);
  }
  query_pool_->join();
}

int Judger::run() {
  asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code&, int sig) {
    spdlog::info("signal {}: stopping", sig);
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    query_http_->stop();
    http_acceptor_.close(ignored);
    listener_->stop();
    io_.stop();
  });
  net::reload_on_sighup(io_, {tls_, https_});
  listener_->start();
  query_http_->start();
  net::spawn(io_, tick_loop(), "the tick loop");
  io_.run();
  stop_queries();
  // Unfinished minutes stay pending in the store and are rebuilt at the next start.
  placer_.reset();
  registration_.reset();  // the entry goes at once: automatic placement moves our services now
  log_health();
  return 0;
}

}  // namespace monitor::judger
