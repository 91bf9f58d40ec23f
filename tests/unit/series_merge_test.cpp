// monitorctl's merge of a minute that two judgers hold: every op exact.
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "query/series_merge.hpp"
#include "model/log_histogram.hpp"
#include "model/stats.hpp"

using monitor::query::merge_cells;

namespace {

struct Part {
  monitor::model::Stats stats;
  monitor::model::LogHistogram hist;
  void add(int64_t value, int64_t time_ns) {
    stats.add(value, time_ns);
    hist.add(value);
  }
};

// A judger's /api/cells reply holding one minute.
boost::json::value reply(int64_t minute, const Part& p) {
  boost::json::array hist;
  p.hist.for_each([&](int32_t key, uint64_t count) { hist.push_back(boost::json::array{key, count}); });
  const auto& s = p.stats;
  return boost::json::object{
      {"cells", boost::json::array{boost::json::object{
                    {"minute", minute}, {"count", s.count}, {"sum", s.sum}, {"min", s.min}, {"max", s.max},
                    {"first", s.first}, {"first_time", s.first_time}, {"last", s.last}, {"last_time", s.last_time},
                    {"hist", hist}}}}};
}

double merged_value(const std::vector<boost::json::value>& replies, const std::string& op) {
  std::string error;
  auto body = merge_cells(replies, op, 60, error);
  INFO(error);
  REQUIRE(body.has_value());
  const auto& points = body->at("points").as_array();
  REQUIRE(points.size() == 1);
  return points.at(0).as_array().at(1).to_number<double>();
}

}  // namespace

TEST_CASE("a minute split across two judgers merges to the minute of all its reports, for every op",
          "[console][merge]") {
  constexpr int64_t kMinute = 1'700'000'040;
  Part whole, early, late;
  // Reports of the minute, the first 40 seconds on one judger, the rest on the other.
  for (int i = 0; i < 600; ++i) {
    const int64_t value = (i * 7919) % 1000 - 200;
    const int64_t t = (kMinute + i / 10) * 1'000'000'000 + i;
    whole.add(value, t);
    (i < 400 ? early : late).add(value, t);
  }
  const std::vector<boost::json::value> replies = {reply(kMinute, late), reply(kMinute, early)};  // any order
  const auto& s = whole.stats;
  CHECK(merged_value(replies, "SUM") == static_cast<double>(s.sum));
  CHECK(merged_value(replies, "COUNT") == static_cast<double>(s.count));
  CHECK(merged_value(replies, "MAX") == static_cast<double>(s.max));
  CHECK(merged_value(replies, "MIN") == static_cast<double>(s.min));
  CHECK(merged_value(replies, "AVG") == s.average());
  CHECK(merged_value(replies, "FIRST") == static_cast<double>(s.first));
  CHECK(merged_value(replies, "LAST") == static_cast<double>(s.last));
  for (const auto& [op, q] : std::vector<std::pair<std::string, double>>{
           {"HIST_P50", 0.5}, {"HIST_P90", 0.9}, {"HIST_P99", 0.99}, {"HIST_P999", 0.999}}) {
    INFO(op);
    CHECK(merged_value(replies, op) == static_cast<double>(whole.hist.quantile(q, s.min, s.max)));
  }
}

TEST_CASE("cells of the wrong shape or out of bounds are refused with a reason, not trusted", "[console][merge][failure]") {
  std::string error;
  CHECK_FALSE(merge_cells({boost::json::parse(R"({"nope": 1})")}, "SUM", 60, error));
  CHECK_THAT(error, Catch::Contains("no \"cells\" array"));
  const std::string base = R"({"minute": 60, "count": 1, "sum": 1, "min": 1, "max": 1, "first": 1, "first_time": 1,
                               "last": 1, "last_time": 1, "hist": )";
  for (const std::string& hist : {std::string(R"([[2147483647, 1]])"), std::string(R"([[1]])"),
                                  std::string(R"("x")"), std::string(R"([[0, -1.5]])")}) {
    INFO(hist);
    CHECK_FALSE(merge_cells({boost::json::parse(R"({"cells": [)" + base + hist + "}]}")}, "SUM", 60, error));
  }
  CHECK_FALSE(merge_cells({boost::json::parse(R"({"cells": [{"minute": 60, "count": -1}]})")}, "SUM", 60, error));
  CHECK_FALSE(merge_cells({boost::json::parse(R"({"cells": [)" + base + "[]}]}")}, "MEDIAN", 60, error));
  CHECK_THAT(error, Catch::Contains("op MEDIAN"));
}
