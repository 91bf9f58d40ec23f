#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "judger/minute_rollup.hpp"
#include "judger/query_api.hpp"
#include "net/query_string.hpp"
#include "support/catch_result.hpp"
#include "support/temp_names.hpp"

using namespace monitor::judger;
using monitor::net::parse_query_string;

namespace {
constexpr int64_t kBase = 1'732'176'000;
}

TEST_CASE("query strings decode and malformed escapes are refused", "[query]") {
  std::map<std::string, std::string> params;
  REQUIRE(parse_query_string("service=Shop.Api&attr=Orders%2EPlaced&x=a+b&flag", params));
  CHECK(params["service"] == "Shop.Api");
  CHECK(params["attr"] == "Orders.Placed");
  CHECK(params["x"] == "a b");
  CHECK(params.count("flag") == 1);
  std::map<std::string, std::string> bad;
  CHECK_FALSE(parse_query_string("a=%4", bad));
  CHECK_FALSE(parse_query_string("a=%zz", bad));
}

TEST_CASE("the query API answers series, services and health, and 400s bad parameters", "[query]") {
  monitor::test::TempDir dir;
  auto store = *MinuteStore::open(dir.file("j.db"));
  for (int m = 0; m < 3; ++m) {
    REQUIRE(store->finish_minute(kBase + 60 * m, {MinutePoint{"Shop.Api", "Orders.Placed", 1, 4, kBase + 60 * m, 10.0 + m},
                                                  MinutePoint{"Shop.Api", "Latency.Us", kOpHistP99, -1, kBase + 60 * m, 250}}));
  }
  QueryApi api([] { return std::string(R"({"ok":true})"); });
  const int64_t now = kBase + 200;

  auto r = api.handle("/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&server=4&from=" + std::to_string(kBase) +
                          "&to=" + std::to_string(kBase + 180),
                      now, store->reader());
  CHECK(r.status == 200);
  CHECK_THAT(r.whole_body(), Catch::Contains("[1732176000,1E1,1E1,1E1,1]") && Catch::Contains("[1732176120,1.2E1"));
  r = api.handle("/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&server=4&step=180&from=" +
                     std::to_string(kBase) + "&to=" + std::to_string(kBase + 180),
                 now, store->reader());
  CHECK_THAT(r.whole_body(), Catch::Contains("[1732176000,1.1E1,1E1,1.2E1,3]"));  // one bucket: avg, min, max
  r = api.handle("/api/series?service=Shop.Api&attr=Latency.Us&op=HIST_P99&server=total&from=" + std::to_string(kBase) +
                     "&to=" + std::to_string(kBase + 60),
                 now, store->reader());
  CHECK_THAT(r.whole_body(), Catch::Contains("2.5E2"));
  CHECK_THAT(api.handle("/api/services", now, store->reader()).body, Catch::Contains(R"("Shop.Api":["Latency.Us","Orders.Placed"])"));
  CHECK(api.handle("/api/health", now, store->reader()).body == R"({"ok":true})");
  // Reports per service, from the minutes' cells: a series with two ops
  // counts its reports once, and the total is not counted again.
  monitor::model::Stats five, two;
  for (int i = 0; i < 5; ++i) five.add(i, kBase * 1'000'000'000);
  for (int i = 0; i < 2; ++i) two.add(i, kBase * 1'000'000'000);
  REQUIRE(store->finish_minute(kBase + 180, {}, {MinuteCell{"Shop.Api", "Orders.Placed", 1, 4, five, {}},
                                                 MinuteCell{"Shop.Api", "Orders.Placed", 2, 4, five, {}},
                                                 MinuteCell{"Shop.Api", "Orders.Placed", 1, -1, five, {}},
                                                 MinuteCell{"Shop.Web", "Hits.Count", 1, 1, two, {}}}));
  CHECK(api.handle("/api/reports?from=0&to=" + std::to_string(now + 60), now, store->reader()).body ==
        R"({"from":0,"to":1732176260,"services":{"Shop.Api":5,"Shop.Web":2}})");
  CHECK(api.handle("/api/reports?from=0&to=" + std::to_string(kBase + 180), now, store->reader()).body ==
        R"({"from":0,"to":1732176180,"services":{}})");
  CHECK(api.handle("/api/reports?from=x", now, store->reader()).status == 400);
  // The cells of every series of an attr at once (server=all), each naming its
  // series: what a service's new owner merges a minute the move split from.
  r = api.handle("/api/cells?service=Shop.Api&attr=Orders.Placed&op=SUM&server=all&from=" + std::to_string(kBase + 180) +
                     "&to=" + std::to_string(kBase + 240),
                 now, store->reader());
  CHECK(r.status == 200);
  {
    const auto cells = boost::json::parse(r.whole_body()).at("cells").as_array();
    REQUIRE(cells.size() == 2);
    CHECK(cells[0].at("server") == "total");
    CHECK(cells[1].at("server") == 4);
    CHECK(cells[1].at("count") == 5);
  }
  // Every server's finished minutes at once, as `monitorctl rule test` reads them.
  r = api.handle("/api/points?service=Shop.Api&attr=Orders.Placed&op=SUM&from=" + std::to_string(kBase + 60) +
                     "&to=" + std::to_string(kBase + 600),
                 now, store->reader());
  CHECK(r.status == 200);
  CHECK_THAT(r.whole_body(), Catch::Contains(R"("servers":{"4":[[1732176060,1.1E1],[1732176120,1.2E1]]})") &&
                         Catch::Contains(R"("last_minute":1732176120)"));

  for (const char* bad : {"/api/series", "/api/series?service=Shop.Api&attr=Orders.Placed",
                          "/api/series?service=shop&attr=Orders.Placed&op=SUM",
                          "/api/series?service=Shop.Api&attr=Orders.Placed&op=HIST",
                          "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM,MAX",
                          "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&server=-2",
                          "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&step=5",
                          "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&from=9&to=3",
                          "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&from=x",
                          // Issue 7, item 5: extreme times are refused, not computed with (signed overflow).
                          "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&to=-9223372036854775808",
                          "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&from=-9223372036854775808&to=60",
                          "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&to=9223372036854775807",
                          "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&step=9223372036854775807",
                          "/api/series?service=%zz"}) {
    INFO(bad);
    const auto answer = api.handle(bad, now, store->reader());
    CHECK(answer.status == 400);
    CHECK_THAT(answer.body, Catch::Contains("error"));
  }
  CHECK(api.handle("/metrics", now, store->reader()).status == 404);
}

// Issue 20, §6: a large answer is written in pieces as it is made, never
// whole, and stops when its client stops reading. Before, the whole answer
// was built as a JSON tree and then as one string, then sent.
TEST_CASE("issue 20: the points of many servers stream in bounded pieces that make the same answer, and stop when "
          "the client does",
          "[query][issue20]") {
  monitor::test::TempDir dir;
  auto store = *MinuteStore::open(dir.file("j.db"));
  constexpr int kServers = 1000, kMinutes = 60;
  for (int m = 0; m < kMinutes; ++m) {
    std::vector<MinutePoint> points;
    for (int server = -1; server < kServers; ++server) {
      points.push_back(MinutePoint{"Shop.Api", "Orders.Placed", 1, server, kBase + 60 * m, server + m * 0.5});
    }
    REQUIRE(store->finish_minute(kBase + 60 * m, points));
  }
  QueryApi api([] { return std::string("{}"); });
  const std::string target = "/api/points?service=Shop.Api&attr=Orders.Placed&op=SUM&from=" + std::to_string(kBase) +
                             "&to=" + std::to_string(kBase + 60 * kMinutes);
  const auto answer = api.handle(target, kBase + 60 * kMinutes + 10, store->reader());
  REQUIRE(answer.status == 200);
  REQUIRE(answer.stream);
  std::vector<size_t> pieces;
  std::string whole;
  CHECK(answer.stream([&](std::string&& piece) {
    pieces.push_back(piece.size());
    whole += piece;
    return true;
  }));
  CHECK(pieces.size() > 2);
  for (size_t size : pieces) CHECK(size < 2 * QueryResponse::kStreamPiece);
  const auto body = boost::json::parse(whole).as_object();
  CHECK(body.at("service") == "Shop.Api");
  CHECK(body.at("last_minute") == kBase + 60 * (kMinutes - 1));
  const auto& servers = body.at("servers").as_object();
  REQUIRE(servers.size() == kServers + 1);
  CHECK(servers.at("total").as_array().size() == kMinutes);
  const auto& last = servers.at(std::to_string(kServers - 1)).as_array();
  REQUIRE(last.size() == kMinutes);
  CHECK(last.at(kMinutes - 1).as_array().at(0) == kBase + 60 * (kMinutes - 1));
  CHECK(last.at(kMinutes - 1).as_array().at(1).to_number<double>() == kServers - 1 + (kMinutes - 1) * 0.5);
  CHECK(answer.whole_body() == whole);

  // A client that stops reading after the first piece: nothing more is made.
  int asked = 0;
  CHECK_FALSE(answer.stream([&](std::string&&) { return ++asked < 1; }));
  CHECK(asked == 1);

  // No minutes at all is still an answer.
  const auto empty = api.handle("/api/points?service=Shop.Api&attr=Orders.Placed&op=SUM&from=" +
                                    std::to_string(kBase - 7200) + "&to=" + std::to_string(kBase - 3600),
                                kBase + 60 * kMinutes + 10, store->reader());
  CHECK(boost::json::parse(empty.whole_body()).at("servers").as_object().empty());
}
