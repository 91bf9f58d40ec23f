#include "query/series_merge.hpp"

#include <limits>
#include <map>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "model/log_histogram.hpp"
#include "model/stats.hpp"

namespace monitor::query {
namespace {

constexpr size_t kMaxBuckets = 8192;  // a judger's histogram never has more (wire::kMaxHistBuckets)

struct Minute {
  model::Stats stats;
  model::LogHistogram hist;
};

bool read_int(const boost::json::object& obj, const char* key, int64_t& out) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr) return false;
  if (v->is_int64()) out = v->as_int64();
  else if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    out = static_cast<int64_t>(v->as_uint64());
  } else {
    return false;
  }
  return true;
}

// One cell of a reply: input from another process, checked before use.
bool read_cell(const boost::json::value& v, int64_t& minute, Minute& out) {
  const auto* obj = v.if_object();
  if (obj == nullptr) return false;
  model::Stats& s = out.stats;
  int64_t count = 0;
  if (!read_int(*obj, "minute", minute) || !read_int(*obj, "count", count) || count < 0 ||
      !read_int(*obj, "sum", s.sum) || !read_int(*obj, "min", s.min) || !read_int(*obj, "max", s.max) ||
      !read_int(*obj, "first", s.first) || !read_int(*obj, "first_time", s.first_time) ||
      !read_int(*obj, "last", s.last) || !read_int(*obj, "last_time", s.last_time)) {
    return false;
  }
  s.count = static_cast<uint64_t>(count);
  const auto* hist = obj->if_contains("hist");
  if (hist == nullptr || !hist->is_array() || hist->as_array().size() > kMaxBuckets) return false;
  const int32_t lowest = model::LogHistogram::bucket_key(std::numeric_limits<int64_t>::min());
  const int32_t highest = model::LogHistogram::bucket_key(std::numeric_limits<int64_t>::max());
  for (const auto& bucket : hist->as_array()) {
    const auto* pair = bucket.if_array();
    if (pair == nullptr || pair->size() != 2 || !(*pair)[0].is_int64()) return false;
    const int64_t key = (*pair)[0].as_int64();
    const auto* count_value = &(*pair)[1];
    if (key < lowest || key > highest) return false;
    if (!count_value->is_int64() && !count_value->is_uint64()) return false;
    const uint64_t n = count_value->is_uint64() ? count_value->as_uint64() : static_cast<uint64_t>(count_value->as_int64());
    out.hist.add_to_bucket(static_cast<int32_t>(key), n);
  }
  return true;
}

std::optional<double> value_of(const std::string& op, const Minute& m) {
  const model::Stats& s = m.stats;
  if (op == "SUM") return static_cast<double>(s.sum);
  if (op == "MAX") return static_cast<double>(s.max);
  if (op == "MIN") return static_cast<double>(s.min);
  if (op == "AVG") return s.average();
  if (op == "FIRST") return static_cast<double>(s.first);
  if (op == "LAST") return static_cast<double>(s.last);
  if (op == "COUNT") return static_cast<double>(s.count);
  const double q = op == "HIST_P50" ? 0.5 : op == "HIST_P90" ? 0.9 : op == "HIST_P99" ? 0.99 : op == "HIST_P999" ? 0.999 : 0;
  if (q == 0) return std::nullopt;
  return static_cast<double>(m.hist.quantile(q, s.min, s.max));
}

}  // namespace

std::optional<boost::json::object> merge_cells(const std::vector<boost::json::value>& replies, const std::string& op,
                                               int64_t step, std::string& error) {
  std::map<int64_t, Minute> minutes;
  for (const auto& reply : replies) {
    const auto* obj = reply.if_object();
    const auto* cells = obj != nullptr ? obj->if_contains("cells") : nullptr;
    if (cells == nullptr || !cells->is_array()) {
      error = "a judger's /api/cells reply has no \"cells\" array";
      return std::nullopt;
    }
    for (const auto& cell : cells->as_array()) {
      int64_t minute = 0;
      Minute m;
      if (!read_cell(cell, minute, m)) {
        error = "a judger's /api/cells reply has a cell of the wrong shape: " + boost::json::serialize(cell).substr(0, 200);
        return std::nullopt;
      }
      Minute& into = minutes[minute];
      into.stats.merge(m.stats);
      into.hist.merge(m.hist);
    }
  }
  struct Bucket {
    double sum = 0, min = 0, max = 0;
    int64_t minutes = 0;
  };
  std::map<int64_t, Bucket> buckets;
  for (const auto& [minute, m] : minutes) {
    const auto value = value_of(op, m);
    if (!value) {
      error = fmt::format("op {}: use SUM MAX MIN AVG FIRST LAST COUNT HIST_P50 HIST_P90 HIST_P99 HIST_P999", op);
      return std::nullopt;
    }
    const int64_t at = minute - ((minute % step) + step) % step;
    auto [it, fresh] = buckets.try_emplace(at, Bucket{0, *value, *value, 0});
    Bucket& b = it->second;
    b.sum += *value;
    b.min = std::min(b.min, *value);
    b.max = std::max(b.max, *value);
    ++b.minutes;
  }
  boost::json::array points;
  for (const auto& [at, b] : buckets) {
    points.push_back(boost::json::array{at, b.sum / static_cast<double>(b.minutes), b.min, b.max, b.minutes});
  }
  return boost::json::object{{"step", step},
                             {"columns", boost::json::array{"time", "value", "min", "max", "minutes"}},
                             {"points", std::move(points)}};
}

}  // namespace monitor::query
