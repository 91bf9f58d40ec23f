// `GET /metrics` for a daemon whose own loop serves no HTTP (the agent, the
// proxies): a listener on a thread of its own, so the system can be scraped
// from outside whatever its loop is doing.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace monitor::net {

class MetricsServer {
 public:
  /// Listens on `address` (numeric host:port; port 0 picks one) and answers
  /// GET /metrics with text(). Throws std::runtime_error with the reason when
  /// it cannot listen.
  MetricsServer(const std::string& address, std::function<std::string()> text);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;

  /// The bound address (for port 0).
  std::string address() const;

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  const std::function<std::string()> text_;
  std::thread thread_;
};

}  // namespace monitor::net
