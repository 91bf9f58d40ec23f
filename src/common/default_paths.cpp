#include "common/default_paths.hpp"

#include <unistd.h>

#include <cstdlib>

namespace monitor {
namespace {
// An absolute directory from the environment, or empty.
std::string env_dir(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] == '/' ? std::string(value) : std::string();
}
}  // namespace

std::string default_state_dir() {
  if (geteuid() == 0) return "/var/lib/monitor";
  if (const std::string state = env_dir("XDG_STATE_HOME"); !state.empty()) return state + "/monitor";
  if (const std::string home = env_dir("HOME"); !home.empty()) return home + "/.local/state/monitor";
  return "/tmp/monitor-" + std::to_string(geteuid()) + "/state";
}

std::string default_runtime_dir() {
  if (geteuid() == 0) return "/run/monitor";
  if (const std::string runtime = env_dir("XDG_RUNTIME_DIR"); !runtime.empty()) return runtime + "/monitor";
  return "/tmp/monitor-" + std::to_string(geteuid());
}

}  // namespace monitor
