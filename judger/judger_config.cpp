#include "judger/judger_config.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/registry/registry.hpp"

namespace monitor::judger {

void JudgerConfig::load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("config {}: cannot open", path));
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(text.str(), ec);
  if (ec || !doc.is_object()) throw std::runtime_error(fmt::format("config {}: not a JSON object", path));
  for (const auto& [key, v] : doc.as_object()) {
    auto str = [&](std::string& out) {
      if (!v.is_string()) throw std::runtime_error(fmt::format("config {}: \"{}\" must be a string", path, std::string(key)));
      out = std::string(v.as_string());
    };
    auto num = [&](int& out) {
      if (!v.is_int64()) throw std::runtime_error(fmt::format("config {}: \"{}\" must be an integer", path, std::string(key)));
      out = static_cast<int>(v.as_int64());
    };
    if (key == "name") str(name);
    else if (key == "listen") str(listen);
    else if (key == "query_listen") str(query_listen);
    else if (key == "data_dir") str(data_dir);
    else if (key == "registry") str(registry);
    else if (key == "grace_s") num(grace_s);
    else if (key == "late_window_s") num(late_window_s);
    else if (key == "idle_timeout_s") num(idle_timeout_s);
    else if (key == "log_level") str(log_level);
    else throw std::runtime_error(fmt::format("config {}: unknown key \"{}\"", path, std::string(key)));
  }
}

void JudgerConfig::validate() const {
  if (!registry::is_valid_key(name)) throw std::runtime_error("name must be 1-128 bytes of [A-Za-z0-9._-]");
  if (listen.rfind(':') == std::string::npos) throw std::runtime_error("listen must be host:port");
  if (query_listen.rfind(':') == std::string::npos) throw std::runtime_error("query_listen must be host:port");
  if (grace_s < 0 || grace_s > 600) throw std::runtime_error("grace_s must be in [0, 600]");
  if (late_window_s < 0 || late_window_s > 86400) throw std::runtime_error("late_window_s must be in [0, 86400]");
  if (idle_timeout_s < 1) throw std::runtime_error("idle_timeout_s must be >= 1");
}

}  // namespace monitor::judger
