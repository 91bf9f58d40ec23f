// etcd v3's JSON gateway (/v3/...) over HTTP/1.1 with Boost.Beast: one
// request at a time on a kept-alive connection, a deadline on each, fail-over
// across the cluster's endpoints, and the token of etcd's authentication when
// a user is given. Keys and values travel base64-encoded (b64()/unb64()).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include "registry/etcd_reply.hpp"

namespace boost::asio::ssl {
class context;
}

namespace monitor::registry {

struct GatewayOptions {
  std::vector<std::string> endpoints;  // host:port
  std::string user, password;          // empty user: no authentication
  std::chrono::milliseconds timeout{3000};
  // HTTPS to etcd: its certificate verified against this context's CA and
  // for the endpoint's host (an IP address in its subjectAltName), this
  // part's client certificate shown. Null: plain HTTP.
  std::shared_ptr<boost::asio::ssl::context> tls;
};

/// The TLS of $MONITOR_REGISTRY_CA, $MONITOR_REGISTRY_CERT and
/// $MONITOR_REGISTRY_KEY (docs/security.md): null when none is set; throws
/// std::runtime_error naming the file when one does not load.
std::shared_ptr<boost::asio::ssl::context> registry_tls_from_environment();
/// The same from the files given (all empty: null).
std::shared_ptr<boost::asio::ssl::context> registry_tls(const std::string& ca, const std::string& cert,
                                                        const std::string& key);

class EtcdGateway {
 public:
  explicit EtcdGateway(GatewayOptions options);
  ~EtcdGateway();

  /// POSTs `body` to `path` (e.g. "/v3/kv/range") and returns the reply
  /// object. kUnreachable if no endpoint answered; kPermissionDenied,
  /// kAuthFailed or kProtocol from etcd's error reply, whose text
  /// last_error() keeps.
  boost::system::result<boost::json::object> call(std::string_view path, const boost::json::object& body);

  /// Streams a long reply (a watch): calls `on_message` for each
  /// newline-delimited {"result": ...} object until it returns false, the
  /// stream ends, fails, or `stop` is set. Blocks; `idle` bounds the wait for
  /// the next byte. Its own connection; interrupt() ends it from any thread.
  boost::system::result<void> stream(std::string_view path, const boost::json::object& body,
                                     std::chrono::milliseconds idle,
                                     const std::function<bool(const boost::json::object&)>& on_message);
  void interrupt();

  /// etcd's own words for the last error reply (e.g. "etcdserver: permission denied").
  std::string last_error() const;

 private:
  struct Connection;
  boost::system::result<boost::json::object> call_once(Connection& c, std::string_view path,
                                                       const boost::json::object& body, bool& retry_auth);
  boost::system::result<void> authenticate(Connection& c);

  const GatewayOptions options_;
  std::mutex mutex_;  // one request at a time on the kept-alive connection
  std::unique_ptr<Connection> connection_;
  std::unique_ptr<Connection> streaming_;
  std::atomic<bool> interrupted_{false};
  std::string token_;  // GUARDED_BY(mutex_)
  mutable std::mutex error_mutex_;
  std::string last_error_;
};

}  // namespace monitor::registry
