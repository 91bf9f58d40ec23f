// Starting a real monitor-agent beside a benchmark.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace monitor::bench {

/// A monitor-agent process on its own ring, output discarded; stopped with
/// SIGTERM when destroyed.
class AgentProcess {
 public:
  AgentProcess(const std::string& ring, std::vector<std::string> extra = {}) : ring_(ring) {
    std::vector<std::string> argv = {MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring, "--socket", "", "--output", "/dev/null",
                                     "--log-level", "warn"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) != 0) {
      throw std::runtime_error("cannot start monitor-agent");
    }
    struct stat st {};
    const std::string path = "/dev/shm" + ring;
    for (int i = 0; i < 500 && stat(path.c_str(), &st) != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ~AgentProcess() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    unlink(("/dev/shm" + ring_).c_str());
  }
  AgentProcess(const AgentProcess&) = delete;
  pid_t pid() const { return pid_; }

 private:
  std::string ring_;
  pid_t pid_ = -1;
};

}  // namespace monitor::bench
