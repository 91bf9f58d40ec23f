#include "support/etcd_server.hpp"

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "registry/etcd_gateway.hpp"
#include "support/wire_client.hpp"

namespace monitor::test {
namespace {

// Debian's etcd-server, or MONITOR_ETCD to try another build.
std::string etcd_binary() {
  const char* chosen = std::getenv("MONITOR_ETCD");
  return chosen != nullptr ? chosen : "/usr/bin/etcd";
}

}  // namespace

EtcdServer::EtcdServer() : client_port_(free_port()), peer_port_(free_port()) { start(); }

EtcdServer::EtcdServer(EtcdTls tls) : tls_(std::move(tls)), client_port_(free_port()), peer_port_(free_port()) {
  start();
}

EtcdServer::~EtcdServer() { kill(); }

std::string EtcdServer::endpoint() const { return fmt::format("127.0.0.1:{}", client_port_); }
std::string EtcdServer::address() const { return "etcd:" + endpoint(); }

void EtcdServer::start(int client_port) {
  kill();
  const int port = client_port != 0 ? client_port : client_port_;
  serving_port_ = port;
  const std::string client = fmt::format("{}://127.0.0.1:{}", tls_ ? "https" : "http", port);
  const std::string peer = fmt::format("http://127.0.0.1:{}", peer_port_);
  std::vector<std::string> argv = {etcd_binary(), "--name", "test", "--data-dir", dir_.file("data"),
                                   "--listen-client-urls", client, "--advertise-client-urls", client,
                                   "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                   "--initial-cluster", "test=" + peer, "--logger", "zap", "--log-level", "error"};
  if (tls_) {
    argv.insert(argv.end(), {"--cert-file", tls_->server_cert, "--key-file", tls_->server_key, "--client-cert-auth",
                             "--trusted-ca-file", tls_->ca});
  }
  process_.emplace(ChildProcess::spawn(argv, "", dir_.file(fmt::format("etcd-{}.log", ++starts_))));
  registry::GatewayOptions options;
  options.endpoints = {fmt::format("127.0.0.1:{}", port)};
  options.timeout = std::chrono::milliseconds(500);
  if (tls_) options.tls = registry::registry_tls(tls_->ca, tls_->client_cert, tls_->client_key);
  registry::EtcdGateway gateway(options);
  const bool up = wait_until([&] { return gateway.call("/v3/maintenance/status", {}).has_value(); },
                             std::chrono::seconds(20));
  if (!up) {
    throw std::runtime_error("etcd did not answer within 20 s (is Debian's etcd-server installed?): " +
                             read_file(dir_.file(fmt::format("etcd-{}.log", starts_))));
  }
}

void EtcdServer::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait_for(std::chrono::seconds(10));
  process_.reset();
}

void EtcdServer::wipe() {
  kill();
  std::filesystem::remove_all(dir_.file("data"));
}

std::string EtcdServer::post(const std::string& path, const std::string& json_body) const {
  registry::GatewayOptions options;
  options.endpoints = {fmt::format("127.0.0.1:{}", serving_port_)};
  if (tls_) options.tls = registry::registry_tls(tls_->ca, tls_->client_cert, tls_->client_key);
  registry::EtcdGateway gateway(options);
  auto reply = gateway.call(path, boost::json::parse(json_body).as_object());
  return reply ? boost::json::serialize(*reply) : "";
}

}  // namespace monitor::test
