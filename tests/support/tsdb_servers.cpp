#include "support/tsdb_servers.hpp"

#include <signal.h>

#include <chrono>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "support/wire_client.hpp"

namespace monitor::test {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(30);

// Their replies come chunked: the tests' raw client decodes them.
std::string get_body(int port, const std::string& target) {
  const HttpReply reply = http_get(port, target, std::chrono::seconds(10));
  return reply.status == 200 && reply.complete ? reply.body : "";
}

}  // namespace

std::string url_encode(const std::string& text) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

VictoriaMetricsServer::VictoriaMetricsServer() : port_(free_port()) { start(); }
VictoriaMetricsServer::~VictoriaMetricsServer() { kill(); }

std::string VictoriaMetricsServer::write_url() const { return fmt::format("http://127.0.0.1:{}/write", port_); }

void VictoriaMetricsServer::start() {
  kill();
  const std::string log = dir_.file(fmt::format("victoria-metrics-{}.log", ++starts_));
  // Deduplication per second keeps the newest version of an amended minute
  // or second, as docs/export.md tells users to run it.
  process_.emplace(ChildProcess::spawn({"/usr/bin/victoria-metrics", "-storageDataPath=" + dir_.file("data"),
                                        fmt::format("-httpListenAddr=127.0.0.1:{}", port_), "-retentionPeriod=100y",
                                        "-dedup.minScrapeInterval=1s", "-loggerLevel=ERROR"},
                                       "", log));
  if (!wait_until([&] { return http_get(port_, "/health").status == 200; }, kStartTimeout)) {
    throw std::runtime_error("victoria-metrics did not answer within 30 s (is Debian's victoria-metrics installed?): " +
                             read_file(log));
  }
}

void VictoriaMetricsServer::stop() {
  if (!process_) return;
  process_->signal(SIGTERM);
  if (!process_->wait_for(std::chrono::seconds(30))) kill();
  process_.reset();
}

void VictoriaMetricsServer::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait_for(std::chrono::seconds(10));
  process_.reset();
}

std::string VictoriaMetricsServer::get(const std::string& target) const {
  return get_body(port_, target);
}

InfluxDbServer::InfluxDbServer() : port_(free_port()), rpc_port_(free_port()) {
  start();
  const auto reply = http_get(port_, "/query?q=" + url_encode("CREATE DATABASE monitor"));
  if (reply.status != 200) throw std::runtime_error("influxdb: CREATE DATABASE failed: " + reply.body);
}
InfluxDbServer::~InfluxDbServer() { kill(); }

std::string InfluxDbServer::write_url() const { return fmt::format("http://127.0.0.1:{}/write?db=monitor", port_); }

void InfluxDbServer::start() {
  kill();
  const std::string config = dir_.file("influxdb.conf");
  std::ofstream(config) << fmt::format(R"(reporting-disabled = true
bind-address = "127.0.0.1:{}"
[meta]
  dir = "{}"
[data]
  dir = "{}"
  wal-dir = "{}"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{}"
  log-enabled = false
[monitor]
  store-enabled = false
)",
                                       rpc_port_, dir_.file("meta"), dir_.file("data"), dir_.file("wal"), port_);
  const std::string log = dir_.file(fmt::format("influxdb-{}.log", ++starts_));
  process_.emplace(ChildProcess::spawn({"/usr/bin/influxd", "-config", config}, "", log));
  if (!wait_until([&] { return http_get(port_, "/ping").status == 204; }, kStartTimeout)) {
    throw std::runtime_error("influxd did not answer within 30 s (is Debian's influxdb installed?): " + read_file(log));
  }
}

void InfluxDbServer::stop() {
  if (!process_) return;
  process_->signal(SIGTERM);
  if (!process_->wait_for(std::chrono::seconds(30))) kill();
  process_.reset();
}

void InfluxDbServer::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait_for(std::chrono::seconds(10));
  process_.reset();
}

std::string InfluxDbServer::query(const std::string& influxql) const {
  return get_body(port_, "/query?db=monitor&epoch=s&q=" + url_encode(influxql));
}

}  // namespace monitor::test
