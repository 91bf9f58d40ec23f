// Issue 10, section 1: monitor-dashboard over a real judger and registry. Its
// API gives a signed-in user exactly the judger's minutes of the services of
// its roles and refuses the rest; bad input gets clear errors; and the web
// application, in Debian's headless Chromium, draws what the API answers
// (tests/browser/dashboard_browser.py, screenshots kept in the build tree).
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "e2e/batch_sender.hpp"
#include "e2e/judger_process.hpp"
#include "e2e/monitorctl_run.hpp"
#include "e2e/query_oracle.hpp"
#include "support/child_process.hpp"
#include "support/etcd_server.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::free_port;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::wait_until;
namespace json = boost::json;

namespace {

// A signed-in user of the dashboard on `port`.
struct Browser {
  int port = 0;
  std::string cookie;

  std::string cookie_header() const {
    std::string header;
    if (!cookie.empty()) header.append("Cookie: ").append(cookie).append("\r\n");
    return header;
  }
  monitor::test::HttpReply get(const std::string& target) const {
    return monitor::test::http_request(port, "GET", target, "", cookie_header());
  }
  monitor::test::HttpReply send(const std::string& method, const std::string& target, const std::string& body) const {
    std::string headers("Content-Type: application/json\r\n");
    headers.append(cookie_header());
    return monitor::test::http_request(port, method, target, body, headers);
  }
  // Signs in; the status of the answer.
  int sign_in(const std::string& user, const std::string& password) {
    const auto reply = send("POST", "/api/login", json::serialize(json::object{{"user", user}, {"password", password}}));
    const std::string_view headers(reply.headers);
    if (const size_t at = headers.find("Set-Cookie: "); at != std::string_view::npos) {
      const std::string_view value = headers.substr(at + 12);
      cookie.assign(value.substr(0, value.find(';')));
    }
    return reply.status;
  }
};

std::string error_of(const monitor::test::HttpReply& reply) {
  boost::system::error_code ec;
  const auto v = json::parse(reply.body, ec);
  return !ec && v.is_object() && v.as_object().contains("error") ? std::string(v.at("error").as_string()) : reply.body;
}

// (server -> minute -> value) of the judger's own /api/points, shifted by `shift`.
std::map<std::string, std::map<int64_t, double>> judger_points(int query_port, int64_t from, int64_t to,
                                                               int64_t shift = 0) {
  std::map<std::string, std::map<int64_t, double>> out;
  const auto reply = monitor::test::http_get(
      query_port, "/api/points?service=Shop.Api&attr=Orders.Placed&op=SUM&from=" + std::to_string(from) + "&to=" +
                      std::to_string(to));
  if (reply.status != 200) return out;
  const json::value body = json::parse(reply.body);  // outlives the loop over its members
  for (const auto& [server, rows] : body.at("servers").as_object()) {
    for (const auto& row : rows.as_array()) {
      out[std::string(server)][row.as_array().at(0).to_number<int64_t>() + shift] = row.as_array().at(1).to_number<double>();
    }
  }
  return out;
}

// (server -> time -> value) of one shift's lines of a dashboard /api/series answer.
std::map<std::string, std::map<int64_t, double>> dashboard_points(const std::string& body, int64_t shift) {
  std::map<std::string, std::map<int64_t, double>> out;
  const json::value answer = json::parse(body);  // outlives the loop over its members
  for (const auto& line : answer.at("series").as_array()) {
    if (line.at("shift").to_number<int64_t>() != shift) continue;
    auto& points = out[std::string(line.at("server").as_string())];
    for (const auto& p : line.at("points").as_array()) {
      points[p.as_array().at(0).to_number<int64_t>()] = p.as_array().at(1).to_number<double>();
    }
  }
  return out;
}

bool monitorctl_ok(const TempDir& dir, const std::string& registry, const std::vector<std::string>& args) {
  const auto run = monitor::e2e::monitorctl(dir, registry, args);
  UNSCOPED_INFO("monitorctl " << args.at(0) << " " << args.at(1) << ": " << run.out << run.err);
  return run.rc == 0;
}

}  // namespace

TEST_CASE("issue 10: the dashboard shows a user the judger's minutes of its roles' services and refuses the rest - "
          "in its API and in headless Chromium - with clear errors for bad input",
          "[e2e][issue10][dashboard]") {
  REQUIRE(std::filesystem::exists("/usr/bin/chromedriver"));  // Debian's chromium-driver (scripts/install-deps.sh)
  TempDir dir;
  std::filesystem::copy(MONITOR_EXAMPLES_REGISTRY, dir.file("registry"), std::filesystem::copy_options::recursive);
  const std::string registry = "file:" + dir.file("registry");
  const int port = free_port(), query_port = free_port(), web_port = free_port();
  auto judger = monitor::e2e::spawn_judger(dir, port, dir.file("judger.log"), query_port,
                                           {"--name", "judger-1", "--no-self-metrics", "--no-placement"});
  auto dashboard = ChildProcess::spawn({MONITOR_DASHBOARD_PATH, "--listen", "127.0.0.1:" + std::to_string(web_port),
                                        "--registry", registry, "--no-self-metrics"},
                                       "", dir.file("dashboard.log"));
  const auto logs = [&] { return "judger:\n" + read_file(dir.file("judger.log")) + "\ndashboard:\n" + read_file(dir.file("dashboard.log")); };
  REQUIRE(wait_until([&] { return monitor::test::http_get(web_port, "/api/health").status == 200; }, 15s));
  for (const auto& args : std::vector<std::vector<std::string>>{{"role", "add", "shop", "Shop.*"},
                                                                {"role", "add", "other", "Other.*"},
                                                                {"user", "add", "alice", "--new-password", "alice-pw", "--role", "shop"},
                                                                {"user", "add", "bob", "--new-password", "bob-pw", "--role", "other"}}) {
    const auto run = monitor::e2e::monitorctl(dir, registry, args);
    INFO(run.out << run.err);
    REQUIRE(run.rc == 0);
  }

  // Five minutes of three servers today, and the same minutes yesterday with other values.
  const int64_t now = monitor::e2e::unix_now_s();
  const int64_t first = now - now % 60 - 8 * 60, end = first + 5 * 60;
  {
    monitor::e2e::BatchSender sender(port, 801, {{1, "Shop.Api", "Orders.Placed"}});
    for (const int64_t day : {int64_t{0}, int64_t{86400}}) {
      std::vector<monitor::wire::BatchRecord> records;
      for (int64_t i = 0; i < 5; ++i) {
        for (int64_t server = 1; server <= 3; ++server) {
          records.push_back(monitor::e2e::BatchSender::record(1, server, first - day + i * 60 + 5,
                                                              (day == 0 ? 10 : 100) * server + i, 1));
        }
      }
      sender.send(std::move(records));
    }
  }
  const auto today = [&] { return judger_points(query_port, first, end); };
  const bool stored = wait_until([&] {
    const auto t = today(), y = judger_points(query_port, first - 86400, end - 86400);
    return t.count("total") && t.at("total").size() == 5 && y.count("total") && y.at("total").size() == 5;
  }, 30s);
  INFO(logs());
  REQUIRE(stored);
  const auto yesterday = judger_points(query_port, first - 86400, end - 86400, 86400);

  Browser alice{web_port, ""}, bob{web_port, ""}, nobody{web_port, ""};
  SECTION("the API: sign-in, the user's services only, the judger's minutes exactly, bad input refused") {
    CHECK(alice.sign_in("alice", "wrong") == 401);
    CHECK(nobody.send("POST", "/api/login", "{not json").status == 400);
    CHECK(nobody.get("/api/services").status == 401);
    REQUIRE(alice.sign_in("alice", "alice-pw") == 200);
    REQUIRE(bob.sign_in("bob", "bob-pw") == 200);

    const std::string listed = alice.get("/api/services").body;
    CHECK_THAT(listed, Catch::Contains("\"Shop.Api\""));
    CHECK_THAT(listed, !Catch::Contains("Monitor.Judger"));
    CHECK_THAT(bob.get("/api/services").body, !Catch::Contains("Shop.Api"));

    const std::string range = "&from=" + std::to_string(first) + "&to=" + std::to_string(end);
    const auto series = alice.get("/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&servers=total,1,2,3&shift=0,1d" + range);
    REQUIRE(series.status == 200);
    CHECK(dashboard_points(series.body, 0) == today());
    CHECK(dashboard_points(series.body, 86400) == yesterday);
    // One server at a time (another path through the judger's API): the same minutes.
    const auto one = alice.get("/api/series?service=Shop.Api&attr=Orders.Placed&servers=2" + range);
    CHECK(dashboard_points(one.body, 0).at("2") == today().at("2"));
    const auto top = json::parse(alice.get("/api/top?service=Shop.Api&attr=Orders.Placed&n=2" + range).body);
    CHECK(top.at("top").as_array().size() == 2);
    CHECK(top.at("top").at(0).at("server").as_string() == "3");

    // Refused to a user without the role: the data, not only the listing.
    const auto refused = bob.get("/api/series?service=Shop.Api&attr=Orders.Placed" + range);
    CHECK(refused.status == 403);
    CHECK_THAT(error_of(refused), Catch::Contains("not a service of your roles"));
    CHECK(bob.get("/api/top?service=Shop.Api&attr=Orders.Placed").status == 403);
    CHECK(bob.send("POST", "/api/silences", R"({"service": "Shop.Api", "minutes": 10})").status == 403);

    // Bad input: clear errors, no crash.
    const std::pair<std::string, std::string> bad[] = {
        {"/api/series?service=Shop.Nope&attr=Orders.Placed", "has no judger"},
        {"/api/series?service=shop&attr=Orders.Placed", "must be names"},
        {"/api/series?service=Shop.Api&attr=Orders.Placed&from=200&to=100", "from must be"},
        {"/api/series?service=Shop.Api&attr=Orders.Placed&from=0&to=4000000000", "points per line"},
        {"/api/series?service=Shop.Api&attr=Orders.Placed&step=99999999999", "step must be"},
        {"/api/series?service=Shop.Api&attr=Orders.Placed&step=61", "step must be"},
        {"/api/series?service=Shop.Api&attr=Orders.Placed&op=MEDIAN", "op must be"},
        {"/api/series?service=Shop.Api&attr=Orders.Placed&shift=yesterday", "shift takes"},
        {"/api/series?service=Shop.Api&attr=Orders.Placed&servers=-4", "servers takes"},
        {"/api/top?service=Shop.Api&attr=Orders.Placed&n=100000", "n must be"},
        {"/api/nope", "no such endpoint"},
        {"/api/series?service=Shop%zzApi&attr=Orders.Placed", "malformed URL"},
    };
    for (const auto& [target, message] : bad) {
      const auto reply = alice.get(target);
      INFO(target << " -> " << reply.status << " " << reply.body);
      CHECK(reply.status >= 400);
      CHECK(reply.status < 500);
      CHECK_THAT(error_of(reply), Catch::Contains(message));
    }
    std::string servers = "total";
    for (int i = 0; i < 300; ++i) servers.append(",").append(std::to_string(i));
    CHECK_THAT(error_of(alice.get("/api/series?service=Shop.Api&attr=Orders.Placed&servers=" + servers)),
               Catch::Contains("a chart has 1 to 200 lines"));

    // Silences from the dashboard: the user's own, seen by no one else.
    const auto added = alice.send("POST", "/api/silences", R"({"service": "Shop.Api", "minutes": 10, "comment": "deploy"})");
    REQUIRE(added.status == 200);
    const std::string id(json::parse(added.body).at("id").as_string());
    CHECK_THAT(alice.get("/api/silences").body, Catch::Contains(id));
    CHECK_THAT(bob.get("/api/silences").body, !Catch::Contains(id));
    CHECK(bob.send("DELETE", "/api/silences/" + id, "").status == 404);
    const auto listed_by_ctl = monitor::e2e::monitorctl(dir, registry, {"silence", "list"});
    CHECK_THAT(listed_by_ctl.out, Catch::Contains(id));
    CHECK(alice.send("DELETE", "/api/silences/" + id, "").status == 200);

    // The signed-out are refused, and the dashboard's own health is there.
    CHECK(alice.send("POST", "/api/logout", "").status == 200);
    CHECK(alice.get("/api/services").status == 401);
    CHECK(monitor::test::http_get(web_port, "/api/health").status == 200);
    CHECK_THAT(monitor::test::http_get(web_port, "/metrics").body,
               Catch::Contains("monitor_dashboard_requests_refused_total"));
    // Its /metrics parses as Prometheus text, as every daemon's does (issue 10, section 3).
    std::ofstream(dir.file("metrics.txt")) << monitor::test::http_get(web_port, "/metrics").body;
    auto promtool = ChildProcess::spawn({"/bin/sh", "-c", "promtool check metrics < " + dir.file("metrics.txt")},
                                        dir.file("promtool.out"), dir.file("promtool.err"));
    INFO(read_file(dir.file("promtool.out")) << read_file(dir.file("promtool.err")));
    CHECK(promtool.wait_for(30s) == 0);
  }

  SECTION("the web application in headless Chromium") {
    // What the judger's own API says, for the script to compare the chart with.
    json::object expect{{"today", json::object{}}, {"yesterday_shifted", json::object{}}};
    for (const auto& [key, points] : {std::pair{"today", today()}, std::pair{"yesterday_shifted", yesterday}}) {
      for (const auto& [server, minutes] : points) {
        json::object by_time;
        for (const auto& [t, v] : minutes) by_time[std::to_string(t)] = v;
        expect[key].as_object()[server] = by_time;
      }
    }
    std::ofstream(dir.file("expect.json")) << json::serialize(expect);
    const std::string shots = std::string(MONITOR_TEST_OUTPUT_DIR) + "/dashboard";
    std::filesystem::remove_all(shots);
    auto browser = ChildProcess::spawn(
        {"/usr/bin/python3", std::string(MONITOR_TESTS_DIR) + "/browser/dashboard_browser.py", "--url",
         "http://127.0.0.1:" + std::to_string(web_port), "--user", "alice", "--password", "alice-pw", "--other-user",
         "bob", "--other-password", "bob-pw", "--service", "Shop.Api", "--hidden-service", "Monitor.Judger", "--attr",
         "Orders.Placed", "--servers", "total,1,2,3", "--expect", dir.file("expect.json"), "--shots", shots},
        dir.file("browser.out"), dir.file("browser.err"));
    const auto rc = browser.wait_for(180s);
    INFO(read_file(dir.file("browser.out")) << read_file(dir.file("browser.err")) << logs());
    CHECK(rc == 0);
    CHECK(std::filesystem::exists(shots + "/03-chart-with-yesterday.png"));
  }
  dashboard.signal(SIGTERM);
  CHECK(dashboard.wait_for(20s) == 0);
  judger.signal(SIGTERM);
  CHECK(judger.wait_for(20s) == 0);
}

TEST_CASE("issue 10: a chart of a service that moved between judgers within a minute reads that minute exactly, "
          "merged from both",
          "[e2e][issue10][dashboard]") {
  TempDir dir;
  std::filesystem::copy(MONITOR_EXAMPLES_REGISTRY, dir.file("registry"), std::filesystem::copy_options::recursive);
  const std::string registry = "file:" + dir.file("registry");
  const int port1 = free_port(), port2 = free_port(), q1 = free_port(), q2 = free_port(), web_port = free_port();
  auto judger1 = monitor::e2e::spawn_judger(dir, port1, dir.file("judger-1.log"), q1,
                                            {"--name", "judger-1", "--no-self-metrics", "--no-placement",
                                             "--data-dir", dir.file("judger-1")});
  auto judger2 = monitor::e2e::spawn_judger(dir, port2, dir.file("judger-2.log"), q2,
                                            {"--name", "judger-2", "--no-self-metrics", "--no-placement",
                                             "--data-dir", dir.file("judger-2")});
  auto dashboard = ChildProcess::spawn({MONITOR_DASHBOARD_PATH, "--listen", "127.0.0.1:" + std::to_string(web_port),
                                        "--registry", registry, "--no-self-metrics"},
                                       "", dir.file("dashboard.log"));
  REQUIRE(wait_until([&] {
    return monitor::e2e::monitorctl(dir, registry, {"judger", "list"}).out.find("judger-2  live") != std::string::npos;
  }, 20s));
  for (const auto& args : std::vector<std::vector<std::string>>{{"role", "add", "shop", "Shop.*"},
                                                                {"user", "add", "alice", "--new-password", "pw", "--role", "shop"}}) {
    REQUIRE(monitorctl_ok(dir, registry, args));
  }
  const int64_t now = monitor::e2e::unix_now_s();
  const int64_t minute = now - now % 60 - 5 * 60;
  // Part of the minute reaches judger-1; then the service moves and the rest reaches judger-2.
  {
    monitor::e2e::BatchSender sender(port1, 901, {{1, "Shop.Api", "Orders.Placed"}});
    sender.send({monitor::e2e::BatchSender::record(1, 1, minute + 3, 40, 1 | 2), 
                 monitor::e2e::BatchSender::record(1, 2, minute + 4, 7, 1 | 2)});
  }
  REQUIRE(monitorctl_ok(dir, registry, {"service", "assign", "Shop.Api", "judger-2"}));
  {
    monitor::e2e::BatchSender sender(port2, 902, {{1, "Shop.Api", "Orders.Placed"}});
    sender.send({monitor::e2e::BatchSender::record(1, 1, minute + 30, 5, 1 | 2),
                 monitor::e2e::BatchSender::record(1, 3, minute + 31, 11, 1 | 2)});
  }
  Browser alice{web_port, ""};
  REQUIRE(alice.sign_in("alice", "pw") == 200);
  const std::string target = "/api/series?service=Shop.Api&attr=Orders.Placed&servers=total,1,2,3&from=" +
                             std::to_string(minute) + "&to=" + std::to_string(minute + 60) + "&op=";
  std::string body;
  const bool merged = wait_until([&] {
    body = alice.get(target + "SUM").body;
    const auto points = dashboard_points(body, 0);
    return points.count("total") && points.at("total").count(minute) && points.at("total").at(minute) == 63;
  }, 30s);
  INFO(body << "\njudger-1:\n" << read_file(dir.file("judger-1.log")) << "\njudger-2:\n" << read_file(dir.file("judger-2.log"))
            << "\ndashboard:\n" << read_file(dir.file("dashboard.log")));
  REQUIRE(merged);
  using Points = std::map<std::string, std::map<int64_t, double>>;
  CHECK(dashboard_points(body, 0) == Points{{"total", {{minute, 63}}}, {"1", {{minute, 45}}}, {"2", {{minute, 7}}},
                                            {"3", {{minute, 11}}}});
  CHECK(dashboard_points(alice.get(target + "MAX").body, 0) ==
        Points{{"total", {{minute, 40}}}, {"1", {{minute, 40}}}, {"2", {{minute, 7}}}, {"3", {{minute, 11}}}});
  // Each judger alone holds only its part: the merge is the dashboard's.
  CHECK(judger_points(q1, minute, minute + 60).at("total").at(minute) == 47);
  dashboard.signal(SIGTERM);
  CHECK(dashboard.wait_for(20s) == 0);
}

TEST_CASE("issue 10: on etcd the dashboard signs in the console's users with etcd's own password check and shows "
          "them the services of their roles",
          "[e2e][issue10][dashboard]") {
  monitor::test::EtcdServer etcd;
  TempDir dir;
  const std::string reg = etcd.address();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"service", "add", "Shop.Api"}, {"service", "add", "Pay.Gateway"}, {"role", "add", "shop", "Shop.*"},
           {"user", "add", "alice", "--new-password", "alice-pw", "--role", "shop"},
           {"auth", "enable", "--root-password", "root-pw"}}) {
    REQUIRE(monitorctl_ok(dir, reg, args));
  }
  const int web_port = free_port();
  // The dashboard reads the registry as a user of its own (here root), as every part does once auth is on.
  auto dashboard = ChildProcess::spawn({MONITOR_DASHBOARD_PATH, "--listen", "127.0.0.1:" + std::to_string(web_port),
                                        "--registry", reg, "--no-self-metrics"},
                                       "", dir.file("dashboard.log"),
                                       {"MONITOR_REGISTRY_USER=root", "MONITOR_REGISTRY_PASSWORD=root-pw"});
  REQUIRE(wait_until([&] { return monitor::test::http_get(web_port, "/api/health").status == 200; }, 15s));
  INFO(read_file(dir.file("dashboard.log")));
  Browser alice{web_port, ""};
  CHECK(alice.sign_in("alice", "guess") == 401);
  CHECK(alice.sign_in("nobody", "alice-pw") == 401);
  REQUIRE(alice.sign_in("alice", "alice-pw") == 200);
  const std::string services = alice.get("/api/services").body;
  CHECK_THAT(services, Catch::Contains("Shop.Api") && !Catch::Contains("Pay.Gateway"));
  CHECK(alice.get("/api/series?service=Pay.Gateway&attr=Orders.Paid").status == 403);
  dashboard.signal(SIGTERM);
  CHECK(dashboard.wait_for(20s) == 0);
}

TEST_CASE("issue 20: charts waiting on a judger that never answers do not hold the dashboard's HTTP threads",
          "[e2e][issue20][dashboard]") {
  TempDir dir;
  std::filesystem::copy(MONITOR_EXAMPLES_REGISTRY, dir.file("registry"), std::filesystem::copy_options::recursive);
  const std::string registry = "file:" + dir.file("registry");
  const int port = free_port(), query_port = free_port(), web_port = free_port();
  auto judger = monitor::e2e::spawn_judger(dir, port, dir.file("judger.log"), query_port,
                                           {"--name", "judger-1", "--no-self-metrics", "--no-placement"});
  // Two HTTP threads, fewer than the charts that will wait.
  auto dashboard = ChildProcess::spawn({MONITOR_DASHBOARD_PATH, "--listen", "127.0.0.1:" + std::to_string(web_port),
                                        "--registry", registry, "--no-self-metrics", "--threads", "2",
                                        "--judger-timeout", "10"},
                                       "", dir.file("dashboard.log"));
  REQUIRE(wait_until([&] { return monitor::test::http_get(web_port, "/api/health").status == 200; }, 15s));
  REQUIRE(wait_until([&] { return monitor::test::http_get(query_port, "/api/health").status == 200; }, 15s));
  REQUIRE(monitorctl_ok(dir, registry, {"role", "add", "shop", "Shop.*"}));
  REQUIRE(monitorctl_ok(dir, registry, {"user", "add", "alice", "--new-password", "alice-pw", "--role", "shop"}));
  Browser alice{web_port, ""};
  REQUIRE(alice.sign_in("alice", "alice-pw") == 200);
  const std::string chart = "/api/series?service=Shop.Api&attr=Orders.Placed&servers=1";
  REQUIRE(alice.get(chart).status == 200);

  // The judger stops answering (its socket still accepts): each chart waits for it.
  judger.signal(SIGSTOP);
  std::atomic<int> charts_done{0};
  std::vector<std::thread> charts;
  for (int i = 0; i < 4; ++i) {
    charts.emplace_back([&] {
      monitor::test::http_request(web_port, "GET", chart, "", alice.cookie_header(), 30s);
      ++charts_done;
    });
  }
  // Until the dashboard has all four under way, then the rest of it answers at once.
  const bool under_way = wait_until([&] {
    const auto health = monitor::test::http_request(web_port, "GET", "/api/health", "", "", 2s);
    if (health.status != 200) return false;
    boost::system::error_code ec;
    const json::value body = json::parse(health.body, ec);
    const auto* running = !ec && body.is_object() ? body.as_object().if_contains("api_running") : nullptr;
    return running != nullptr && running->is_number() && running->to_number<int64_t>() == 4;
  }, 5s);
  const auto health = monitor::test::http_request(web_port, "GET", "/api/health", "", "", 2s);
  const auto page = monitor::test::http_request(web_port, "GET", "/", "", "", 2s);
  const auto services = monitor::test::http_request(web_port, "GET", "/api/services", "", alice.cookie_header(), 2s);
  const int done_meanwhile = charts_done.load();
  judger.signal(SIGCONT);
  for (auto& t : charts) t.join();
  INFO("dashboard:\n" << read_file(dir.file("dashboard.log")));
  CHECK(under_way);
  CHECK(health.status == 200);
  CHECK(page.status == 200);
  CHECK(services.status == 200);
  CHECK(done_meanwhile == 0);  // the charts were still waiting: the answers above did not wait behind them
  judger.signal(SIGTERM);
  dashboard.signal(SIGTERM);
  CHECK(dashboard.wait_for(20s) == 0);
}
