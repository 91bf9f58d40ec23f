// What an alarm notice says (src/alarm/message.hpp): the text, the mail's
// HTML and the webhook's JSON tell the same series, and what people wrote
// in a rule cannot break out of the HTML.
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "alarm/message.hpp"
#include "alarm/rule.hpp"

namespace rules = monitor::alarm;
namespace json = boost::json;

namespace {

rules::Rule parsed_rule(const std::string& text) {
  const auto parsed = rules::parse_rule_file(text);
  REQUIRE_FALSE(parsed.error);
  REQUIRE(parsed.file.rules.size() == 1);
  return parsed.file.rules[0];
}

}  // namespace

TEST_CASE("issue 22: a notice renders as text, HTML and JSON that agree, with people's words escaped in HTML",
          "[alarm][message][issue22]") {
  const rules::Rule rule = parsed_rule(R"(rule Shop.Orders.Low
  service Shop.Api
  attr Orders.Placed
  op SUM
  per server
  when value < 5
  severity critical
  summary "Orders <fell> & more"
  description "see <script>alert(1)</script>"
  label team=shop
  notify webhook:http://127.0.0.1:1/hook
)");
  rules::MessageFacts facts;
  facts.kind = rules::Notice::Kind::kFiring;
  facts.minute = 29'000'000;
  facts.dashboard_url = "http://dash.example:7303";
  facts.partial = "held by judger-1 and judger-2";
  rules::MessageSeries web7;
  web7.server = 7;
  web7.host = "web-7";
  web7.value = 2;
  for (int i = 0; i < rules::kMessageRecentMinutes; ++i) {
    web7.recent.push_back(i == 3 ? std::nullopt : std::optional<double>(10 - i));
  }
  web7.alarm = rules::AlarmState{};
  web7.alarm->state = rules::State::kFiring;
  web7.alarm->fired_at = facts.minute;
  facts.series.push_back(web7);
  rules::MessageSeries no_data;
  no_data.server = 9;
  no_data.recent.assign(rules::kMessageRecentMinutes, std::nullopt);
  facts.series.push_back(no_data);

  const rules::Message m = rules::render_message(rule, facts);
  CHECK(m.subject == "[FIRING] Shop.Orders.Low: 2 series");

  CHECK_THAT(m.text, Catch::StartsWith("FIRING Shop.Orders.Low (critical): Orders <fell> & more\n"));
  CHECK_THAT(m.text, Catch::Contains("server 7 (web-7): 2 now"));
  CHECK_THAT(m.text, Catch::Contains(" 10 9 8 - 6 5 4 3 2 1\n"));
  CHECK_THAT(m.text, Catch::Contains("server 9: no data now"));
  CHECK_THAT(m.text, Catch::Contains("chart: http://dash.example:7303/#/chart?service=Shop.Api&attr=Orders.Placed&op=SUM"
                                     "&servers=7&from=1739998200&to=1740001860"));
  CHECK_THAT(m.text, Catch::Contains("Partial: the service moved during this minute, and it was held by judger-1"));
  CHECK_THAT(m.text, Catch::EndsWith("More: monitorctl query --service Shop.Api --attr Orders.Placed --op SUM "
                                     "--server <N> --from -1h\n"));

  // Nothing a rule's author wrote reaches the HTML unescaped.
  CHECK_THAT(m.html, Catch::Contains("Orders &lt;fell&gt; &amp; more"));
  CHECK_THAT(m.html, Catch::Contains("see &lt;script&gt;alert(1)&lt;/script&gt;"));
  CHECK(m.html.find("<script>") == std::string::npos);
  CHECK_THAT(m.html, Catch::Contains("<a href=\"http://dash.example:7303/#/chart?service=Shop.Api&amp;attr="));

  const json::object& b = m.body;
  CHECK(b.begin()->key() == "version");
  CHECK(std::next(b.begin())->key() == "key");  // left for the caller, one per target, in its place
  CHECK(b.at("key").as_string() == "");
  CHECK(b.at("kind").as_string() == "firing");
  CHECK(b.at("severity").as_string() == "critical");
  CHECK(b.at("labels").at("team").as_string() == "shop");
  CHECK(b.at("minute").as_int64() == facts.minute * 60);
  CHECK(b.at("text").as_string() == m.text);
  CHECK(b.at("partial").as_string() == facts.partial);
  CHECK_FALSE(b.contains("correction"));
  const json::array& alarms = b.at("alarms").as_array();
  REQUIRE(alarms.size() == 2);
  CHECK(alarms[0].at("server").as_int64() == 7);
  CHECK(alarms[0].at("host").as_string() == "web-7");
  CHECK(alarms[0].at("state").as_string() == "firing");
  CHECK(alarms[0].at("fired_at").as_int64() == facts.minute * 60);
  const json::array& recent = alarms[0].at("recent").as_array();
  REQUIRE(recent.size() == rules::kMessageRecentMinutes);
  CHECK(recent.front().at("minute").as_int64() == (facts.minute - rules::kMessageRecentMinutes + 1) * 60);
  CHECK(recent.back().at("minute").as_int64() == facts.minute * 60);
  CHECK(recent[3].at("value").is_null());
  CHECK(alarms[1].at("host").is_null());
  CHECK(alarms[1].at("value").is_null());
  CHECK_FALSE(alarms[1].as_object().contains("state"));
}

TEST_CASE("issue 22: a total's notice has no server, and a correction is said in all three", "[alarm][message][issue22]") {
  const rules::Rule rule = parsed_rule(R"(rule Shop.Total.High
  service Shop.Api
  attr Orders.Placed
  op MAX
  per total
  when value > 100
)");
  rules::MessageFacts facts;
  facts.kind = rules::Notice::Kind::kResolved;
  facts.minute = 100;
  facts.correction = "the minute was amended <late>";
  rules::MessageSeries total;
  total.value = 50;
  total.recent.assign(rules::kMessageRecentMinutes, 50.0);
  facts.series.push_back(total);
  const rules::Message m = rules::render_message(rule, facts);
  CHECK(m.subject == "[RESOLVED] Shop.Total.High: 1 series");
  CHECK_THAT(m.text, Catch::Contains("  total: 50 now"));
  CHECK(m.text.find("chart:") == std::string::npos);  // no dashboard: no links
  CHECK_THAT(m.text, Catch::Contains("Corrected: the minute was amended <late>."));
  CHECK_THAT(m.html, Catch::Contains("<b>Corrected:</b> the minute was amended &lt;late&gt;."));
  CHECK(m.body.at("correction").as_string() == facts.correction);
  CHECK(m.body.at("alarms").as_array()[0].at("server").is_null());
  CHECK(m.body.at("per").as_string() == "total");
  CHECK_THAT(std::string(m.body.at("query").as_string()), !Catch::Contains("--server"));
}
