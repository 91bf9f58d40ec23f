// Built-in checks of the agent's config (docs/plugins.md, "Checks"): a TCP
// port that answers a connect, how many processes match a name or a command
// line, an HTTP URL's status and latency. Each reports under Check.<name>.*
// of the host service, on a thread of their own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/fwd.hpp>

#include "agent/host_metrics.hpp"

namespace monitor::agent {

struct CheckSpec {
  enum class Kind { kTcp, kProcess, kHttp };
  Kind kind = Kind::kTcp;
  std::string name;     // its attr segment: Check.<name>.*
  std::string target;   // tcp: host:port; process: the name or command-line text; http: http://host:port/path
  bool match_cmdline = false;  // process: `target` is found in the command line, not equal to the name
  int interval_s = 10;
  int timeout_ms = 1000;
};

/// Reads the config's "checks" list. Throws std::runtime_error naming the
/// entry and the problem.
std::vector<CheckSpec> read_checks(const boost::json::value& value);

/// One check now: the samples it gives (Check.<name>.Up and .Micros for tcp;
/// .Count for process; .Up, .Status and .Micros for http).
std::vector<HostSample> run_check(const CheckSpec& check, const std::string& proc_root = "/proc");

/// How many processes under `proc_root` have `target` as their name (comm),
/// or in their command line (arguments joined by spaces) with `match_cmdline`.
/// The calling process is not counted.
int64_t count_processes(const std::string& proc_root, const std::string& target, bool match_cmdline);

/// Runs each check every interval_s (aligned to the clock), one after the
/// other, on its own thread; the agent's loop take()s the results.
class CheckRunner {
 public:
  static constexpr size_t kMaxChecks = 256;
  static constexpr size_t kMaxRounds = 64;

  explicit CheckRunner(std::vector<CheckSpec> checks);
  ~CheckRunner();
  CheckRunner(const CheckRunner&) = delete;
  CheckRunner& operator=(const CheckRunner&) = delete;

  void take(std::vector<HostRound>& out);
  uint64_t runs() const noexcept { return runs_.load(std::memory_order_relaxed); }
  uint64_t failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
  uint64_t rounds_dropped() const noexcept { return rounds_dropped_.load(std::memory_order_relaxed); }

 private:
  void run(std::stop_token stop);

  const std::vector<CheckSpec> checks_;
  std::atomic<uint64_t> runs_{0};
  std::atomic<uint64_t> failed_{0};  // a check that found its target down (Up 0) or no process
  std::atomic<uint64_t> rounds_dropped_{0};
  std::mutex mutex_;
  std::condition_variable_any wake_;  // woken at once by the stop token
  std::deque<HostRound> rounds_;
  std::jthread thread_;  // last
};

}  // namespace monitor::agent
