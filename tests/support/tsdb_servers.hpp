// Real time-series databases on loopback for one test: Debian's
// victoria-metrics and influxdb (1.x), each with its own data directory and
// port; killed and started again on the same data as a test needs.
#pragma once

#include <optional>
#include <string>

#include "support/child_process.hpp"
#include "support/temp_names.hpp"

namespace monitor::test {

class VictoriaMetricsServer {
 public:
  /// Starts it and waits (bounded) until it answers; throws if it does not.
  VictoriaMetricsServer();
  ~VictoriaMetricsServer();
  int port() const noexcept { return port_; }
  std::string write_url() const;  // its InfluxDB line protocol endpoint
  void start();
  /// SIGTERM and wait: a graceful stop. (A SIGKILL loses the last seconds it
  /// acknowledged: it buffers them in memory, docs/export.md.)
  void stop();
  void kill();
  /// GET of its HTTP API (`target` already URL-encoded); the body, or "" when it does not answer.
  std::string get(const std::string& target) const;

 private:
  TempDir dir_;
  int port_;
  std::optional<ChildProcess> process_;
  int starts_ = 0;
};

class InfluxDbServer {
 public:
  /// Starts it, waits until it answers and creates database "monitor"; throws if it cannot.
  InfluxDbServer();
  ~InfluxDbServer();
  int port() const noexcept { return port_; }
  std::string write_url() const;  // /write?db=monitor
  void start();
  void stop();  // SIGTERM and wait
  void kill();
  /// The JSON reply of an InfluxQL query on database "monitor", times in seconds.
  std::string query(const std::string& influxql) const;

 private:
  TempDir dir_;
  int port_, rpc_port_;
  std::optional<ChildProcess> process_;
  int starts_ = 0;
};

/// Percent-encodes a query string value.
std::string url_encode(const std::string& text);

}  // namespace monitor::test
