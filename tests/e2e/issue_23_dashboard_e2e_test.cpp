// Issue 23, section 2, the dashboard: no client can take it from the others.
// A real dashboard over a file registry, its clients on other loopback
// addresses (127.0.0.2, 127.0.0.3) where a test needs several: files only
// from inside the web root; a user's sign-ins end the user's oldest session
// instead of filling the table; guessing is throttled per user and per
// address; state changes only as JSON from the dashboard's own origin; an
// unknown user refused as slowly as a wrong password; one address's idle
// connections leave room for everyone else.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "e2e/monitorctl_run.hpp"
#include "support/child_process.hpp"
#include "net/http_get.hpp"
#include "support/temp_names.hpp"
#include "support/test_pki.hpp"
#include "support/wire_client.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::free_port;
using monitor::test::HttpReply;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::wait_until;
namespace json = boost::json;

namespace {

// A dashboard over a registry with users alice and bob, on its own port.
struct Dashboard {
  TempDir& dir;
  int port = free_port();
  std::string registry;
  std::unique_ptr<ChildProcess> process;

  Dashboard(TempDir& d, const std::vector<std::string>& extra) : dir(d) {
    std::filesystem::copy(MONITOR_EXAMPLES_REGISTRY, dir.file("registry"), std::filesystem::copy_options::recursive);
    registry = "file:" + dir.file("registry");
    std::vector<std::string> args{MONITOR_DASHBOARD_PATH, "--listen", "127.0.0.1:" + std::to_string(port), "--registry",
                                  registry, "--no-self-metrics"};
    args.insert(args.end(), extra.begin(), extra.end());
    process = std::make_unique<ChildProcess>(ChildProcess::spawn(args, "", dir.file("dashboard.log")));
    REQUIRE(wait_until([&] { return monitor::test::http_get(port, "/api/health").status == 200; }, 15s));
    for (const auto& command : std::vector<std::vector<std::string>>{
             {"role", "add", "shop", "Shop.*"},
             {"user", "add", "alice", "--new-password", "alice-pw", "--role", "shop"},
             {"user", "add", "bob", "--new-password", "bob-pw", "--role", "shop"}}) {
      const auto run = monitor::e2e::monitorctl(dir, registry, command);
      INFO(run.out << run.err);
      REQUIRE(run.rc == 0);
    }
  }
  std::string log() const { return read_file(dir.file("dashboard.log")); }

  HttpReply send(const std::string& method, const std::string& target, const std::string& body,
                 const std::string& headers, const std::string& source = "") const {
    return monitor::test::http_request(port, method, target, body, headers, 5s, source);
  }
  HttpReply sign_in(const std::string& user, const std::string& password, const std::string& source = "") const {
    return send("POST", "/api/login", json::serialize(json::object{{"user", user}, {"password", password}}),
                "Content-Type: application/json\r\n", source);
  }
  int64_t health(const char* key) const {
    const auto reply = monitor::test::http_get(port, "/api/health");
    boost::system::error_code ec;
    const json::value body = json::parse(reply.body, ec);
    const auto* value = !ec && body.is_object() ? body.as_object().if_contains(key) : nullptr;
    return reply.status == 200 && value != nullptr ? value->to_number<int64_t>() : -1;
  }
};

// The session cookie an answer set ("monitor_session=…"), or "".
std::string cookie_of(const HttpReply& reply) {
  const size_t at = reply.headers.find("Set-Cookie: ");
  if (at == std::string::npos) return "";
  const std::string value = reply.headers.substr(at + 12);
  return value.substr(0, value.find(';'));
}

std::string header_of(const HttpReply& reply, const std::string& name) {
  const size_t at = reply.headers.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  const std::string value = reply.headers.substr(at + name.size() + 4);
  return value.substr(0, value.find("\r\n"));
}

}  // namespace

TEST_CASE("issue 23: the dashboard serves files only from inside its web root", "[e2e][issue23][dashboard]") {
  TempDir dir;
  const std::string root = dir.file("web");
  std::filesystem::create_directories(root);
  std::ofstream(root + "/index.html") << "<html>the application</html>";
  std::ofstream(root + "/app.js") << "// the application's code";
  std::ofstream(dir.file("web-secret.txt")) << "beside the root";
  std::ofstream(dir.file("secret.txt")) << "above the root";
  std::filesystem::create_symlink(dir.file("secret.txt"), root + "/link.txt");
  Dashboard dashboard(dir, {"--web-root", root});
  auto get = [&](const std::string& target) { return dashboard.send("GET", target, "", ""); };

  CHECK(get("/").body == "<html>the application</html>");
  CHECK(get("/app.js").status == 200);
  for (const std::string target : {"-secret.txt", "/../secret.txt", "/%2e%2e/secret.txt", "/link.txt",
                                   "//etc/hostname", "/../web-secret.txt", "/."}) {
    INFO(target);
    const auto reply = get(target);
    CHECK(reply.status != 200);
    CHECK(reply.body.find("root") == std::string::npos);
  }
}

TEST_CASE("issue 23: a user's sign-ins end the user's oldest session instead of filling the table, and guessing "
          "is throttled per user and per address while others sign in",
          "[e2e][issue23][dashboard]") {
  TempDir dir;
  Dashboard dashboard(dir, {"--max-sessions-per-user", "3", "--sign-in-free-failures", "3",
                            "--sign-in-max-delay-s", "4"});
  auto me = [&](const std::string& cookie) {
    return dashboard.send("GET", "/api/me", "", "Cookie: " + cookie + "\r\n").status;
  };

  // Sessions: the fourth of alice's ends her first; many more refuse nobody.
  std::vector<std::string> cookies;
  for (int i = 0; i < 4; ++i) {
    const auto reply = dashboard.sign_in("alice", "alice-pw");
    REQUIRE(reply.status == 200);
    cookies.push_back(cookie_of(reply));
  }
  CHECK(me(cookies[0]) == 401);
  CHECK(me(cookies[1]) == 200);
  CHECK(me(cookies[3]) == 200);
  for (int i = 0; i < 30; ++i) REQUIRE(dashboard.sign_in("alice", "alice-pw").status == 200);
  CHECK(dashboard.health("sessions") == 3);
  CHECK(dashboard.sign_in("bob", "bob-pw").status == 200);

  // Guessing bob's password from 127.0.0.2: three free failures; the fourth
  // starts a wait of 1 s, and each failure after a wait doubles it (2 s, 4 s).
  for (int i = 0; i < 4; ++i) CHECK(dashboard.sign_in("bob", "guess", "127.0.0.2").status == 401);
  CHECK(dashboard.sign_in("bob", "guess", "127.0.0.2").status == 429);
  for (int i = 0; i < 2; ++i) {
    CHECK(wait_until([&] { return dashboard.sign_in("bob", "guess", "127.0.0.2").status == 401; }, 10s));
  }
  const auto held = dashboard.sign_in("bob", "bob-pw", "127.0.0.2");
  CHECK(held.status == 429);
  CHECK(!header_of(held, "Retry-After").empty());
  // Bob is held from any address; alice from another address is not.
  CHECK(dashboard.sign_in("bob", "bob-pw", "127.0.0.3").status == 429);
  CHECK(dashboard.sign_in("alice", "alice-pw", "127.0.0.3").status == 200);
  // The guessing address is held for any user.
  CHECK(dashboard.sign_in("alice", "alice-pw", "127.0.0.2").status == 429);
  // The wait ends: bob signs in again.
  CHECK(wait_until([&] { return dashboard.sign_in("bob", "bob-pw", "127.0.0.3").status == 200; }, 10s));
  CHECK(dashboard.health("sign_ins_throttled") >= 3);
}

TEST_CASE("issue 23: the dashboard's state changes only as JSON from its own origin", "[e2e][issue23][dashboard]") {
  TempDir dir;
  Dashboard dashboard(dir, {});
  const std::string cookie = cookie_of(dashboard.sign_in("alice", "alice-pw"));
  REQUIRE(!cookie.empty());
  const std::string with_cookie = "Cookie: " + cookie + "\r\n";
  auto signed_in = [&] { return dashboard.send("GET", "/api/me", "", with_cookie).status == 200; };

  // A form of another site can send text/plain, with the cookie on the same host.
  CHECK(dashboard.send("POST", "/api/logout", "{}", with_cookie + "Content-Type: text/plain\r\n").status == 415);
  CHECK(dashboard.send("POST", "/api/logout", "{}", with_cookie).status == 415);
  CHECK(signed_in());
  // A page on another port of this host.
  const std::string other = "Origin: http://127.0.0.1:" + std::to_string(free_port()) + "\r\n";
  CHECK(dashboard.send("POST", "/api/logout", "{}", with_cookie + "Content-Type: application/json\r\n" + other).status ==
        403);
  CHECK(dashboard.send("DELETE", "/api/silences/x", "{}", with_cookie + "Content-Type: application/json\r\n" + other)
            .status == 403);
  CHECK(dashboard.send("POST", "/api/login", R"({"user":"alice","password":"alice-pw"})",
                       "Content-Type: application/json\r\n" + other)
            .status == 403);
  CHECK(signed_in());
  CHECK(dashboard.health("cross_origin_refused") == 5);
  // The dashboard's own page (Origin = its Host), and clients that send no Origin.
  CHECK(dashboard.send("POST", "/api/logout", "{}",
                       with_cookie + "Content-Type: application/json; charset=utf-8\r\nOrigin: http://127.0.0.1\r\n")
            .status == 200);
  CHECK_FALSE(signed_in());
}

TEST_CASE("issue 23: a sign-in as an unknown user is refused as slowly as one with a wrong password",
          "[e2e][issue23][dashboard]") {
  TempDir dir;
  Dashboard dashboard(dir, {"--sign-in-free-failures", "1000000"});
  // Interleaved, the median of each: a ratio within one run, not a time.
  std::vector<double> wrong_password, unknown_user;
  auto time_of = [&](const std::string& user) {
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(dashboard.sign_in(user, "guess").status == 401);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  for (int i = 0; i < 25; ++i) {
    wrong_password.push_back(time_of("alice"));
    unknown_user.push_back(time_of("nobody" + std::to_string(i)));
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  INFO("median wrong password " << median(wrong_password) * 1e3 << " ms, unknown user " << median(unknown_user) * 1e3
                                << " ms");
  // Without the decoy hash, an unknown user was refused 6-7 times faster.
  CHECK(median(unknown_user) >= 0.5 * median(wrong_password));
}

TEST_CASE("issue 23: one address's idle connections leave the dashboard to everyone else", "[e2e][issue23][dashboard]") {
  TempDir dir;
  Dashboard dashboard(dir, {"--max-connections", "256", "--max-connections-per-address", "32"});
  // More idle connections from 127.0.0.2 than the dashboard takes at all.
  std::vector<std::unique_ptr<monitor::test::WireClient>> idle;
  for (int i = 0; i < 300; ++i) idle.push_back(std::make_unique<monitor::test::WireClient>(dashboard.port, 5s, "127.0.0.2"));
  // The dashboard closes those past the address's share at accept.
  CHECK(wait_until([&] { return dashboard.health("connections_refused") >= 300 - 32; }, 15s));
  const auto reply = dashboard.sign_in("alice", "alice-pw");
  INFO(dashboard.log());
  CHECK(reply.status == 200);
}

// The issue's first finding: alice, refused Payroll.Secret by the dashboard,
// asked its /api/judgers for the judgers' query addresses and read every
// service from the judger's API with no credential.
TEST_CASE("issue 23: the judger's query API asks for a user's token and applies the user's roles, and the dashboard "
          "gives no judger address to a user who cannot use it",
          "[e2e][issue23][dashboard][judger]") {
  TempDir dir;
  Dashboard dashboard(dir, {});
  for (const auto& command : std::vector<std::vector<std::string>>{
           {"role", "add", "ops", "*"}, {"user", "add", "carol", "--new-password", "carol-pw", "--role", "ops"}}) {
    const auto run = monitor::e2e::monitorctl(dir, dashboard.registry, command);
    REQUIRE(run.rc == 0);
  }
  const auto token_of = [&](const std::string& user) {
    const auto run = monitor::e2e::monitorctl(dir, dashboard.registry, {"user", "token", user, "--output", "json"});
    INFO(run.out << run.err);
    REQUIRE(run.rc == 0);
    return std::string(json::parse(run.out).at("token").as_string());
  };
  const std::string alice = token_of("alice"), carol = token_of("carol");
  CHECK(alice.starts_with("alice:"));
  CHECK(read_file(dir.file("registry/users/alice.json")).find(alice.substr(6)) == std::string::npos);  // only its hash

  const int query_port = free_port();
  auto judger = ChildProcess::spawn({MONITOR_JUDGER_PATH, "--listen", "127.0.0.1:" + std::to_string(free_port()),
                                     "--query-listen", "127.0.0.1:" + std::to_string(query_port), "--data-dir",
                                     dir.file("judger"), "--registry", dashboard.registry, "--no-self-metrics",
                                     "--query-tokens"},
                                    "", dir.file("judger.log"));
  const auto ask = [&](const std::string& target, const std::string& token) {
    return monitor::test::http_request(query_port, "GET", target, "",
                                       token.empty() ? "" : "Authorization: Bearer " + token + "\r\n", 5s);
  };
  REQUIRE(wait_until([&] { return ask("/api/health", "").status == 401; }, 15s));
  INFO(read_file(dir.file("judger.log")));
  const std::string secret = "/api/series?service=Payroll.Secret&attr=Salary.Paid&op=SUM";
  const std::string shop = "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM";
  CHECK(ask(secret, "").status == 401);
  CHECK(ask(secret, "alice:" + std::string(32, '0')).status == 401);
  CHECK(ask(secret, "mallory:" + alice.substr(6)).status == 401);
  CHECK(ask(secret, alice).status == 403);
  CHECK(ask(shop, alice).status == 200);
  CHECK(ask("/api/alarms/history", alice).status == 403);
  CHECK(ask(secret, carol).status == 200);
  CHECK(ask("/api/alarms/history", carol).status == 200);
  const auto health = json::parse(ask("/api/health", carol).body);
  CHECK(health.at("queries_refused").to_number<int64_t>() >= 5);

  // monitorctl query shows the token it is given.
  const std::vector<std::string> query = {"query", "--service", "Shop.Api", "--attr", "Orders.Placed",
                                          "--query-address", "127.0.0.1:" + std::to_string(query_port)};
  const auto refused = monitor::e2e::monitorctl(dir, "", query);
  CHECK(refused.rc != 0);
  CHECK_THAT(refused.err + refused.out, Catch::Contains("token"));
  const auto served = monitor::e2e::monitorctl(dir, "", query, {"MONITOR_TOKEN=" + alice});
  INFO(served.out << served.err);
  CHECK(served.rc == 0);

  // The dashboard: judgers' addresses only for those who see every service.
  const auto judgers = [&](const std::string& user, const std::string& password) {
    const std::string cookie = cookie_of(dashboard.sign_in(user, password));
    const auto reply = dashboard.send("GET", "/api/judgers", "", "Cookie: " + cookie + "\r\n");
    REQUIRE(reply.status == 200);
    return json::parse(reply.body).at("judgers").as_array();
  };
  REQUIRE(wait_until([&] { return !judgers("carol", "carol-pw").empty(); }, 15s));
  CHECK(judgers("carol", "carol-pw")[0].as_object().contains("query"));
  for (const auto& j : judgers("alice", "alice-pw")) {
    CHECK_FALSE(j.as_object().contains("query"));
    CHECK_FALSE(j.as_object().contains("address"));
  }
  judger.signal(SIGTERM);
  CHECK(judger.wait_for(20s) == 0);
}

// Issue 23, section 1: tokens and session cookies crossed the network in the
// clear; the judger's query API and the dashboard now serve HTTPS, and a
// judger's certificate is a credential for another judger's API.
TEST_CASE("issue 23: over HTTPS the judger's query API takes a user's token or a judger's certificate, and the "
          "dashboard signs users in with a Secure cookie and reaches the judger over HTTPS",
          "[e2e][issue23][dashboard][judger][tls]") {
  TempDir dir;
  monitor::test::TestPki pki;
  const auto served = pki.issue("https", "localhost", "--ip 127.0.0.1 --dns localhost");
  const auto own = pki.issue("judger", "j1");
  const auto other_judger = pki.issue("judger", "j2");
  const auto agent = pki.issue("agent", "5");
  std::filesystem::copy(MONITOR_EXAMPLES_REGISTRY, dir.file("registry"), std::filesystem::copy_options::recursive);
  const std::string registry = "file:" + dir.file("registry");
  for (const auto& command : std::vector<std::vector<std::string>>{
           {"role", "add", "shop", "Shop.*"},
           {"role", "add", "ops", "*"},
           {"user", "add", "alice", "--new-password", "alice-pw", "--role", "shop"},
           {"user", "add", "carol", "--new-password", "carol-pw", "--role", "ops"}}) {
    REQUIRE(monitor::e2e::monitorctl(dir, registry, command).rc == 0);
  }
  const auto token_of = [&](const std::string& user) {
    const auto run = monitor::e2e::monitorctl(dir, registry, {"user", "token", user, "--output", "json"});
    REQUIRE(run.rc == 0);
    return std::string(json::parse(run.out).at("token").as_string());
  };
  const std::string alice = token_of("alice"), carol = token_of("carol");

  const int query_port = free_port();
  const std::string query_address = "127.0.0.1:" + std::to_string(query_port);
  auto judger = ChildProcess::spawn({MONITOR_JUDGER_PATH, "--listen", "127.0.0.1:" + std::to_string(free_port()),
                                     "--query-listen", query_address, "--data-dir", dir.file("judger"), "--registry",
                                     registry, "--no-self-metrics", "--query-tokens", "--https-cert", served.cert,
                                     "--https-key", served.key, "--tls-ca", pki.ca(), "--tls-cert", own.cert,
                                     "--tls-key", own.key, "--query-ca", pki.ca()},
                                    "", dir.file("judger.log"));
  const auto client = monitor::net::make_https_client(pki.ca());
  const auto ask = [&](boost::asio::ssl::context& as, const std::string& target, const std::string& token) {
    return monitor::test::https_request(query_port, as, "GET", target, "",
                                        token.empty() ? "" : "Authorization: Bearer " + token + "\r\n");
  };
  REQUIRE(wait_until([&] { return ask(*client, "/api/health", "").status == 401; }, 15s));
  INFO(read_file(dir.file("judger.log")));
  const std::string secret = "/api/series?service=Payroll.Secret&attr=Salary.Paid&op=SUM";
  const std::string shop = "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM";
  // Plain HTTP gets no answer at all: the token would have crossed in the clear.
  CHECK(monitor::test::http_request(query_port, "GET", shop, "", "Authorization: Bearer " + alice + "\r\n").status == 0);
  CHECK(ask(*client, shop, "").status == 401);
  CHECK(ask(*client, shop, alice).status == 200);
  CHECK(ask(*client, secret, alice).status == 403);
  // A judger's certificate of the deployment is a credential that sees everything; an agent's is none.
  const auto as_judger = monitor::net::make_https_client(pki.ca(), other_judger.cert, other_judger.key);
  CHECK(ask(*as_judger, secret, "").status == 200);
  CHECK(ask(*as_judger, "/api/alarms/history", "").status == 200);
  const auto as_agent = monitor::net::make_https_client(pki.ca(), agent.cert, agent.key);
  CHECK(ask(*as_agent, secret, "").status == 401);

  // monitorctl reaches it with --query-ca (or $MONITOR_QUERY_CA), and not without.
  const std::vector<std::string> query = {"query", "--service", "Shop.Api", "--attr", "Orders.Placed",
                                          "--query-address", query_address};
  const auto plain = monitor::e2e::monitorctl(dir, "", query, {"MONITOR_TOKEN=" + alice});
  CHECK(plain.rc != 0);
  const auto over_https = monitor::e2e::monitorctl(dir, "", query, {"MONITOR_TOKEN=" + alice, "MONITOR_QUERY_CA=" + pki.ca()});
  INFO(over_https.out << over_https.err);
  CHECK(over_https.rc == 0);

  // The dashboard over HTTPS, reaching the judger over HTTPS with carol's token.
  const int web_port = free_port();
  // (--judger-token was named --judger-timeout, so the flag could not give a token.)
  auto dashboard = ChildProcess::spawn({MONITOR_DASHBOARD_PATH, "--listen", "127.0.0.1:" + std::to_string(web_port),
                                        "--registry", registry, "--no-self-metrics", "--https-cert", served.cert,
                                        "--https-key", served.key, "--query-ca", pki.ca(), "--judger-token", carol},
                                       "", dir.file("dashboard.log"));
  const auto web = [&](const std::string& method, const std::string& target, const std::string& body,
                       const std::string& headers) {
    return monitor::test::https_request(web_port, *client, method, target, body, headers);
  };
  REQUIRE(wait_until([&] { return web("GET", "/api/health", "", "").status == 200; }, 15s));
  INFO(read_file(dir.file("dashboard.log")));
  CHECK(monitor::test::http_get(web_port, "/api/health").status == 0);
  const auto signed_in = web("POST", "/api/login", R"({"user":"alice","password":"alice-pw"})",
                             "Content-Type: application/json\r\nOrigin: https://127.0.0.1\r\n");
  REQUIRE(signed_in.status == 200);
  const std::string set_cookie = header_of(signed_in, "Set-Cookie");
  CHECK_THAT(set_cookie, Catch::Contains("; Secure"));
  const std::string cookie = "Cookie: " + cookie_of(signed_in) + "\r\n";
  // An http:// page may not sign anybody out of an https:// dashboard.
  CHECK(web("POST", "/api/logout", "{}", cookie + "Content-Type: application/json\r\nOrigin: http://127.0.0.1\r\n")
            .status == 403);
  // A chart of Shop.Api: the dashboard asks the judger, over HTTPS, once the judger holds the service.
  const std::string chart = "/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM";
  REQUIRE(wait_until([&] { return web("GET", chart, "", cookie).status == 200; }, 30s));
  const auto health = json::parse(web("GET", "/api/health", "", "").body);
  CHECK(health.at("judger_errors").to_number<int64_t>() == 0);

  dashboard.signal(SIGTERM);
  CHECK(dashboard.wait_for(20s) == 0);
  judger.signal(SIGTERM);
  CHECK(judger.wait_for(20s) == 0);
}
