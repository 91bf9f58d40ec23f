// Starting and stopping real processes from tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace monitor::test {

/// A child process; killed with SIGKILL and reaped if still running when destroyed.
class ChildProcess {
 public:
  /// Starts `argv[0]` with `argv`, stdout and stderr redirected to files
  /// (empty path: inherited). Throws std::runtime_error if it cannot start.
  static ChildProcess spawn(const std::vector<std::string>& argv, const std::string& stdout_path = {},
                            const std::string& stderr_path = {},
                            const std::vector<std::string>& extra_env = {});

  /// Runs `body` in a forked child and exits with its return value.
  static ChildProcess fork_run(const std::function<int()>& body);

  ChildProcess(ChildProcess&& other) noexcept;
  /// Kills and reaps the process held (if any) and takes `other`'s.
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const noexcept { return pid_; }
  void signal(int sig) const;
  /// Exit status (or 128 + signal), or nullopt on timeout.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);

 private:
  explicit ChildProcess(pid_t pid) noexcept : pid_(pid) {}
  pid_t pid_ = -1;
};

/// Reads a whole file ("" if missing).
std::string read_file(const std::string& path);

/// Waits until `predicate` holds or `timeout` passes; returns the last result.
bool wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout);

}  // namespace monitor::test
