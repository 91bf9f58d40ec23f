// The `checks` list of the agent's config file, read and checked before the
// agent starts (apart from the checks' runner, so the config fuzzer reaches
// it without the runner's sockets and HTTP client).
#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "agent/host_checks.hpp"
#include "agent/host_metrics.hpp"
#include "common/json_fields.hpp"

namespace monitor::agent {

std::vector<CheckSpec> read_checks(const boost::json::value& value) {
  if (!value.is_array()) throw std::runtime_error("checks must be a list of objects");
  std::vector<CheckSpec> checks;
  using namespace json_fields;
  for (const auto& entry : value.as_array()) {
    if (!entry.is_object()) throw std::runtime_error("checks must be a list of objects");
    const auto& obj = entry.as_object();
    static constexpr const char* kKeys[] = {"type", "name", "address", "process", "cmdline", "url", "interval_s",
                                            "timeout_ms"};
    check_known(obj, kKeys);
    CheckSpec check;
    std::string type;
    read_string(obj, "type", type);
    read_string(obj, "name", check.name);
    const std::string where = fmt::format("checks[{}] ({})", checks.size(), check.name.empty() ? "?" : check.name);
    if (check.name.empty() || device_segment(check.name) != check.name) {
      throw std::runtime_error(fmt::format("{}: name must be a capital letter then letters and digits, at most 24 "
                                           "bytes (it becomes the attr segment Check.<name>)",
                                           where));
    }
    if (type == "tcp") {
      check.kind = CheckSpec::Kind::kTcp;
      read_string(obj, "address", check.target);
      if (check.target.rfind(':') == std::string::npos) {
        throw std::runtime_error(where + ": a tcp check needs \"address\": \"host:port\"");
      }
    } else if (type == "process") {
      check.kind = CheckSpec::Kind::kProcess;
      std::string cmdline;
      read_string(obj, "process", check.target);
      read_string(obj, "cmdline", cmdline);
      if (check.target.empty() == cmdline.empty()) {
        throw std::runtime_error(where + ": a process check needs one of \"process\" (the name, as ps -o comm "
                                         "shows it) or \"cmdline\" (text found in the command line)");
      }
      if (!cmdline.empty()) {
        check.target = cmdline;
        check.match_cmdline = true;
      }
    } else if (type == "http") {
      check.kind = CheckSpec::Kind::kHttp;
      read_string(obj, "url", check.target);
      if (!check.target.starts_with("http://") || check.target.size() <= 7) {
        throw std::runtime_error(where + ": an http check needs \"url\": \"http://host[:port]/path\" (https is not "
                                         "supported yet)");
      }
    } else {
      throw std::runtime_error(where + ": type must be tcp, process or http");
    }
    read_int(obj, "interval_s", check.interval_s);
    read_int(obj, "timeout_ms", check.timeout_ms);
    if (check.interval_s < 1 || check.interval_s > 86400) throw std::runtime_error(where + ": interval_s must be 1..86400");
    if (check.timeout_ms < 1 || check.timeout_ms > check.interval_s * 1000) {
      throw std::runtime_error(where + ": timeout_ms must be 1..interval_s*1000");
    }
    for (const CheckSpec& other : checks) {
      if (other.name == check.name) throw std::runtime_error(where + ": two checks have this name");
    }
    checks.push_back(std::move(check));
    if (checks.size() > CheckRunner::kMaxChecks) {
      throw std::runtime_error(fmt::format("checks: at most {}", CheckRunner::kMaxChecks));
    }
  }
  return checks;
}

}  // namespace monitor::agent
