// Starting real monitor-proxy processes, and writing the registry entries a
// Bonnie needs, for end-to-end tests.
#pragma once

#include <string>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "registry/registry.hpp"
#include "support/child_process.hpp"
#include "e2e/registry_address.hpp"
#include "support/temp_names.hpp"

namespace monitor::e2e {

/// A proxy named `name` on 127.0.0.1:port with its spools under `dir`, using
/// the registry under `dir`; heartbeats every 200 ms, a next hop silent for
/// 1 s is dead. For a Clyde, `bonnies_file` lists its Bonnies.
inline test::ChildProcess spawn_proxy(const test::TempDir& dir, const std::string& role, const std::string& name,
                                      int port, const std::string& dc, const std::string& bonnies_file = {},
                                      const boost::json::object& config_extra = {}) {
  const std::string config = dir.file(name + ".json");
  {
    boost::json::object c{{"heartbeat_interval_ms", 200}, {"heartbeat_timeout_ms", 1000}};
    for (const auto& [key, value] : config_extra) c[key] = value;
    std::FILE* f = std::fopen(config.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs(boost::json::serialize(c).c_str(), f);
    std::fclose(f);
  }
  std::vector<std::string> argv = {MONITOR_PROXY_PATH, "--config", config, "--role", role, "--name", name,
                                   "--listen", "127.0.0.1:" + std::to_string(port), "--dc", dc,
                                   "--registry", registry_address(dir), "--data-dir", dir.file(name),
                                   "--no-self-metrics"};
  if (!bonnies_file.empty()) {
    argv.push_back("--bonnies-file");
    argv.push_back(bonnies_file);
  }
  return test::ChildProcess::spawn(argv, "", dir.file(name + ".log"));
}

/// Registers `service` with `attrs` and assigns it to `judger`, as monitorctl will.
inline void register_service(const test::TempDir& dir, const std::string& service,
                             const std::vector<std::string>& attrs, const std::string& judger = "judger-1") {
  auto registry = registry::open_registry(registry_address(dir));
  REQUIRE(registry.has_value());
  boost::json::object ids;
  int64_t id = 1;
  for (const auto& attr : attrs) ids[attr] = id++;
  REQUIRE((*registry)->put("services", service, boost::json::object{{"id", 1}, {"attrs", ids}}));
  REQUIRE((*registry)->put("assignments", service, boost::json::object{{"judger", judger}}));
}

}  // namespace monitor::e2e
