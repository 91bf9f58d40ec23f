// libFuzzer target: every daemon's config file. The bytes are read as the
// daemons read their files (JSON, an object at the top), loaded through each
// daemon's settings table and checked as the daemon checks them before it
// starts. A bad file may only end in an exception with a message (the
// daemon prints it and exits): never a crash, undefined behaviour or a hang.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

#include <boost/json.hpp>

#include "agent/agent_config.hpp"
#include "dashboard/dashboard_config.hpp"
#include "judger/judger_config.hpp"
#include "proxy/proxy_config.hpp"

namespace {

template <class Config>
void load(const monitor::SettingsTable<Config>& table, const boost::json::object& file) {
  Config config;
  try {
    table.load_object(file, config);
    config.validate();
  } catch (const std::exception&) {
    // What the daemon's main prints before it exits: the expected end of a bad file.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec);
  if (ec || !doc.is_object()) return 0;
  const boost::json::object& file = doc.as_object();
  load(monitor::agent::agent_settings(), file);
  load(monitor::judger::judger_settings(), file);
  load(monitor::proxy::proxy_settings(), file);
  load(monitor::dashboard::dashboard_settings(), file);
  return 0;
}
