// The judger's HTTP query API: series, cells, points, reports, history, health (docs/judger.md).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "judger/minute_reader.hpp"

namespace monitor::judger {

/// An HTTP answer: status and a JSON body, or, for an answer that may be
/// large, `stream`, which writes the body in pieces of about kStreamPiece
/// bytes through its argument and stops early when that returns false (the
/// client went away, the query was stopped); it returns whether it wrote the
/// whole body. The status and headers go before the first piece, so errors
/// are found before `stream` is set.
struct QueryResponse {
  using Emit = std::function<bool(std::string&& piece)>;
  static constexpr size_t kStreamPiece = 256 * 1024;

  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::function<bool(const Emit&)> stream = {};

  /// The whole body, for callers that want it in one string (tests, tools).
  std::string whole_body() const;
};

/// The judger's query API, independent of HTTP so it can be tested directly:
///   GET /api/series?service=S&attr=A&op=SUM|MAX|...|HIST_P99&server=N|total&from=T&to=T&step=S
///   GET /api/points?service=S&attr=A&op=O&from=T&to=T   (every server's and the total's finished minutes)
///   GET /api/services
///   GET /api/reports?from=T&to=T   (reports per service in the finished minutes of the range; default the last day)
///   GET /api/health
///   GET /metrics   (the judger's health as Prometheus text)
///   GET /api/alarms/history?rule=R&from=T&to=T&limit=N   (the judger's alarm history, newest first)
/// Times are Unix seconds; `from` defaults to an hour before `to`, `to` to
/// now, `step` to 60. Bad parameters get 400 with {"error": "..."}; a query
/// stopped by its reader's deadline or its client going away, 503.
class QueryApi {
 public:
  using HealthFn = std::function<std::string()>;  // JSON object text

  /// Rows of the alarm history (rule "" for all), newest first.
  using HistoryFn = std::function<boost::json::array(const std::string& rule, int64_t from, int64_t to, size_t limit)>;

  using MetricsFn = std::function<std::string()>;  // Prometheus text

  explicit QueryApi(HealthFn health, HistoryFn history = {}, MetricsFn metrics = {})
      : health_(std::move(health)), history_(std::move(history)), metrics_(std::move(metrics)) {}

  /// Whether `target` reads the store: the judger runs those on a query
  /// thread with a reader of its own, and the rest (health, metrics, which
  /// read the judger's own state) on its thread.
  static bool reads_store(std::string_view target) noexcept;

  /// The answer to GET `target`, reading the store through `reader`.
  QueryResponse handle(std::string_view target, int64_t now_s, MinuteReader& reader);

 private:
  static QueryResponse series(const std::map<std::string, std::string>& params, int64_t now_s, MinuteReader& reader);
  static QueryResponse services(MinuteReader& reader);
  // Every server's minutes of a series: what `monitorctl rule test` replays.
  static QueryResponse points(const std::map<std::string, std::string>& params, int64_t now_s, MinuteReader& reader);
  // The mergeable state of each stored minute of a series, for merging a
  // minute whose data two judgers hold (a service that moved).
  static QueryResponse cells(const std::map<std::string, std::string>& params, int64_t now_s, MinuteReader& reader);

  const HealthFn health_;
  const HistoryFn history_;
  const MetricsFn metrics_;
};

}  // namespace monitor::judger
