#include "judger/query_api.hpp"

#include <algorithm>

#include <charconv>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <boost/json.hpp>

#include "judger/minute_rollup.hpp"
#include "model/op.hpp"
#include "monitor/monitor.hpp"
#include "net/query_string.hpp"

namespace monitor::judger {
using net::parse_int;
using net::parse_query_string;

namespace {

QueryResponse error(unsigned status, std::string_view message) {
  boost::json::object body{{"error", message}};
  return {status, boost::json::serialize(body)};
}

// A store error: a query the reader stopped is the client's to retry, not the judger's fault.
QueryResponse store_error(const boost::system::error_code& ec) {
  if (is_interrupted(ec)) return error(503, "query stopped: it ran past the judger's query_timeout_s, or its client went away");
  return error(500, ec.message());
}

// "SUM" .. "HIST" and the stored quantile series "HIST_P50" .. "HIST_P999".
bool parse_op(std::string_view name, uint32_t& op) {
  if (name == "HIST_P50") op = kOpHistP50;
  else if (name == "HIST_P90") op = kOpHistP90;
  else if (name == "HIST_P99") op = kOpHistP99;
  else if (name == "HIST_P999") op = kOpHistP999;
  else {
    const auto parsed = model::parse_ops(name);
    if (!parsed || (*parsed & (*parsed - 1)) != 0 || *parsed == 128) return false;  // one op; HIST needs a quantile
    op = *parsed;
  }
  return true;
}

// Pieces of an answer written as it is made, each sent once it reaches
// kStreamPiece bytes: no more than a piece of the text is ever held.
class PieceWriter {
 public:
  explicit PieceWriter(const QueryResponse::Emit& emit) : emit_(emit) {}
  // Whether the client still reads.
  bool add(std::string_view text) {
    piece_ += text;
    if (piece_.size() < QueryResponse::kStreamPiece) return true;
    return flush();
  }
  bool add(const boost::json::value& v) { return add(std::string_view(boost::json::serialize(v))); }
  // [minute,value], written in place: a day of 1 000 servers is 1.44 M of them.
  bool add_point(int64_t minute, double value) {
    char text[64];
    piece_ += '[';
    piece_.append(text, std::to_chars(text, text + sizeof text, minute).ptr);
    piece_ += ',';
    const boost::json::value number(value);
    number_.reset(&number);
    piece_ += number_.read(text, sizeof text);  // as serialize() writes it
    return add(std::string_view("]"));
  }
  bool flush() {
    if (piece_.empty()) return true;
    std::string out;
    out.swap(piece_);
    return emit_(std::move(out));
  }

 private:
  const QueryResponse::Emit& emit_;
  std::string piece_;
  boost::json::serializer number_;
};

// The text of `head` left open for one more field, `key`, whose value
// starts with `bracket`: what a streamed answer begins with.
std::string opening(const boost::json::object& head, std::string_view key, char bracket) {
  std::string open = boost::json::serialize(head);
  open.pop_back();  // the closing brace: the field follows
  if (!head.empty()) open += ',';
  open += boost::json::serialize(boost::json::value(key));
  open += ':';
  open += bracket;
  return open;
}

// `head`'s fields and then `key`: an array whose rows `row(i)` makes one at
// a time, streamed.
template <typename Rows, typename RowFn>
QueryResponse streamed_rows(boost::json::object head, std::string key, std::shared_ptr<Rows> rows, RowFn row) {
  QueryResponse answer;
  answer.stream = [head = std::move(head), key = std::move(key), rows = std::move(rows),
                   row = std::move(row)](const QueryResponse::Emit& emit) {
    PieceWriter out(emit);
    bool reading = out.add(std::string_view(opening(head, key, '[')));
    bool first = true;
    for (const auto& r : *rows) {
      if (!reading) return false;
      if (!first) reading = out.add(std::string_view(","));
      first = false;
      reading = reading && out.add(row(r));
    }
    return reading && out.add(std::string_view("]}")) && out.flush();
  };
  return answer;
}

}  // namespace

std::string QueryResponse::whole_body() const {
  if (!stream) return body;
  std::string whole;
  stream([&](std::string&& piece) {
    whole += piece;
    return true;
  });
  return whole;
}

bool QueryApi::reads_store(std::string_view target) noexcept {
  const std::string_view path = target.substr(0, target.find('?'));
  return path == "/api/series" || path == "/api/cells" || path == "/api/points" || path == "/api/services" ||
         path == "/api/reports";
}

QueryResponse QueryApi::handle(std::string_view target, int64_t now_s, MinuteReader& reader) {
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  std::map<std::string, std::string> params;
  if (question != std::string_view::npos && !parse_query_string(target.substr(question + 1), params)) {
    return error(400, "malformed query string");
  }
  if (path == "/api/series") return series(params, now_s, reader);
  if (path == "/api/cells") return cells(params, now_s, reader);
  if (path == "/api/points") return points(params, now_s, reader);
  if (path == "/api/services") {
    if (const auto it = params.find("service"); it != params.end()) {
      if (!is_valid_name(it->second)) return error(400, "service must be a name like Shop.Api");
      const auto last = reader.last_minute(it->second);
      if (!last) return store_error(last.error());
      return {200, boost::json::serialize(boost::json::object{{"service", it->second}, {"last_minute", *last}})};
    }
    return services(reader);
  }
  if (path == "/api/health") return {200, health_()};
  if (path == "/metrics" && metrics_) return {200, metrics_(), "text/plain; version=0.0.4; charset=utf-8"};
  if (path == "/api/reports") {
    int64_t from = now_s - 86400, to = now_s;
    if ((params.count("from") && !parse_int(params.at("from"), from)) || (params.count("to") && !parse_int(params.at("to"), to))) {
      return error(400, "from and to are Unix seconds");
    }
    const auto reports = reader.reports_by_service(from, to);
    if (!reports) return store_error(reports.error());
    boost::json::object by_service;
    for (const auto& [service, n] : *reports) by_service[service] = n;
    return {200, boost::json::serialize(boost::json::object{{"from", from}, {"to", to}, {"services", std::move(by_service)}})};
  }
  if (path == "/api/alarms/history" && history_) {
    const std::string rule = params.count("rule") ? params.at("rule") : "";
    if (!rule.empty() && !is_valid_name(rule)) return error(400, "rule must be a name like Shop.Api.OrdersLow");
    int64_t from = now_s - 86400, to = now_s + 1;
    int64_t limit = 1000;
    try {
      if (params.count("from")) from = std::stoll(params.at("from"));
      if (params.count("to")) to = std::stoll(params.at("to"));
      if (params.count("limit")) limit = std::clamp<int64_t>(std::stoll(params.at("limit")), 1, 10000);
    } catch (const std::exception&) {
      return error(400, "from, to and limit are integers (Unix seconds, a count)");
    }
    return {200, boost::json::serialize(boost::json::object{{"history", history_(rule, from, to, static_cast<size_t>(limit))}})};
  }
  return error(404, "no such endpoint; try /api/series, /api/cells, /api/points, /api/services, /api/reports, "
                    "/api/health, /api/alarms/history, /metrics");
}

namespace {

struct SeriesQuery {
  std::string service, attr, op_name;
  uint32_t op = 0;
  int64_t server = -1, from = 0, to = 0, step = 60;
};

// The series and range a query names, or the error that says what is wrong.
std::variant<SeriesQuery, QueryResponse> parse_query(const std::map<std::string, std::string>& params, int64_t now_s) {
  auto get = [&](const char* key) -> const std::string* {
    auto it = params.find(key);
    return it == params.end() ? nullptr : &it->second;
  };
  const std::string* service = get("service");
  const std::string* attr = get("attr");
  const std::string* op_name = get("op");
  if (service == nullptr || attr == nullptr || op_name == nullptr) return error(400, "service, attr and op are required");
  if (!is_valid_name(*service) || !is_valid_name(*attr)) return error(400, "service and attr must be names like Shop.Api");
  uint32_t op = 0;
  if (!parse_op(*op_name, op)) return error(400, "op must be one of SUM MAX MIN AVG FIRST LAST COUNT HIST_P50 HIST_P90 HIST_P99 HIST_P999");
  int64_t server = -1;
  if (const std::string* s = get("server"); s != nullptr && *s != "total") {
    if (!parse_int(*s, server) || server < 0) return error(400, "server must be an id >= 0 or total");
  }
  // Times are bounded before any arithmetic on them: extreme values from a
  // query string must not overflow (UBSan checks this in the tests).
  constexpr int64_t kLatest = 4'102'444'800;  // 2100-01-01
  int64_t to = now_s, step = 60;
  if (const std::string* s = get("to"); s != nullptr && (!parse_int(*s, to) || to < 0 || to > kLatest)) {
    return error(400, "to must be Unix seconds between 0 and 4102444800");
  }
  int64_t from = to - 3600;
  if (const std::string* s = get("from"); s != nullptr && (!parse_int(*s, from) || from < 0 || from > kLatest)) {
    return error(400, "from must be Unix seconds between 0 and 4102444800");
  }
  if (const std::string* s = get("step"); s != nullptr && (!parse_int(*s, step) || step < 60 || step > 86400 * 31)) {
    return error(400, "step must be seconds in [60, 2678400]");
  }
  if (from >= to || to - from > int64_t{400} * 86400) return error(400, "need from < to within 400 days");
  return SeriesQuery{*service, *attr, *op_name, op, server, from, to, step};
}

}  // namespace

QueryResponse QueryApi::series(const std::map<std::string, std::string>& params, int64_t now_s, MinuteReader& reader) {
  auto parsed = parse_query(params, now_s);
  if (auto* bad = std::get_if<QueryResponse>(&parsed)) return *bad;
  const SeriesQuery& q = std::get<SeriesQuery>(parsed);
  auto points = reader.query(q.service, q.attr, q.op, q.server, q.from, q.to, q.step, now_s);
  if (!points) return store_error(points.error());
  boost::json::object head{{"service", q.service},      {"attr", q.attr}, {"op", q.op_name},
                           {"server", q.server < 0 ? boost::json::value("total") : boost::json::value(q.server)},
                           {"from", q.from},             {"to", q.to},     {"step", q.step},
                           {"columns", boost::json::array{"time", "value", "min", "max", "minutes"}}};
  return streamed_rows(std::move(head), "points", std::make_shared<std::vector<StoredPoint>>(std::move(*points)),
                       [](const StoredPoint& p) { return boost::json::array{p.time, p.value, p.min, p.max, p.minutes}; });
}

QueryResponse QueryApi::cells(const std::map<std::string, std::string>& params, int64_t now_s, MinuteReader& reader) {
  // server=all: every server's cells and the total's, each row naming its series.
  const auto server_param = params.find("server");
  const bool all = server_param != params.end() && server_param->second == "all";
  auto one_series = params;
  if (all) one_series.erase("server");
  auto parsed = parse_query(one_series, now_s);
  if (auto* bad = std::get_if<QueryResponse>(&parsed)) return *bad;
  const SeriesQuery& q = std::get<SeriesQuery>(parsed);
  // A quantile is computed from the HIST cell.
  const uint32_t cell_op = q.op >= kOpHistP50 ? 128u : q.op;
  auto cells = reader.series_cells(q.service, q.attr, cell_op, all ? std::nullopt : std::optional<int64_t>(q.server),
                                   q.from, q.to);
  if (!cells) return store_error(cells.error());
  boost::json::object head{{"service", q.service}, {"attr", q.attr}, {"op", q.op_name},
                           {"server", all ? boost::json::value("all")
                                          : q.server < 0 ? boost::json::value("total") : boost::json::value(q.server)},
                           {"from", q.from}, {"to", q.to}};
  auto rows = std::make_shared<std::decay_t<decltype(*cells)>>(std::move(*cells));
  return streamed_rows(std::move(head), "cells", std::move(rows), [all](const auto& minute_cell) {
    const auto& [minute, c] = minute_cell;
    boost::json::array hist;
    c.hist.for_each([&](int32_t key, uint64_t count) { hist.push_back(boost::json::array{key, count}); });
    boost::json::object row{{"minute", minute},
                            {"count", c.stats.count},
                            {"sum", c.stats.sum},
                            {"min", c.stats.min},
                            {"max", c.stats.max},
                            {"first", c.stats.first},
                            {"first_time", c.stats.first_time},
                            {"last", c.stats.last},
                            {"last_time", c.stats.last_time},
                            {"hist", std::move(hist)}};
    if (all) row["server"] = c.server_id < 0 ? boost::json::value("total") : boost::json::value(c.server_id);
    return row;
  });
}

QueryResponse QueryApi::points(const std::map<std::string, std::string>& params, int64_t now_s, MinuteReader& reader) {
  auto parsed = parse_query(params, now_s);
  if (auto* bad = std::get_if<QueryResponse>(&parsed)) return *bad;
  const SeriesQuery& q = std::get<SeriesQuery>(parsed);
  // A query string must not make the judger build an answer of any size: a
  // rule test over 7 days of 100 servers with a week's look-back is 2 M points.
  constexpr size_t kMaxPoints = 4'000'000;
  // Each server's minutes in order (the store's), the total first, as the
  // answer lists them: 16 bytes a point.
  using Points = std::map<int64_t, std::vector<std::pair<int64_t, double>>>;
  auto by_server = std::make_shared<Points>();
  const auto read = reader.each_minute_point(q.service, q.attr, q.op, q.from, q.to, kMaxPoints + 1,
                                             [&](int64_t server, int64_t minute, double value) {
                                               (*by_server)[server].emplace_back(minute, value);
                                             });
  if (!read) return store_error(read.error());
  if (*read > kMaxPoints) return error(413, "more than 4000000 points; ask for a shorter range");
  if (reader.stop_due()) return store_error(interrupted_error());
  const auto last = reader.last_minute(q.service);
  if (!last) return store_error(last.error());
  boost::json::object head{{"service", q.service}, {"attr", q.attr}, {"op", q.op_name}, {"from", q.from},
                           {"to", q.to},           {"last_minute", *last}};
  QueryResponse answer;
  answer.stream = [head = std::move(head), by_server](const QueryResponse::Emit& emit) {
    PieceWriter out(emit);
    bool reading = out.add(std::string_view(opening(head, "servers", '{')));
    bool first_server = true;
    for (const auto& [server, minutes] : *by_server) {
      const std::string name = server < 0 ? "total" : std::to_string(server);
      reading = reading && out.add(std::string_view((first_server ? "\"" : ",\"") + name + "\":["));
      first_server = false;
      for (size_t i = 0; i < minutes.size() && reading; ++i) {
        if (i > 0) reading = out.add(std::string_view(","));
        reading = reading && out.add_point(minutes[i].first, minutes[i].second);
      }
      reading = reading && out.add(std::string_view("]"));
      if (!reading) return false;
    }
    return reading && out.add(std::string_view("}}")) && out.flush();
  };
  return answer;
}

QueryResponse QueryApi::services(MinuteReader& reader) {
  const auto list = reader.list_series();
  if (!list) return store_error(list.error());
  boost::json::object by_service;
  for (const auto& [service, attr] : *list) {
    auto& attrs = by_service[service];
    if (!attrs.is_array()) attrs = boost::json::array{};
    attrs.as_array().push_back(boost::json::value(attr));
  }
  return {200, boost::json::serialize(boost::json::object{{"services", std::move(by_service)}})};
}

}  // namespace monitor::judger
