#include "dashboard/dashboard_api.hpp"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "alarm/admin.hpp"
#include "alarm/records.hpp"
#include "common/clock.hpp"
#include "registry/etcd_gateway.hpp"
#include "registry/groups.hpp"
#include "registry/parts.hpp"
#include "registry/placement.hpp"
#include "monitor/monitor.hpp"
#include "net/query_string.hpp"
#include "query/judger_client.hpp"
#include "query/series_merge.hpp"

namespace monitor::dashboard {
namespace json = boost::json;
using net::parse_int;
namespace {

constexpr const char* kCookie = "monitor_session";
constexpr size_t kMaxSeries = 200;               // servers x shifts of one chart
constexpr int64_t kMaxPointsPerSeries = 20'000;  // (to - from) / step
constexpr int64_t kLatest = 4'102'444'800;       // 2100-01-01
constexpr size_t kJudgerCallsPerChart = 8;       // judger calls of one chart under way at once

// fn(0) .. fn(n - 1) on up to `width` threads (this one among them); the
// first exception any of them threw is thrown here, after all have ended.
void parallel_for(size_t n, size_t width, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::mutex failed_mutex;
  std::exception_ptr failed;
  auto work = [&] {
    for (size_t i = next++; i < n; i = next++) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard lock(failed_mutex);
        if (!failed) failed = std::current_exception();
      }
    }
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < std::min(n, width); ++t) helpers.emplace_back(work);
  work();
  for (auto& h : helpers) h.join();
  if (failed) std::rethrow_exception(failed);
}

int64_t now_s() { return realtime_ns() / 1'000'000'000; }

ApiResponse error(int status, const std::string& message) {
  return {status, json::serialize(json::object{{"error", message}}), ""};
}
ApiResponse ok(const json::value& body) { return {200, json::serialize(body), ""}; }

std::string random_token() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n <= 0) return "";
    got += static_cast<size_t>(n);
  }
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

// "1d", "7d", "3h", "90m" or seconds.
bool parse_duration(const std::string& text, int64_t& out) {
  if (text.empty()) return false;
  const char unit = text.back();
  const int64_t scale = unit == 'd' ? 86400 : unit == 'h' ? 3600 : unit == 'm' ? 60 : unit == 's' ? 1 : 0;
  const std::string digits = scale == 0 ? text : text.substr(0, text.size() - 1);
  if (!parse_int(digits, out) || out < 0 || out > 400 * 86400) return false;
  out *= scale == 0 ? 1 : scale;
  return out <= 400 * 86400;
}

std::vector<std::string> split(const std::string& text, char by) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(by, start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

const std::set<std::string>& op_names() {
  static const std::set<std::string> names{"SUM", "MAX", "MIN", "AVG", "FIRST", "LAST", "COUNT",
                                           "HIST_P50", "HIST_P90", "HIST_P99", "HIST_P999"};
  return names;
}

std::optional<json::value> parse_json(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return std::nullopt;
  return v;
}

std::string string_field(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

DashboardApi::DashboardApi(registry::Registry& registry, ApiOptions options)
    : registry_(registry),
      options_(std::move(options)),
      throttle_(options_.sign_in_throttle),
      decoy_hash_(registry::hash_password(random_token())) {}

size_t DashboardApi::sessions() const {
  std::lock_guard lock(sessions_mutex_);
  return sessions_.size();
}

ApiResponse DashboardApi::handle(const ApiRequest& request) {
  ++counters_.requests;
  const std::string& path = request.path;
  if (path == "/api/login" && request.method == "POST") return sign_in(request);
  if (path == "/api/logout" && request.method == "POST") return sign_out(request);
  const auto access = signed_in(request);
  if (!access) {
    ++counters_.refused;
    return error(401, "sign in first (POST /api/login)");
  }
  try {
    if (request.method == "GET") {
      if (path == "/api/me") {
        json::array patterns;
        for (const auto& p : access->patterns) patterns.push_back(json::value(p.text));
        return ok(json::object{{"user", access->user}, {"roles", json::value_from(access->roles)},
                               {"patterns", patterns}});
      }
      if (path == "/api/services") return services(*access);
      if (path == "/api/series") return series(*access, request);
      if (path == "/api/top") return top(*access, request);
      if (path == "/api/hosts") return hosts(*access, request);
      if (path == "/api/judgers") return judgers(*access);
      if (path == "/api/parts") return parts(*access);
      if (path == "/api/alarms") return alarms(*access);
      if (path == "/api/alarms/history") return alarm_history(*access, request);
      if (path == "/api/silences") return silences(*access);
    } else if (request.method == "POST") {
      if (path == "/api/alarms/ack") return ack(*access, request);
      if (path == "/api/silences") return add_silence(*access, request);
    } else if (request.method == "DELETE" && path.starts_with("/api/silences/")) {
      return remove_silence(*access, path.substr(std::string_view("/api/silences/").size()));
    }
  } catch (const std::exception& e) {
    // The registry's JSON accessors throw on entries of an unexpected shape.
    spdlog::warn("{} {}: {}", request.method, path, e.what());
    return error(500, std::string("internal error: ") + e.what());
  }
  ++counters_.bad_requests;
  return error(404, "no such endpoint: " + request.method + " " + path + " (docs/dashboard.md lists them)");
}

bool DashboardApi::read_kind(std::string_view kind, std::vector<registry::Entry>& out, ApiResponse& failed) {
  std::lock_guard lock(registry_mutex_);
  auto entries = registry_.list(kind);
  if (!entries) {
    failed = error(503, fmt::format("reading the {}: {}", kind, entries.error().message()));
    return false;
  }
  out = std::move(*entries);
  return true;
}

// ---- sign-in -------------------------------------------------------------

bool DashboardApi::password_ok(const std::string& user, const std::string& password, std::string& why) {
  std::optional<registry::Entry> entry;
  {
    std::lock_guard lock(registry_mutex_);
    auto got = registry_.get("users", user);
    if (!got) {
      why = "the registry cannot be read: " + got.error().message();
      return false;
    }
    entry = *got;
  }
  const auto* obj = entry ? entry->value.if_object() : nullptr;
  const std::string hash = obj != nullptr ? string_field(*obj, "password_hash") : "";
  if (!hash.empty()) return registry::password_matches(password, hash);
  if (!entry || !options_.registry_address.starts_with("etcd:")) {
    registry::password_matches(password, decoy_hash_);  // for the time it takes
    return false;
  }
  // On etcd, etcd keeps the password: it says whether it is right.
  registry::GatewayOptions gateway;
  gateway.endpoints = split(options_.registry_address.substr(5), ',');
  gateway.user = user;
  gateway.password = password;
  gateway.timeout = std::chrono::milliseconds(options_.judger_timeout_s * 1000);
  registry::EtcdGateway etcd(gateway);
  auto reply = etcd.call("/v3/maintenance/status", {});
  if (!reply && reply.error() != registry::RegistryErrc::kAuthFailed) {
    why = "etcd cannot be reached to check the password: " + reply.error().message();
  }
  return reply.has_value();
}

ApiResponse DashboardApi::sign_in(const ApiRequest& request) {
  const auto body = parse_json(request.body);
  if (!body || !body->is_object()) return error(400, "send {\"user\": …, \"password\": …} as JSON");
  const std::string user = string_field(body->as_object(), "user");
  const std::string password = string_field(body->as_object(), "password");
  if (user.empty() || password.empty() || !registry::is_valid_key(user)) {
    ++counters_.sign_ins_failed;
    return error(401, "wrong user or password");
  }
  if (const int64_t wait = throttle_.wait_s(user, request.address, now_s()); wait > 0) {
    ++counters_.sign_ins_throttled;
    ApiResponse refused = error(429, fmt::format("too many failed sign-ins of this user or from this address: "
                                                 "try again in {} s", wait));
    refused.retry_after_s = wait;
    return refused;
  }
  std::string why;
  if (!password_ok(user, password, why)) {
    ++counters_.sign_ins_failed;
    if (why.empty()) throttle_.failed(user, request.address, now_s());
    spdlog::info("sign-in of {} from {} refused{}{}", user, request.address, why.empty() ? "" : ": ", why);
    return error(why.empty() ? 401 : 503, why.empty() ? "wrong user or password" : why);
  }
  throttle_.succeeded(user);
  registry::UserAccess access;
  {
    std::lock_guard lock(registry_mutex_);
    auto read = registry::read_user_access(registry_, user);
    if (!read) return error(503, "reading the user's roles: " + read.error().message());
    access = std::move(*read);
  }
  const std::string token = random_token();
  if (token.empty()) return error(503, "no random source for a session");
  {
    std::lock_guard lock(sessions_mutex_);
    const int64_t now = now_s();
    std::erase_if(sessions_, [&](const auto& s) { return s.second.expires_s <= now; });
    // One user's sign-ins cannot fill the table for everybody: past its
    // share, the user's oldest session ends.
    auto oldest = sessions_.end();
    size_t mine = 0;
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.user != user) continue;
      ++mine;
      if (oldest == sessions_.end() || it->second.serial < oldest->second.serial) oldest = it;
    }
    if (mine >= options_.max_sessions_per_user && oldest != sessions_.end()) sessions_.erase(oldest);
    if (sessions_.size() >= options_.max_sessions) return error(503, "too many sessions; try again later");
    sessions_[token] = Session{user, ++sessions_started_, access, now + options_.session_ttl_s, now};
  }
  ++counters_.sign_ins;
  spdlog::info("{} signed in (roles {})", user, fmt::join(access.roles, ","));
  json::array patterns;
  for (const auto& p : access.patterns) patterns.push_back(json::value(p.text));
  ApiResponse response = ok(json::object{{"user", user}, {"roles", json::value_from(access.roles)}, {"patterns", patterns}});
  response.set_cookie = fmt::format("{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}", kCookie, token,
                                    options_.session_ttl_s, options_.https ? "; Secure" : "");
  return response;
}

ApiResponse DashboardApi::sign_out(const ApiRequest& request) {
  {
    std::lock_guard lock(sessions_mutex_);
    sessions_.erase(request.session);
  }
  ApiResponse response = ok(json::object{{"ok", true}});
  response.set_cookie =
      fmt::format("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}", kCookie, options_.https ? "; Secure" : "");
  return response;
}

std::optional<registry::UserAccess> DashboardApi::signed_in(const ApiRequest& request) {
  if (request.session.empty()) return std::nullopt;
  const int64_t now = now_s();
  std::string user;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(request.session);
    if (it == sessions_.end()) return std::nullopt;
    if (it->second.expires_s <= now) {
      sessions_.erase(it);
      return std::nullopt;
    }
    if (now - it->second.access_read_s < 5) return it->second.access;
    user = it->second.access.user;
  }
  // Roles granted or revoked since take effect within seconds; a removed user is signed out.
  boost::system::result<registry::UserAccess> read = registry::UserAccess{};
  {
    std::lock_guard lock(registry_mutex_);
    read = registry::read_user_access(registry_, user);
  }
  std::lock_guard lock(sessions_mutex_);
  auto it = sessions_.find(request.session);
  if (it == sessions_.end()) return std::nullopt;
  if (!read) {
    if (read.error() == boost::system::error_code(ENOENT, boost::system::system_category())) {
      sessions_.erase(it);
      return std::nullopt;
    }
    return it->second.access;  // the registry is away: the last known roles hold
  }
  it->second.access = std::move(*read);
  it->second.access_read_s = now;
  return it->second.access;
}

// ---- services and minutes -------------------------------------------------

ApiResponse DashboardApi::services(const registry::UserAccess& access) {
  std::vector<registry::Entry> services, assignments;
  ApiResponse failed;
  if (!read_kind("services", services, failed) || !read_kind("assignments", assignments, failed)) return failed;
  std::map<std::string, std::string> owner;
  for (const auto& a : assignments) owner[a.name] = registry::assigned_judger(a.value);
  json::array out;
  for (const auto& s : services) {
    if (!access.sees(s.name)) continue;
    json::array attrs;
    int64_t id = 0;
    if (const auto* obj = s.value.if_object()) {
      if (const auto* a = obj->if_contains("attrs"); a != nullptr && a->is_object()) {
        for (const auto& [name, attr_id] : a->as_object()) attrs.push_back(json::value(std::string(name)));
      }
      if (const auto* i = obj->if_contains("id"); i != nullptr && i->is_int64()) id = i->as_int64();
    }
    out.push_back(json::object{{"service", s.name}, {"id", id}, {"attrs", attrs}, {"judger", owner[s.name]}});
  }
  return ok(json::object{{"services", out}});
}

bool DashboardApi::holders_of(const std::string& service, int64_t from_s, std::vector<Holder>& out,
                              ApiResponse& failed) {
  std::lock_guard lock(registry_mutex_);
  auto assignment = registry_.get("assignments", service);
  if (!assignment) {
    failed = error(503, "reading the assignment: " + assignment.error().message());
    return false;
  }
  const auto names = *assignment ? registry::judgers_holding((*assignment)->value, from_s) : std::vector<std::string>{};
  for (const auto& name : names) {
    auto query = registry::judger_query(registry_, name);
    if (!query) {
      failed = error(503, "reading judger " + name + ": " + query.error().message());
      return false;
    }
    out.push_back({name, *query});
  }
  return true;
}

std::optional<ApiResponse> DashboardApi::read_chart(const registry::UserAccess& access, const ApiRequest& request,
                                                    Chart& chart) {
  const auto& p = request.params;
  auto param = [&](const char* key, const char* fallback) {
    const auto it = p.find(key);
    return it == p.end() ? std::string(fallback) : it->second;
  };
  auto bad = [&](std::string why) {
    ++counters_.bad_requests;
    return error(400, std::move(why));
  };
  chart.service = param("service", "");
  chart.attr = param("attr", "");
  chart.op = param("op", "SUM");
  if (!is_valid_name(chart.service) || !is_valid_name(chart.attr)) return bad("service and attr must be names like Shop.Api");
  if (!access.sees(chart.service)) {
    ++counters_.refused;
    return error(403, fmt::format("{} is not a service of your roles", chart.service));
  }
  if (op_names().count(chart.op) == 0) {
    return bad("op must be one of SUM MAX MIN AVG FIRST LAST COUNT HIST_P50 HIST_P90 HIST_P99 HIST_P999");
  }
  chart.to = now_s();
  if (p.count("to") && (!parse_int(p.at("to"), chart.to) || chart.to < 0 || chart.to > kLatest)) {
    return bad("to must be Unix seconds");
  }
  chart.from = chart.to - 86400;
  if (p.count("from") && (!parse_int(p.at("from"), chart.from) || chart.from < 0 || chart.from >= chart.to)) {
    return bad("from must be Unix seconds before to");
  }
  if (p.count("step") &&
      (!parse_int(p.at("step"), chart.step) || chart.step < 60 || chart.step > 31 * 86400 || chart.step % 60 != 0)) {
    return bad("step must be a multiple of 60 seconds, at most 31 days");
  }
  chart.from -= chart.from % 60;
  if ((chart.to - chart.from) / chart.step > kMaxPointsPerSeries) {
    return bad(fmt::format("{} points per line: at most {}; choose a larger step or a shorter range",
                           (chart.to - chart.from) / chart.step, kMaxPointsPerSeries));
  }
  chart.servers = split(param("servers", "total"), ',');
  for (const auto& s : split(param("shift", "0"), ',')) {
    int64_t shift = 0;
    if (!parse_duration(s, shift)) return bad("shift takes durations like 1d,7d (at most 400d)");
    chart.shifts.push_back(shift);
  }
  for (const auto& s : chart.servers) {
    int64_t id = 0;
    if (s != "total" && (!parse_int(s, id) || id < 0)) return bad("servers takes total and server ids, comma separated");
  }
  if (chart.servers.empty() || chart.shifts.empty() || chart.servers.size() * chart.shifts.size() > kMaxSeries) {
    return bad(fmt::format("a chart has 1 to {} lines (servers x shifts)", kMaxSeries));
  }
  return std::nullopt;
}

std::optional<json::value> DashboardApi::judger_answer(const std::string& address,
                                                       const query::JudgerClient::Answer& reply, std::string& why) {
  if (!reply) {
    ++counters_.judger_errors;
    why = "the judger at " + address + " did not answer: " + reply.error().message();
    return std::nullopt;
  }
  auto body = parse_json(reply->body);
  if (reply->status != 200 || !body || !body->is_object()) {
    ++counters_.judger_errors;
    const auto* e = body && body->is_object() ? body->as_object().if_contains("error") : nullptr;
    why = fmt::format("the judger answered {}{}", reply->status,
                      e != nullptr && e->is_string() ? ": " + std::string(e->as_string()) : std::string());
    return std::nullopt;
  }
  return body;
}

namespace {

// Rows [[t, value, ...], ...] moved `shift` seconds later, [[t, value], ...].
void append_shifted(const json::value* rows, int64_t shift, json::array& out) {
  if (rows == nullptr || !rows->is_array()) return;
  for (const auto& row : rows->as_array()) {
    const auto& r = row.as_array();
    out.push_back(json::array{r.at(0).to_number<int64_t>() + shift, r.at(1)});
  }
}

}  // namespace

json::array DashboardApi::shift_lines(const Chart& chart, const std::vector<Holder>& holders, int64_t shift,
                                      int64_t& last_minute) {
  const auto timeout = std::chrono::seconds(options_.judger_timeout_s);
  const query::SeriesRef series{chart.service, chart.attr, chart.op};
  const int64_t f = chart.from - shift, t = chart.to - shift;
  // Several servers of one judger at minute resolution: one request for all of them.
  std::map<std::string, json::array> by_server;
  std::string shared_error;
  const bool one_holder = holders.size() == 1;
  const bool all_at_once = one_holder && chart.step == 60 && chart.servers.size() > 3;
  if (all_at_once) {
    const auto& address = holders[0].query;
    if (auto body = judger_answer(address, query::JudgerClient(address, timeout).points(series, f, t), shared_error)) {
      const auto& o = body->as_object();
      if (const auto* lm = o.if_contains("last_minute"); lm != nullptr && lm->is_int64()) last_minute = lm->as_int64();
      if (const auto* s = o.if_contains("servers"); s != nullptr && s->is_object()) {
        for (const auto& [server, rows] : s->as_object()) append_shifted(&rows, shift, by_server[std::string(server)]);
      }
    }
  }
  json::array lines;
  for (const auto& server : chart.servers) {
    json::object line{{"server", server}, {"shift", shift}};
    json::array points;
    std::string why = shared_error;
    if (all_at_once) {
      if (auto it = by_server.find(server); it != by_server.end()) points = std::move(it->second);
    } else if (one_holder) {
      const auto& address = holders[0].query;
      if (auto body = judger_answer(address, query::JudgerClient(address, timeout).series(series, server, f, t, chart.step),
                                    why)) {
        append_shifted(body->as_object().if_contains("points"), shift, points);
      }
    } else {
      std::string partial;
      merged_points(chart, holders, server, shift, points, why, partial);
      if (!partial.empty()) line["partial"] = partial;
    }
    if (!why.empty()) line["error"] = why;
    else if (points.empty()) line["empty"] = "no minute of this series in the range";
    line["points"] = std::move(points);
    lines.push_back(std::move(line));
  }
  return lines;
}

void DashboardApi::merged_points(const Chart& chart, const std::vector<Holder>& holders, const std::string& server,
                                 int64_t shift, json::array& points, std::string& why, std::string& partial) {
  // A moved service: every holder's mergeable state of each minute, merged exactly.
  const auto timeout = std::chrono::seconds(options_.judger_timeout_s);
  const query::SeriesRef series{chart.service, chart.attr, chart.op};
  std::vector<json::value> replies;
  std::vector<std::string> missing;
  for (const auto& h : holders) {
    std::string holder_why;
    if (h.query.empty()) {
      missing.push_back(h.name + " (not live)");
    } else if (auto body = judger_answer(
                   h.query, query::JudgerClient(h.query, timeout).cells(series, server, chart.from - shift, chart.to - shift),
                   holder_why)) {
      replies.push_back(std::move(*body));
    } else {
      missing.push_back(h.name + " (" + holder_why + ")");
    }
  }
  std::string merge_error;
  if (auto merged = query::merge_cells(replies, chart.op, chart.step, merge_error)) {
    append_shifted(&merged->at("points"), shift, points);
  } else {
    why = merge_error;
  }
  if (!missing.empty()) partial = fmt::format("minutes of judgers {} are missing", fmt::join(missing, ", "));
}

ApiResponse DashboardApi::series(const registry::UserAccess& access, const ApiRequest& request) {
  Chart chart;
  if (auto refused = read_chart(access, request, chart)) return *refused;
  // The judgers that held the service since the earliest minute asked for.
  const int64_t earliest = chart.from - *std::max_element(chart.shifts.begin(), chart.shifts.end());
  std::vector<Holder> holders;
  if (ApiResponse failed; !holders_of(chart.service, earliest, holders, failed)) return failed;
  if (holders.empty()) {
    return error(404, fmt::format("service {} has no judger (monitorctl service show {})", chart.service, chart.service));
  }
  if (holders.size() == 1 && holders[0].query.empty()) {
    return error(503, fmt::format("judger {} (owner of {}) is not live", holders[0].name, chart.service));
  }
  // Each shift's lines from the judgers, the shifts side by side: a chart of
  // 66 shifts made its calls one after another.
  std::vector<json::array> per_shift(chart.shifts.size());
  std::vector<int64_t> last_minutes(chart.shifts.size(), 0);
  parallel_for(chart.shifts.size(), kJudgerCallsPerChart, [&](size_t i) {
    per_shift[i] = shift_lines(chart, holders, chart.shifts[i], last_minutes[i]);
  });
  json::array lines;
  for (auto& shift : per_shift) {
    for (auto& line : shift) lines.push_back(std::move(line));
  }
  int64_t last_minute = *std::max_element(last_minutes.begin(), last_minutes.end());
  if (last_minute == 0 && !holders.back().query.empty()) {
    // The newest final minute, so the page can say how fresh it is.
    std::string ignored;
    const auto& address = holders.back().query;
    const auto timeout = std::chrono::seconds(options_.judger_timeout_s);
    if (auto body = judger_answer(address, query::JudgerClient(address, timeout).services(chart.service), ignored)) {
      if (const auto* lm = body->as_object().if_contains("last_minute"); lm != nullptr && lm->is_int64()) {
        last_minute = lm->as_int64();
      }
    }
  }
  return ok(json::object{{"service", chart.service}, {"attr", chart.attr}, {"op", chart.op}, {"from", chart.from},
                         {"to", chart.to}, {"step", chart.step}, {"last_minute", last_minute}, {"series", lines}});
}

ApiResponse DashboardApi::top(const registry::UserAccess& access, const ApiRequest& request) {
  // The top N reads every server's minutes of the range once, from /api/points.
  const auto& p = request.params;
  int64_t n = 10;
  if (p.count("n") && (!parse_int(p.at("n"), n) || n < 1 || n > 100)) {
    ++counters_.bad_requests;
    return error(400, "n must be in [1, 100]");
  }
  const std::string service = p.count("service") ? p.at("service") : "";
  if (!is_valid_name(service) || !p.count("attr") || !is_valid_name(p.at("attr"))) {
    ++counters_.bad_requests;
    return error(400, "service and attr must be names like Shop.Api");
  }
  if (!access.sees(service)) {
    ++counters_.refused;
    return error(403, fmt::format("{} is not a service of your roles", service));
  }
  const std::string op = p.count("op") ? p.at("op") : "SUM";
  if (op_names().count(op) == 0) return error(400, "op must be one of SUM MAX MIN AVG FIRST LAST COUNT HIST_P50 …");
  const int64_t now = now_s();
  int64_t to = now, from = now - 3600;
  if ((p.count("to") && !parse_int(p.at("to"), to)) || (p.count("from") && !parse_int(p.at("from"), from)) ||
      from >= to || to - from > 31 * 86400 || from < 0) {
    ++counters_.bad_requests;
    return error(400, "from and to are Unix seconds, from before to, at most 31 days apart");
  }
  std::map<std::string, std::pair<double, int64_t>> by_server;
  if (ApiResponse failed; !reduce_by_server(service, p.at("attr"), op, from, to, by_server, failed)) return failed;
  std::vector<std::pair<double, std::string>> ranked;
  for (const auto& [server, vm] : by_server) {
    const bool summed = op == "SUM" || op == "COUNT";
    const bool extreme = op == "MAX" || op == "MIN";
    ranked.emplace_back(summed || extreme ? vm.first : vm.first / static_cast<double>(std::max<int64_t>(vm.second, 1)),
                        server);
  }
  std::sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) {
    return op == "MIN" ? a.first < b.first : a.first > b.first;
  });
  json::array out;
  for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(n); ++i) {
    out.push_back(json::object{{"server", ranked[i].second}, {"value", ranked[i].first}});
  }
  return ok(json::object{{"service", service}, {"attr", p.at("attr")}, {"op", op}, {"from", from}, {"to", to},
                         {"top", out}});
}

bool DashboardApi::reduce_by_server(const std::string& service, const std::string& attr, const std::string& op,
                                    int64_t from, int64_t to, std::map<std::string, std::pair<double, int64_t>>& by_server,
                                    ApiResponse& failed) {
  std::vector<Holder> holders;
  if (!holders_of(service, from, holders, failed)) return false;
  std::vector<std::string> queries;
  for (const auto& h : holders) {
    if (!h.query.empty()) queries.push_back(h.query);
  }
  if (queries.empty()) {
    failed = error(503, fmt::format("no live judger holds {}", service));
    return false;
  }
  // Per server: the sum of its minutes for SUM and COUNT, the extreme for MAX
  // and MIN, else the sum to be divided by the minutes.
  for (const auto& q : queries) {
    auto reply = query::JudgerClient(q, std::chrono::seconds(options_.judger_timeout_s))
                     .points(query::SeriesRef{service, attr, op}, from, to);
    if (!reply || reply->status != 200) {
      ++counters_.judger_errors;
      continue;
    }
    const auto body = parse_json(reply->body);
    const auto* servers = body && body->is_object() ? body->as_object().if_contains("servers") : nullptr;
    if (servers == nullptr || !servers->is_object()) continue;
    for (const auto& [server, rows] : servers->as_object()) {
      if (server == "total" || !rows.is_array()) continue;
      auto& [value, minutes] = by_server[std::string(server)];
      for (const auto& row : rows.as_array()) {
        const double v = row.as_array().at(1).to_number<double>();
        if (op == "MAX") value = minutes == 0 ? v : std::max(value, v);
        else if (op == "MIN") value = minutes == 0 ? v : std::min(value, v);
        else value += v;
        ++minutes;
      }
    }
  }
  return true;
}

ApiResponse DashboardApi::hosts(const registry::UserAccess& access, const ApiRequest& request) {
  const auto& p = request.params;
  const std::string service = p.count("service") ? p.at("service") : "Host.System";
  if (!is_valid_name(service)) {
    ++counters_.bad_requests;
    return error(400, "service must be a name like Host.System");
  }
  // Host names and ids are the host service's: shown to those who may read it.
  if (!access.sees(service)) {
    ++counters_.refused;
    return error(403, fmt::format("{} is not a service of your roles", service));
  }
  std::vector<registry::Entry> recorded, agents;
  {
    std::lock_guard lock(registry_mutex_);
    auto h = registry_.list(std::string(registry::kHostsKind));
    auto a = registry_.list("agents");
    if (!h || !a) return error(503, "reading the hosts: " + (h ? a.error() : h.error()).message());
    recorded = std::move(*h);
    agents = std::move(*a);
  }
  std::map<int64_t, int64_t> last_report;  // server id -> its live agent's last report
  for (const auto& e : agents) {
    const auto* obj = e.value.if_object();
    const auto* id = obj != nullptr ? obj->if_contains("server_id") : nullptr;
    const auto* at = obj != nullptr ? obj->if_contains("last_report_s") : nullptr;
    if (id != nullptr && id->is_int64() && at != nullptr && at->is_int64()) last_report[id->as_int64()] = at->as_int64();
  }
  // What the hosts list shows: each figure's mean over the last five minutes, per server.
  const int64_t to = now_s(), from = to - 300;
  struct Figure {
    const char* name;
    const char* attr;
    const char* op;
  };
  static constexpr Figure kFigures[] = {{"cpu_busy", "Cpu.Busy", "AVG"},
                                        {"memory_available", "Mem.AvailablePermyriad", "LAST"},
                                        {"fs_max_used", "Fs.MaxUsedPermyriad", "LAST"},
                                        {"load_per_core", "Load.PerCore1", "LAST"}};
  std::map<std::string, std::map<std::string, double>> figures;  // server -> figure -> value
  std::string problem;
  for (const Figure& f : kFigures) {
    std::map<std::string, std::pair<double, int64_t>> by_server;
    ApiResponse failed;
    if (!reduce_by_server(service, f.attr, f.op, from, to, by_server, failed)) {
      problem = failed.body;
      break;
    }
    for (const auto& [server, vm] : by_server) {
      figures[server][f.name] = vm.first / static_cast<double>(std::max<int64_t>(vm.second, 1));  // the minutes' mean
    }
  }
  json::array out;
  for (const auto& [host, id] : registry::host_servers(recorded, agents)) {
    json::object row{{"host", host}, {"server", id}};
    const auto live = last_report.find(id);
    row["agent"] = live != last_report.end() ? "live" : "stopped";
    row["last_report_s"] = live != last_report.end() ? json::value(live->second) : json::value(nullptr);
    const auto f = figures.find(std::to_string(id));
    for (const Figure& figure : kFigures) {
      const bool known = f != figures.end() && f->second.contains(figure.name);
      row[figure.name] = known ? json::value(f->second.at(figure.name)) : json::value(nullptr);
    }
    out.push_back(std::move(row));
  }
  json::object body{{"service", service}, {"hosts", std::move(out)}, {"from", from}, {"to", to}};
  if (!problem.empty()) body["problem"] = problem;
  return ok(std::move(body));
}

// ---- the system ------------------------------------------------------------

ApiResponse DashboardApi::judgers(const registry::UserAccess& access) {
  std::vector<registry::JudgerInfo> list;
  {
    std::lock_guard lock(registry_mutex_);
    auto read = registry::read_judgers(registry_);
    if (!read) return error(503, "reading the judgers: " + read.error().message());
    list = std::move(*read);
  }
  // Addresses only for those who see every service: a judger's query API
  // serves every service it holds to whoever has a token for it.
  const bool operator_view = access.sees("*");
  json::array out;
  for (const auto& j : list) {
    json::object row{{"name", j.name},
                     {"state", j.live ? "live" : j.ran ? "gone" : j.declared ? "declared" : "unknown"},
                     {"cpu_percent", j.cpu_percent}, {"rss_bytes", j.rss_bytes}, {"reports_per_s", j.reports_per_s},
                     {"series", j.series}, {"services", j.services}};
    if (operator_view) {
      row["address"] = j.address;
      row["query"] = j.query;
    }
    out.push_back(std::move(row));
  }
  return ok(json::object{{"judgers", out}});
}

ApiResponse DashboardApi::parts(const registry::UserAccess& access) {
  std::vector<registry::PartState> list;
  {
    std::lock_guard lock(registry_mutex_);
    auto read = registry::read_part_states(registry_);
    if (!read) return error(503, "reading the parts: " + read.error().message());
    list = std::move(*read);
  }
  json::array out;
  for (const auto& part : list) {
    json::object row{{"role", part.role}, {"name", part.name}, {"state", part.state}, {"health", part.health}};
    if (access.sees("*")) row["address"] = part.address;
    out.push_back(std::move(row));
  }
  return ok(json::object{{"parts", out}});
}

// ---- alarms ------------------------------------------------------------------

namespace {

// The rules a user sees (those of its services), by name.
std::map<std::string, alarm::Rule> visible_rules(const std::vector<registry::Entry>& entries,
                                                 const registry::UserAccess& access) {
  std::map<std::string, alarm::Rule> out;
  for (const auto& e : entries) {
    std::string why;
    if (auto rule = alarm::rule_from_value(e.value, why); rule && access.sees(rule->service)) out[e.name] = *rule;
  }
  return out;
}

}  // namespace

ApiResponse DashboardApi::alarms(const registry::UserAccess& access) {
  std::vector<registry::Entry> rule_entries, alarm_entries;
  ApiResponse failed;
  if (!read_kind(alarm::kRulesKind, rule_entries, failed) || !read_kind(alarm::kAlarmsKind, alarm_entries, failed)) {
    return failed;
  }
  const auto rules = visible_rules(rule_entries, access);
  // The host beside each server id, as `monitorctl alarm list` shows it.
  std::vector<registry::Entry> host_entries, agent_entries;
  std::map<int64_t, std::string> host_of;
  if (read_kind(registry::kHostsKind, host_entries, failed) && read_kind("agents", agent_entries, failed)) {
    host_of = registry::host_names_by_server(registry::host_servers(host_entries, agent_entries));
  }
  json::array rule_rows, alarm_rows;
  for (const auto& [name, rule] : rules) {
    rule_rows.push_back(json::object{{"rule", name}, {"service", rule.service}, {"attr", rule.attr},
                                     {"when", rule.when_text}, {"enabled", rule.enabled}, {"summary", rule.summary}});
  }
  for (const auto& e : alarm_entries) {
    const auto rule = rules.find(e.name);
    if (rule == rules.end()) continue;
    for (const auto& [server, a] : alarm::alarms_from_value(e.value).alarms) {
      if (a.state == alarm::State::kOk) continue;
      alarm_rows.push_back(json::object{{"rule", e.name},
                                        {"service", rule->second.service},
                                        {"attr", rule->second.attr},
                                        {"server", server < 0 ? std::string("total") : std::to_string(server)},
                                        {"host", host_of.contains(server) ? json::value(host_of.at(server))
                                                                          : json::value(nullptr)},
                                        {"state", alarm::state_name(a.state)},
                                        {"since", a.since * 60},
                                        {"value", a.value ? json::value(*a.value) : json::value(nullptr)},
                                        {"notifications", a.notifications},
                                        {"acked_by", a.acked_by}});
    }
  }
  return ok(json::object{{"rules", rule_rows}, {"alarms", alarm_rows}});
}

ApiResponse DashboardApi::alarm_history(const registry::UserAccess& access, const ApiRequest& request) {
  int64_t hours = 24;
  if (request.params.count("hours") && (!parse_int(request.params.at("hours"), hours) || hours < 1 || hours > 24 * 31)) {
    ++counters_.bad_requests;
    return error(400, "hours must be in [1, 744]");
  }
  std::vector<registry::Entry> rule_entries;
  std::vector<registry::JudgerInfo> judgers;
  {
    std::lock_guard lock(registry_mutex_);
    auto r = registry_.list(alarm::kRulesKind);
    if (!r) return error(503, "reading the rules: " + r.error().message());
    auto j = registry::read_judgers(registry_);
    if (!j) return error(503, "reading the judgers: " + j.error().message());
    rule_entries = std::move(*r);
    judgers = std::move(*j);
  }
  const auto rules = visible_rules(rule_entries, access);
  const int64_t now = now_s();
  std::vector<json::object> rows;
  json::array missing;
  for (const auto& j : judgers) {
    if (!j.live || j.query.empty()) continue;
    auto reply = query::JudgerClient(j.query, std::chrono::seconds(options_.judger_timeout_s), size_t{64} << 20)
                     .alarm_history(now - hours * 3600, now + 1);
    const auto body = reply && reply->status == 200 ? parse_json(reply->body) : std::nullopt;
    const auto* history = body && body->is_object() ? body->as_object().if_contains("history") : nullptr;
    if (history == nullptr || !history->is_array()) {
      ++counters_.judger_errors;
      missing.push_back(json::value(j.name));
      continue;
    }
    for (const auto& row : history->as_array()) {
      if (!row.is_object() || !rules.count(string_field(row.as_object(), "rule"))) continue;
      json::object o = row.as_object();
      o["judger"] = j.name;
      rows.push_back(std::move(o));
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const json::object& a, const json::object& b) {
    return a.at("time").to_number<int64_t>() > b.at("time").to_number<int64_t>();
  });
  json::array out;
  for (auto& r : rows) out.push_back(std::move(r));
  return ok(json::object{{"history", out}, {"judgers_missing", missing}});
}

ApiResponse DashboardApi::ack(const registry::UserAccess& access, const ApiRequest& request) {
  const auto body = parse_json(request.body);
  if (!body || !body->is_object()) return error(400, "send {\"rule\": …, \"server\": \"total\" or an id (optional)}");
  const std::string name = string_field(body->as_object(), "rule");
  const std::string server_text = string_field(body->as_object(), "server");
  std::optional<int64_t> only;
  if (!server_text.empty()) {
    int64_t id = 0;
    if (server_text != "total" && (!parse_int(server_text, id) || id < 0)) return error(400, "server: total or an id");
    only = server_text == "total" ? -1 : id;
  }
  std::lock_guard lock(registry_mutex_);
  auto rule_entry = registry_.get(alarm::kRulesKind, name);
  if (!rule_entry) return error(503, "reading the rule: " + rule_entry.error().message());
  std::string why;
  const auto rule = *rule_entry ? alarm::rule_from_value((*rule_entry)->value, why) : std::nullopt;
  if (!rule || !access.sees(rule->service)) {
    ++counters_.refused;
    return error(404, fmt::format("no rule {} among your services", name));
  }
  const auto outcome = alarm::acknowledge(registry_, name, only, access.user, now_s() / 60, 5);
  using Status = alarm::AckOutcome::Status;
  switch (outcome.status) {
    case Status::kNoAlarms: return error(400, fmt::format("rule {} has no alarms", name));
    case Status::kNothingToAcknowledge: return error(400, fmt::format("rule {} has no unacknowledged firing alarm", name));
    case Status::kRegistryFailed: return error(503, "acknowledging: " + outcome.error.message());
    case Status::kKeptChanging: return error(503, "the alarms of " + name + " keep changing; try again");
    case Status::kDone: break;
  }
  spdlog::info("{} acknowledged {} alarm(s) of {}", access.user, outcome.acknowledged, name);
  return ok(json::object{{"acknowledged", outcome.acknowledged}, {"rule", name}, {"by", access.user}});
}

namespace {

// A silence is the user's when it names a service or a rule of its services.
bool silence_visible(const alarm::Silence& s, const std::map<std::string, alarm::Rule>& rules,
                     const registry::UserAccess& access) {
  if (!s.service.empty()) return access.sees(s.service);
  if (!s.rule.empty()) return rules.count(s.rule) > 0;
  return false;
}

}  // namespace

ApiResponse DashboardApi::silences(const registry::UserAccess& access) {
  std::vector<registry::Entry> rule_entries, silence_entries;
  ApiResponse failed;
  if (!read_kind(alarm::kRulesKind, rule_entries, failed) ||
      !read_kind(alarm::kSilencesKind, silence_entries, failed)) {
    return failed;
  }
  const auto rules = visible_rules(rule_entries, access);
  json::array out;
  for (const auto& e : silence_entries) {
    const auto s = alarm::silence_from_value(e.name, e.value);
    if (!s || !silence_visible(*s, rules, access)) continue;
    out.push_back(alarm::silence_value(*s));
    out.back().as_object()["id"] = s->id;
  }
  return ok(json::object{{"silences", out}});
}

ApiResponse DashboardApi::add_silence(const registry::UserAccess& access, const ApiRequest& request) {
  const auto body = parse_json(request.body);
  if (!body || !body->is_object()) return error(400, "send {\"service\" or \"rule\", \"minutes\", \"comment\"} as JSON");
  const auto& o = body->as_object();
  alarm::Silence s;
  s.rule = string_field(o, "rule");
  s.service = string_field(o, "service");
  s.attr = string_field(o, "attr");
  s.comment = string_field(o, "comment");
  if (const std::string server = string_field(o, "server"); !server.empty()) {
    if (!parse_int(server, s.server) || s.server < 0) return error(400, "server: an id");
  }
  int64_t minutes = 60;
  if (const auto* m = o.if_contains("minutes"); m != nullptr) {
    if (!m->is_int64() || m->as_int64() < 1 || m->as_int64() > 31 * 1440) return error(400, "minutes: 1 to 44640");
    minutes = m->as_int64();
  }
  if ((!s.service.empty() && !is_valid_name(s.service)) || (!s.attr.empty() && !is_valid_name(s.attr))) {
    return error(400, "service and attr must be names like Shop.Api");
  }
  std::lock_guard lock(registry_mutex_);
  auto r = registry_.list(alarm::kRulesKind);
  if (!r) return error(503, "reading the rules: " + r.error().message());
  if (!silence_visible(s, visible_rules(*r, access), access)) {
    ++counters_.refused;
    return error(403, "a silence names a service or a rule of your services");
  }
  s.start_s = now_s();
  s.end_s = s.start_s + minutes * 60;
  s.by = access.user;
  const auto added = alarm::add_silence(registry_, s, realtime_ns() / 1'000'000);
  if (added.status == alarm::ChangeOutcome::Status::kRegistryFailed) {
    return error(503, "storing the silence: " + added.error.message());
  }
  if (added.status == alarm::ChangeOutcome::Status::kExists) return error(409, "a silence with this id exists; try again");
  spdlog::info("{} added silence {} ({} min)", access.user, s.id, minutes);
  return ok(json::object{{"id", s.id}, {"end", s.end_s}});
}

ApiResponse DashboardApi::remove_silence(const registry::UserAccess& access, const std::string& id) {
  if (!registry::is_valid_key(id)) return error(400, "not a silence id");
  std::lock_guard lock(registry_mutex_);
  auto entry = registry_.get(alarm::kSilencesKind, id);
  if (!entry) return error(503, "reading the silence: " + entry.error().message());
  const auto s = *entry ? alarm::silence_from_value(id, (*entry)->value) : std::nullopt;
  auto r = registry_.list(alarm::kRulesKind);
  if (!r) return error(503, "reading the rules: " + r.error().message());
  if (!s || !silence_visible(*s, visible_rules(*r, access), access)) return error(404, "no silence " + id + " of yours");
  const auto removed = alarm::remove_silence(registry_, id);
  if (removed.status == alarm::ChangeOutcome::Status::kRegistryFailed) {
    return error(503, "removing the silence: " + removed.error.message());
  }
  if (removed.status == alarm::ChangeOutcome::Status::kNotFound) return error(404, "no silence " + id + " of yours");
  spdlog::info("{} removed silence {}", access.user, id);
  return ok(json::object{{"removed", id}});
}

}  // namespace monitor::dashboard
