// The dashboard's JSON API (docs/dashboard.md): sign-in with the console's
// users, and what a signed-in user may see of the services its roles own,
// read from the judgers that hold them (merged exactly when a service moved)
// and from the registry. The API refuses what the user's roles do not cover;
// the web application only shows what the API gives it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "query/judger_client.hpp"
#include "dashboard/sign_in_throttle.hpp"
#include "registry/access.hpp"
#include "registry/registry.hpp"

namespace monitor::dashboard {

struct ApiRequest {
  std::string method;  // GET, POST, DELETE
  std::string path;    // without the query string
  std::map<std::string, std::string> params;  // the query string, decoded
  std::string body;
  std::string session;  // the session cookie's value, if any
  std::string address;  // the client's IP address
};

struct ApiResponse {
  int status = 200;
  std::string body;
  std::string set_cookie;  // a Set-Cookie value, when the session changes
  int64_t retry_after_s = 0;  // a Retry-After header, when > 0
};

struct ApiOptions {
  std::string registry_address;  // for etcd sign-in: the endpoints to authenticate against
  int64_t session_ttl_s = 12 * 3600;
  size_t max_sessions = 10000;
  size_t max_sessions_per_user = 8;  // a user's oldest session ends when one more starts
  ThrottleOptions sign_in_throttle;
  int judger_timeout_s = 5;
  bool https = false;  // the session cookie is marked Secure: never sent over plain HTTP
};

/// Counters of the dashboard's own health.
struct ApiCounters {
  std::atomic<uint64_t> requests{0}, refused{0}, bad_requests{0}, sign_ins{0}, sign_ins_failed{0}, judger_errors{0},
      sign_ins_throttled{0};
};

/// Thread-safe: the server's threads call handle() at once.
class DashboardApi {
 public:
  DashboardApi(registry::Registry& registry, ApiOptions options);
  ApiResponse handle(const ApiRequest& request);
  const ApiCounters& counters() const noexcept { return counters_; }
  size_t sessions() const;

 private:
  struct Session {
    std::string user;
    uint64_t serial = 0;  // sessions in the order they started
    registry::UserAccess access;
    int64_t expires_s = 0;
    int64_t access_read_s = 0;  // roles are read again every few seconds: a change shows at once
  };
  ApiResponse sign_in(const ApiRequest& request);
  ApiResponse sign_out(const ApiRequest& request);
  std::optional<registry::UserAccess> signed_in(const ApiRequest& request);
  bool password_ok(const std::string& user, const std::string& password, std::string& why);

  ApiResponse services(const registry::UserAccess& access);
  ApiResponse series(const registry::UserAccess& access, const ApiRequest& request);
  // What /api/series asks for: a chart of servers x shifts.
  struct Chart {
    std::string service, attr, op;
    int64_t from = 0, to = 0, step = 60;
    std::vector<std::string> servers;
    std::vector<int64_t> shifts;
  };
  // Reads and checks the request into `chart`; the answer to give instead when it is refused.
  std::optional<ApiResponse> read_chart(const registry::UserAccess& access, const ApiRequest& request, Chart& chart);
  struct Holder;
  // The lines of one shift (one per server), from the judgers that held the service.
  boost::json::array shift_lines(const Chart& chart, const std::vector<Holder>& holders, int64_t shift,
                                 int64_t& last_minute);
  // One server's points of a service that moved: every holder's cells merged exactly.
  void merged_points(const Chart& chart, const std::vector<Holder>& holders, const std::string& server, int64_t shift,
                     boost::json::array& points, std::string& why, std::string& partial);
  // A judger's answer as JSON, or nullopt with `why` (counted as a judger error).
  std::optional<boost::json::value> judger_answer(const std::string& address, const query::JudgerClient::Answer& reply,
                                                  std::string& why);
  ApiResponse top(const registry::UserAccess& access, const ApiRequest& request);
  ApiResponse judgers(const registry::UserAccess& access);
  // The hosts recorded in the registry with their CPU, memory, disk and load over the last five minutes.
  ApiResponse hosts(const registry::UserAccess& access, const ApiRequest& request);
  // Each server's minutes of one series over [from, to), reduced: the
  // extreme for MAX and MIN, else their sum; with how many minutes there were;
  // from every judger that held the service.
  bool reduce_by_server(const std::string& service, const std::string& attr, const std::string& op, int64_t from,
                        int64_t to, std::map<std::string, std::pair<double, int64_t>>& by_server, ApiResponse& failed);
  ApiResponse parts(const registry::UserAccess& access);
  ApiResponse alarms(const registry::UserAccess& access);
  ApiResponse alarm_history(const registry::UserAccess& access, const ApiRequest& request);
  ApiResponse ack(const registry::UserAccess& access, const ApiRequest& request);
  ApiResponse silences(const registry::UserAccess& access);
  ApiResponse add_silence(const registry::UserAccess& access, const ApiRequest& request);
  ApiResponse remove_silence(const registry::UserAccess& access, const std::string& id);

  /// A judger that held a service; query "" when it is not live.
  struct Holder {
    std::string name, query;
  };
  /// The judgers that held `service` since `from_s` (registry::judgers_holding);
  /// false with `failed` the 503 to answer when the registry cannot say.
  bool holders_of(const std::string& service, int64_t from_s, std::vector<Holder>& out, ApiResponse& failed);
  /// One kind's entries, read under the registry's lock; false with `failed` the 503 to answer.
  bool read_kind(std::string_view kind, std::vector<registry::Entry>& out, ApiResponse& failed);

  registry::Registry& registry_;
  std::mutex registry_mutex_;  // the registry's backends are not all thread-safe
  const ApiOptions options_;
  mutable std::mutex sessions_mutex_;
  std::map<std::string, Session> sessions_;  // by token; GUARDED_BY(sessions_mutex_)
  uint64_t sessions_started_ = 0;             // GUARDED_BY(sessions_mutex_)
  SignInThrottle throttle_;
  // A hash of nothing, checked against when a user has none (unknown): a
  // wrong user costs what a wrong password costs, so users cannot be told
  // apart by the time a refusal takes.
  const std::string decoy_hash_;
  ApiCounters counters_;
};

}  // namespace monitor::dashboard
