// User plugins, run by the agent on a schedule as Open-Falcon's agent runs
// them: executables in plugin_dir named "<interval seconds>_<name>", whose
// standard output is report lines (the native or statsd form of
// docs/socket.md). docs/plugins.md says how they are run and bounded.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/host_metrics.hpp"
#include "agent/statsd_line.hpp"
#include "common/log_throttle.hpp"

namespace monitor::agent {

struct PluginOptions {
  std::string dir;  // empty: default_dir(); "none": no plugins
  int max_running = 4;
  int max_timeout_s = 60;                 // a run is killed after its interval, at most this
  size_t max_output_bytes = 256 << 10;    // standard output of one run; past it the run is killed
  int rescan_s = 10;                      // how often the directory is read again
  std::string service = "Host.System";    // of each plugin's own health attrs (Plugin.<name>.*)

  /// /etc/monitor/plugins as root; $XDG_CONFIG_HOME/monitor/plugins (or
  /// ~/.config/monitor/plugins) otherwise.
  static std::string default_dir();
  std::string effective_dir() const { return dir.empty() ? default_dir() : dir; }
};

/// What a plugin file's name says: "60_mysql_status.sh" runs every 60 s and
/// reports its health as Plugin.MysqlStatus.*. Nullopt for a name that is not
/// a plugin's ("README", "0_x", "_x", an interval over a day).
struct PluginName {
  int interval_s;
  std::string segment;
};
std::optional<PluginName> parse_plugin_name(std::string_view file_name);

/// How one run ended.
enum class PluginOutcome { kOk, kFailed, kTimedOut, kFlooded };
std::string_view plugin_outcome_name(PluginOutcome outcome) noexcept;

/// One run: its good lines (ready for the ingest), what was wrong with it.
struct PluginRun {
  std::string file;  // the file's name in the directory
  std::string segment;
  int64_t started_ns = 0;
  int64_t ended_ns = 0;
  PluginOutcome outcome = PluginOutcome::kOk;
  std::string reason;  // for a failed run: "exit status 3", "killed by signal 9", "could not start: ..."
  std::string stderr_head;  // the first bytes it wrote to standard error
  std::string lines;        // the lines that parse, each ending in '\n'
  uint32_t good_lines = 0;
  uint32_t bad_lines = 0;
  std::string first_bad_line;  // for the log
  std::string first_bad_reason;
  // Every line with its verdict (empty: good), only for --run-plugin.
  std::vector<std::pair<std::string, std::string>> verdicts;
};

/// Runs `path` once in the foreground (monitor-agent --run-plugin): the same
/// start, environment, limits and parsing as the agent's runs, with every
/// line's verdict kept.
PluginRun run_plugin_once(const std::string& path, const PluginOptions& options, int64_t server_id,
                          const StatsdOptions& statsd, int timeout_s);

/// Totals over every plugin (reported as Monitor.Agent Plugins.*); monotonic.
struct PluginCounters {
  std::atomic<uint64_t> runs{0};
  std::atomic<uint64_t> failed{0};     // exited non-zero, killed by a signal, or could not start
  std::atomic<uint64_t> timed_out{0};  // still running after its timeout: killed
  std::atomic<uint64_t> flooded{0};    // wrote more than max_output_bytes: killed
  std::atomic<uint64_t> bad_lines{0};  // lines that do not parse: dropped
  std::atomic<uint64_t> lines{0};      // lines handed to the aggregator
  std::atomic<uint64_t> refused{0};    // files not run: writable by others, or owned by another user
  std::atomic<uint64_t> skipped{0};    // runs not started: max_running were busy for a whole interval
  std::atomic<int64_t> running{0};
};

/// Finds the plugins and runs each on its interval (aligned to the clock:
/// a 60 s plugin starts at each minute's start), on a thread of its own; the
/// agent's loop take()s the finished runs. Runs are children in their own
/// process group, killed whole on a timeout, a flood, or when their main
/// process exits.
class PluginRunner {
 public:
  static constexpr size_t kMaxWaitingRuns = 256;  // finished runs the loop has not taken; past it dropped, counted

  PluginRunner(PluginOptions options, int64_t server_id, StatsdOptions statsd);
  ~PluginRunner();
  PluginRunner(const PluginRunner&) = delete;
  PluginRunner& operator=(const PluginRunner&) = delete;

  void take(std::vector<PluginRun>& out);
  const PluginCounters& counters() const noexcept { return counters_; }
  uint64_t runs_dropped() const noexcept { return runs_dropped_.load(std::memory_order_relaxed); }

  /// The runs' per-plugin health as host samples: Plugin.<name>.Runs, .Failed,
  /// .TimedOut, .Flooded, .BadLines, .Lines (SUM) and .Millis (MAX).
  static HostRound health_round(const PluginRun& run);

 private:
  struct Plugin {
    std::string file;
    PluginName name;
    int64_t next_due_ns = 0;
    bool running = false;
    LogThrottle log{60'000'000'000};
  };
  struct Child;
  friend PluginRun run_plugin_once(const std::string&, const PluginOptions&, int64_t, const StatsdOptions&, int);

  void run(std::stop_token stop);
  void rescan(int64_t now_ns);
  void start_due(int64_t now_ns);
  void finish(Child& child, int64_t now_ns);
  void log_run(Plugin& plugin, const PluginRun& run);

  const PluginOptions options_;
  const std::string dir_;
  const int64_t server_id_;
  const StatsdOptions statsd_;
  PluginCounters counters_;
  std::atomic<uint64_t> runs_dropped_{0};
  std::map<std::string, Plugin> plugins_;  // by file name; the thread's only
  std::vector<std::unique_ptr<Child>> children_;
  std::map<std::string, LogThrottle> refused_log_;
  int64_t next_rescan_ns_ = 0;
  int wake_fds_[2] = {-1, -1};  // written to stop the thread's poll
  std::mutex mutex_;
  std::deque<PluginRun> done_;
  std::jthread thread_;  // last: started once the rest exists
};

}  // namespace monitor::agent
