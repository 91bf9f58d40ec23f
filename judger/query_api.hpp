#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "judger/minute_store.hpp"

namespace monitor::judger {

/// An HTTP answer: status and a JSON body.
struct QueryResponse {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
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
/// now, `step` to 60. Bad parameters get 400 with {"error": "..."}.
class QueryApi {
 public:
  using HealthFn = std::function<std::string()>;  // JSON object text

  /// Rows of the alarm history (rule "" for all), newest first.
  using HistoryFn = std::function<boost::json::array(const std::string& rule, int64_t from, int64_t to, size_t limit)>;

  using MetricsFn = std::function<std::string()>;  // Prometheus text

  QueryApi(MinuteStore& store, HealthFn health, HistoryFn history = {}, MetricsFn metrics = {})
      : store_(store), health_(std::move(health)), history_(std::move(history)), metrics_(std::move(metrics)) {}

  QueryResponse handle(std::string_view target, int64_t now_s);

 private:
  QueryResponse series(const std::map<std::string, std::string>& params, int64_t now_s);
  QueryResponse services();
  // Every server's minutes of a series: what `monitorctl rule test` replays.
  QueryResponse points(const std::map<std::string, std::string>& params, int64_t now_s);
  // The mergeable state of each stored minute of a series, for merging a
  // minute whose data two judgers hold (a service that moved).
  QueryResponse cells(const std::map<std::string, std::string>& params, int64_t now_s);

  MinuteStore& store_;
  const HealthFn health_;
  const HistoryFn history_;
  const MetricsFn metrics_;
};

}  // namespace monitor::judger
