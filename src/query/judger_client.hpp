// Typed calls to one judger's HTTP query API (docs/judger.md): the one place
// its URLs are built, its parameters escaped and its deadlines and body
// limits set. monitorctl, the dashboard, `rule test`, `report daily` and the
// alarm engine's read of a moved service's minutes call it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "net/http_get.hpp"

namespace monitor::query {

/// A series as the query API names it: service, attr and op name.
struct SeriesRef {
  std::string service, attr, op;
};

/// Each call answers the judger's status and body, or the transport's error
/// (refused, timed out, a body over the limit). Thread-safe: it holds no
/// connection between calls.
class JudgerClient {
 public:
  explicit JudgerClient(std::string address, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                        size_t max_body = size_t{256} << 20)
      : address_(std::move(address)), timeout_(timeout), max_body_(max_body) {}

  using Answer = boost::system::result<net::HttpResponse>;

  /// /api/series: minutes of `server` (an id, "total" or "all") in [from_s, to_s), by `step_s` (none: the judger's).
  Answer series(const SeriesRef& series, std::string_view server, int64_t from_s, int64_t to_s,
                std::optional<int64_t> step_s = std::nullopt) const;
  /// /api/cells: the mergeable state of each minute, to merge across judgers.
  Answer cells(const SeriesRef& series, std::string_view server, int64_t from_s, int64_t to_s) const;
  /// /api/points: every server's and the total's value of each minute.
  Answer points(const SeriesRef& series, int64_t from_s, int64_t to_s) const;
  /// /api/reports: reports per service in [from_s, to_s).
  Answer reports(int64_t from_s, int64_t to_s) const;
  /// /api/alarms/history, of one rule or ("" ) all.
  Answer alarm_history(int64_t from_s, int64_t to_s, std::string_view rule = {}) const;
  /// /api/services: the services this judger holds minutes of (or one).
  Answer services(std::string_view service = {}) const;
  /// /api/health.
  Answer health() const;

  const std::string& address() const noexcept { return address_; }

  /// The API token this process shows every judger (`monitorctl user
  /// token`): monitorctl's `--token`/`$MONITOR_TOKEN`, the dashboard's and a
  /// judger's `query_token`. Set once at start, before any query.
  static void set_token(std::string token);
  /// How this process reaches judgers (net::make_https_client from
  /// `query_ca`, and a part's own certificate, if any): set, every judger's
  /// API is reached over HTTPS, its certificate checked. Set once at start.
  static void set_https(std::shared_ptr<boost::asio::ssl::context> https);

  /// A query parameter's value, %-escaped.
  static std::string escape(std::string_view value);

 private:
  Answer get(const std::string& target) const;

  std::string address_;
  std::chrono::milliseconds timeout_;
  size_t max_body_;
};

}  // namespace monitor::query
