#include "query/judger_client.hpp"

#include <cctype>

#include <fmt/format.h>

namespace monitor::query {
namespace {

std::string series_params(const SeriesRef& s) {
  return fmt::format("service={}&attr={}&op={}", JudgerClient::escape(s.service), JudgerClient::escape(s.attr),
                     JudgerClient::escape(s.op));
}

}  // namespace

std::string JudgerClient::escape(std::string_view value) {
  std::string out;
  for (const unsigned char c : value) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

namespace {
// Set once at start (set_token, set_https), read by every query after.
std::string g_token;
std::shared_ptr<boost::asio::ssl::context> g_https;
}  // namespace

void JudgerClient::set_token(std::string token) { g_token = std::move(token); }
void JudgerClient::set_https(std::shared_ptr<boost::asio::ssl::context> https) { g_https = std::move(https); }

JudgerClient::Answer JudgerClient::get(const std::string& target) const {
  return net::http_get(address_, target, timeout_, max_body_, g_token, g_https.get());
}

JudgerClient::Answer JudgerClient::series(const SeriesRef& series, std::string_view server, int64_t from_s, int64_t to_s,
                                          std::optional<int64_t> step_s) const {
  std::string target = fmt::format("/api/series?{}&server={}&from={}&to={}", series_params(series), escape(server),
                                   from_s, to_s);
  if (step_s) target += fmt::format("&step={}", *step_s);
  return get(target);
}

JudgerClient::Answer JudgerClient::cells(const SeriesRef& series, std::string_view server, int64_t from_s,
                                         int64_t to_s) const {
  return get(fmt::format("/api/cells?{}&server={}&from={}&to={}", series_params(series), escape(server), from_s, to_s));
}

JudgerClient::Answer JudgerClient::points(const SeriesRef& series, int64_t from_s, int64_t to_s) const {
  return get(fmt::format("/api/points?{}&from={}&to={}", series_params(series), from_s, to_s));
}

JudgerClient::Answer JudgerClient::reports(int64_t from_s, int64_t to_s) const {
  return get(fmt::format("/api/reports?from={}&to={}", from_s, to_s));
}

JudgerClient::Answer JudgerClient::alarm_history(int64_t from_s, int64_t to_s, std::string_view rule) const {
  std::string target = fmt::format("/api/alarms/history?from={}&to={}", from_s, to_s);
  if (!rule.empty()) target += "&rule=" + escape(rule);
  return get(target);
}

JudgerClient::Answer JudgerClient::services(std::string_view service) const {
  return get(service.empty() ? std::string("/api/services") : "/api/services?service=" + escape(service));
}

JudgerClient::Answer JudgerClient::health() const { return get("/api/health"); }

}  // namespace monitor::query
