#include "agent/plugin_runner.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/line_parser.hpp"
#include "common/clock.hpp"
#include "monitor/monitor.h"

namespace monitor::agent {

namespace {

constexpr size_t kStderrKept = 512;
constexpr int64_t kNsPerS = 1'000'000'000;

std::string errno_text(int error) { return std::strerror(error); }

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Reads what `fd` holds now into `out`, keeping at most `keep` bytes in all
// and dropping the rest. False at end of file or on an error (the fd is done).
bool read_available(int fd, std::string& out, size_t keep, bool& over) {
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      const size_t room = out.size() < keep ? keep - out.size() : 0;
      out.append(buffer, std::min(room, static_cast<size_t>(n)));
      if (static_cast<size_t>(n) > room) over = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    return false;
  }
}

// Parses a run's standard output into its good lines; counts and keeps the bad.
// `cut`: the run was killed, so a last line without '\n' may be cut short.
void parse_output(const std::string& output, bool cut, int64_t server_id, const StatsdOptions& statsd,
                  bool keep_verdicts, PluginRun& run) {
  LineParser parser(server_id, statsd);
  ParsedLine parsed;
  size_t start = 0;
  while (start < output.size()) {
    size_t end = output.find('\n', start);
    const bool terminated = end != std::string::npos;
    if (!terminated) end = output.size();
    std::string_view line(output.data() + start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const LineError error = parser.parse(line, parsed);
    // A last line without '\n' of a killed run may have been cut short: not taken.
    const bool cut_short = !terminated && cut;
    const std::string verdict = cut_short                   ? "cut when the run was killed"
                                : error == LineError::kOk ? ""
                                                          : std::string(line_error_name(error));
    if (verdict.empty()) {
      ++run.good_lines;
      run.lines.append(line);
      run.lines.push_back('\n');
    } else {
      ++run.bad_lines;
      if (run.first_bad_line.empty()) {
        run.first_bad_line = std::string(line.substr(0, 120));
        run.first_bad_reason = verdict;
      }
    }
    if (keep_verdicts) run.verdicts.emplace_back(std::string(line), verdict);
  }
}

std::string exit_reason(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("wait status {}", status);
}

}  // namespace

std::string PluginOptions::default_dir() {
  if (::geteuid() == 0) return "/etc/monitor/plugins";
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && xdg[0] == '/') {
    return std::string(xdg) + "/monitor/plugins";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && home[0] == '/' ? home : "/tmp") + "/.config/monitor/plugins";
}

std::optional<PluginName> parse_plugin_name(std::string_view file_name) {
  size_t digits = 0;
  while (digits < file_name.size() && digits < 6 && file_name[digits] >= '0' && file_name[digits] <= '9') ++digits;
  if (digits == 0 || digits >= file_name.size() || file_name[digits] != '_') return std::nullopt;
  int interval = 0;
  for (size_t i = 0; i < digits; ++i) interval = interval * 10 + (file_name[i] - '0');
  if (interval < 1 || interval > 86400) return std::nullopt;
  std::string_view stem = file_name.substr(digits + 1);
  if (stem.front() == '.') return std::nullopt;  // "60_.sh": no name
  // The extension says the language, not the plugin: "mysql_status.sh" is "MysqlStatus".
  if (const size_t dot = stem.rfind('.'); dot != std::string_view::npos && dot != 0) stem = stem.substr(0, dot);
  std::string segment = device_segment(stem);
  if (segment.empty()) return std::nullopt;
  return PluginName{interval, std::move(segment)};
}

std::string_view plugin_outcome_name(PluginOutcome outcome) noexcept {
  switch (outcome) {
    case PluginOutcome::kOk: return "ok";
    case PluginOutcome::kFailed: return "failed";
    case PluginOutcome::kTimedOut: return "timed out";
    case PluginOutcome::kFlooded: return "flooded";
  }
  return "?";
}

// A running plugin: its process (in a group of its own), pipes and deadline.
struct PluginRunner::Child {
  pid_t pid = -1;
  int pidfd = -1;  // readable once the process has exited
  int out_fd = -1;
  int err_fd = -1;
  int64_t deadline_ns = 0;
  bool killed = false;
  std::string output;
  PluginRun run;

  ~Child() {
    close_fd(pidfd);
    close_fd(out_fd);
    close_fd(err_fd);
  }

  void kill_group() {
    if (pid > 0) ::kill(-pid, SIGKILL);
    killed = true;
  }

  // Starts `path` with a clean environment, standard input from /dev/null,
  // in its own process group, in its directory. False with run.reason set.
  bool start(const std::string& path, const std::string& dir, int64_t server_id, int interval_s) {
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      run.reason = "could not start: pipe: " + errno_text(errno);
      return false;
    }
    if (::pipe2(err_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      run.reason = "could not start: pipe: " + errno_text(errno);
      ::close(out_pipe[0]);
      ::close(out_pipe[1]);
      return false;
    }
    // The child's ends must block: a plugin does not expect EAGAIN on its stdout.
    ::fcntl(out_pipe[1], F_SETFL, 0);
    ::fcntl(err_pipe[1], F_SETFL, 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::string env_server = fmt::format("MONITOR_SERVER_ID={}", server_id);
    std::string env_interval = fmt::format("MONITOR_INTERVAL={}", interval_s);
    char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    char env_home[] = "HOME=/";
    char env_lang[] = "LC_ALL=C.UTF-8";
    char* envp[] = {env_path, env_home, env_lang, env_server.data(), env_interval.data(), nullptr};
    std::string arg0 = path;
    char* argv[] = {arg0.data(), nullptr};
    const int error = posix_spawn(&pid, path.c_str(), &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    out_fd = out_pipe[0];
    err_fd = err_pipe[0];
    if (error != 0) {
      pid = -1;
      run.reason = "could not start: " + errno_text(error);
      return false;
    }
    pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
      // Without a pidfd the run could not be waited for: end it now.
      run.reason = "could not start: pidfd_open: " + errno_text(errno);
      kill_group();
      ::waitpid(pid, nullptr, 0);
      pid = -1;
      return false;
    }
    return true;
  }

  // Reads what the pipes hold; kills the group when the output passes `max_output`.
  void pump(size_t max_output) {
    bool over = false;
    if (out_fd >= 0 && !read_available(out_fd, output, max_output, over)) close_fd(out_fd);
    if (over && run.outcome == PluginOutcome::kOk) {
      run.outcome = PluginOutcome::kFlooded;
      run.reason = fmt::format("wrote more than {} bytes", max_output);
      kill_group();
    }
    bool stderr_over = false;
    if (err_fd >= 0 && !read_available(err_fd, run.stderr_head, kStderrKept, stderr_over)) close_fd(err_fd);
  }

  // After the process exited: reaps it, ends what it left in its group, and
  // reads what is left in the pipes (bounded by their buffers now).
  void reap(size_t max_output) {
    // Before the wait: while the exited process is a zombie its id, the
    // group's, cannot be taken by another process.
    ::kill(-pid, SIGKILL);  // children it left behind would hold the pipes
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pump(max_output);
    if (run.outcome == PluginOutcome::kOk && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
      run.outcome = PluginOutcome::kFailed;
      run.reason = exit_reason(status);
    }
    pid = -1;
  }
};

PluginRun run_plugin_once(const std::string& relative_path, const PluginOptions& options, int64_t server_id,
                          const StatsdOptions& statsd, int timeout_s) {
  // Absolute: the plugin starts in its own directory.
  std::error_code ignored;
  const std::string path = std::filesystem::absolute(relative_path, ignored).string();
  PluginRunner::Child child;
  const size_t slash = path.rfind('/');
  child.run.file = slash == std::string::npos ? path : path.substr(slash + 1);
  if (auto name = parse_plugin_name(child.run.file)) child.run.segment = name->segment;
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  child.run.started_ns = realtime_ns();
  if (!child.start(path, dir, server_id, timeout_s)) {
    child.run.outcome = PluginOutcome::kFailed;
    child.run.ended_ns = realtime_ns();
    return std::move(child.run);
  }
  const int64_t deadline = child.run.started_ns + int64_t{timeout_s} * kNsPerS;
  for (;;) {
    pollfd fds[3] = {{child.pidfd, POLLIN, 0}, {child.out_fd, POLLIN, 0}, {child.err_fd, POLLIN, 0}};
    const int64_t left_ms = (deadline - realtime_ns()) / 1'000'000;
    if (left_ms <= 0 && !child.killed) {
      child.run.outcome = PluginOutcome::kTimedOut;
      child.run.reason = fmt::format("still running after {} s", timeout_s);
      child.kill_group();
    }
    ::poll(fds, 3, child.killed ? 100 : static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    child.pump(options.max_output_bytes);
    if ((fds[0].revents & POLLIN) != 0) {
      child.reap(options.max_output_bytes);
      break;
    }
  }
  child.run.ended_ns = realtime_ns();
  parse_output(child.output, child.killed, server_id, statsd, true, child.run);
  return std::move(child.run);
}

PluginRunner::PluginRunner(PluginOptions options, int64_t server_id, StatsdOptions statsd)
    : options_(std::move(options)),
      dir_(std::filesystem::absolute(options_.effective_dir()).string()),
      server_id_(server_id),
      statsd_(std::move(statsd)) {
  if (::pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error("plugins: pipe: " + errno_text(errno));
  }
  thread_ = std::jthread([this](std::stop_token stop) {
    // The thread sleeps in poll(): the stop wakes it through the pipe.
    const std::stop_callback wake(stop, [this] {
      const char byte = 0;
      [[maybe_unused]] const ssize_t n = ::write(wake_fds_[1], &byte, 1);
    });
    run(stop);
  });
}

PluginRunner::~PluginRunner() {
  thread_.request_stop();
  thread_.join();  // before the pipe it polls closes
  close_fd(wake_fds_[0]);
  close_fd(wake_fds_[1]);
}

void PluginRunner::take(std::vector<PluginRun>& out) {
  std::lock_guard lock(mutex_);
  while (!done_.empty()) {
    out.push_back(std::move(done_.front()));
    done_.pop_front();
  }
}

HostRound PluginRunner::health_round(const PluginRun& run) {
  HostRound round;
  round.time_ns = run.ended_ns;
  const std::string prefix = "Plugin." + run.segment + ".";
  const uint32_t sum = MONITOR_OP_SUM;
  round.samples.push_back({prefix + "Runs", 1, sum});
  round.samples.push_back({prefix + "Failed", run.outcome == PluginOutcome::kFailed ? 1 : 0, sum});
  round.samples.push_back({prefix + "TimedOut", run.outcome == PluginOutcome::kTimedOut ? 1 : 0, sum});
  round.samples.push_back({prefix + "Flooded", run.outcome == PluginOutcome::kFlooded ? 1 : 0, sum});
  round.samples.push_back({prefix + "BadLines", run.bad_lines, sum});
  round.samples.push_back({prefix + "Lines", run.good_lines, sum});
  round.samples.push_back({prefix + "Millis", (run.ended_ns - run.started_ns) / 1'000'000, MONITOR_OP_MAX});
  return round;
}

void PluginRunner::run(std::stop_token stop) {
  spdlog::info("plugins: running executables named <interval>_<name> in {} (at most {} at once)", dir_,
               options_.max_running);
  while (!stop.stop_requested()) {
    const int64_t now = realtime_ns();
    if (real_time_due(now, next_rescan_ns_, int64_t{options_.rescan_s} * kNsPerS)) {
      rescan(now);
      next_rescan_ns_ = now + int64_t{options_.rescan_s} * kNsPerS;
    }
    for (auto& child : children_) {
      if (!child->killed && now >= child->deadline_ns) {
        child->run.outcome = PluginOutcome::kTimedOut;
        child->run.reason = fmt::format("still running after {} s", (child->deadline_ns - child->run.started_ns) / kNsPerS);
        child->kill_group();
      }
    }
    start_due(now);

    int64_t wake_at = next_rescan_ns_;
    for (const auto& [file, plugin] : plugins_) {
      if (!plugin.running) wake_at = std::min(wake_at, plugin.next_due_ns);
    }
    for (const auto& child : children_) {
      if (!child->killed) wake_at = std::min(wake_at, child->deadline_ns);
    }
    std::vector<pollfd> fds;
    fds.push_back({wake_fds_[0], POLLIN, 0});
    for (const auto& child : children_) {
      fds.push_back({child->pidfd, POLLIN, 0});
      fds.push_back({child->out_fd, POLLIN, 0});
      fds.push_back({child->err_fd, POLLIN, 0});
    }
    const int64_t wait_ms = std::clamp<int64_t>((wake_at - realtime_ns()) / 1'000'000 + 1, 0, 10'000);
    ::poll(fds.data(), fds.size(), static_cast<int>(wait_ms));
    const int64_t after = realtime_ns();
    for (size_t i = 0; i < children_.size();) {
      Child& child = *children_[i];
      child.pump(options_.max_output_bytes);
      if ((fds[1 + 3 * i].revents & POLLIN) == 0) {
        ++i;
        continue;
      }
      child.reap(options_.max_output_bytes);
      finish(child, after);
      children_.erase(children_.begin() + static_cast<ptrdiff_t>(i));
      fds.erase(fds.begin() + 1 + 3 * static_cast<ptrdiff_t>(i), fds.begin() + 4 + 3 * static_cast<ptrdiff_t>(i));
    }
  }
  for (auto& child : children_) {
    child->kill_group();
    child->reap(options_.max_output_bytes);
  }
  counters_.running.store(0);
}

void PluginRunner::rescan(int64_t now_ns) {
  DIR* dir = ::opendir(dir_.c_str());
  std::map<std::string, Plugin> found;
  if (dir != nullptr) {
    while (const dirent* entry = ::readdir(dir)) {
      const std::string file = entry->d_name;
      auto name = parse_plugin_name(file);
      if (!name) continue;  // not a plugin: READMEs, editors' backups, helpers
      const std::string path = dir_ + "/" + file;
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & S_IXUSR) == 0) continue;
      // As cron and sudo do: a file anyone else could rewrite would run their code as the agent.
      const bool safe_owner = st.st_uid == 0 || st.st_uid == ::geteuid();
      if (!safe_owner || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        if (!plugins_.contains(file) && !refused_log_.contains(file)) counters_.refused.fetch_add(1);
        uint64_t suppressed = 0;
        if (refused_log_.try_emplace(file, 3600 * kNsPerS).first->second.allow(now_ns, suppressed)) {
          spdlog::warn("plugins: not running {}: {} (owner uid {}, mode {:o}); a plugin must be owned by root or "
                       "this agent's user and writable by its owner only",
                       path, safe_owner ? "writable by group or others" : "owned by another user", st.st_uid,
                       st.st_mode & 07777);
        }
        continue;
      }
      auto it = plugins_.find(file);
      if (it != plugins_.end() && it->second.name.interval_s == name->interval_s) {
        found.insert(plugins_.extract(it));
        continue;
      }
      Plugin plugin{file, *name};
      const int64_t period = int64_t{name->interval_s} * kNsPerS;
      plugin.next_due_ns = (now_ns / period + 1) * period;
      spdlog::info("plugins: found {}, every {} s, health as {} Plugin.{}.*", file, name->interval_s,
                   options_.service, name->segment);
      found.emplace(file, std::move(plugin));
    }
    ::closedir(dir);
  }
  for (auto& [file, plugin] : plugins_) {
    if (plugin.running) {
      found.emplace(file, std::move(plugin));  // still running: finished as usual, then gone at the next scan
    } else {
      spdlog::info("plugins: {} is gone from {}", file, dir_);
    }
  }
  plugins_ = std::move(found);
}

void PluginRunner::start_due(int64_t now_ns) {
  for (auto& [file, plugin] : plugins_) {
    const int64_t period = int64_t{plugin.name.interval_s} * kNsPerS;
    if (plugin.running || !real_time_due(now_ns, plugin.next_due_ns, period)) continue;
    if (children_.size() >= static_cast<size_t>(options_.max_running)) {
      // Waits for a free slot, but not past its next run.
      if (now_ns >= plugin.next_due_ns + period) {
        counters_.skipped.fetch_add(1);
        plugin.next_due_ns = (now_ns / period + 1) * period;
      }
      continue;
    }
    plugin.next_due_ns = (now_ns / period + 1) * period;
    auto child = std::make_unique<Child>();
    child->run.file = file;
    child->run.segment = plugin.name.segment;
    child->run.started_ns = now_ns;
    const int timeout_s = std::min(plugin.name.interval_s, options_.max_timeout_s);
    child->deadline_ns = now_ns + int64_t{timeout_s} * kNsPerS;
    if (!child->start(dir_ + "/" + file, dir_, server_id_, plugin.name.interval_s)) {
      child->run.outcome = PluginOutcome::kFailed;
      finish(*child, now_ns);
      continue;
    }
    plugin.running = true;
    counters_.running.fetch_add(1);
    children_.push_back(std::move(child));
  }
}

void PluginRunner::finish(Child& child, int64_t now_ns) {
  PluginRun& run = child.run;
  run.ended_ns = now_ns;
  parse_output(child.output, child.killed, server_id_, statsd_, false, run);
  counters_.runs.fetch_add(1);
  if (run.outcome == PluginOutcome::kFailed) counters_.failed.fetch_add(1);
  if (run.outcome == PluginOutcome::kTimedOut) counters_.timed_out.fetch_add(1);
  if (run.outcome == PluginOutcome::kFlooded) counters_.flooded.fetch_add(1);
  counters_.bad_lines.fetch_add(run.bad_lines);
  counters_.lines.fetch_add(run.good_lines);
  if (auto it = plugins_.find(run.file); it != plugins_.end()) {
    if (it->second.running) {
      it->second.running = false;
      counters_.running.fetch_sub(1);
    }
    log_run(it->second, run);
  }
  std::lock_guard lock(mutex_);
  if (done_.size() >= kMaxWaitingRuns) {
    runs_dropped_.fetch_add(1);
    return;
  }
  done_.push_back(std::move(run));
}

void PluginRunner::log_run(Plugin& plugin, const PluginRun& run) {
  if (run.outcome == PluginOutcome::kOk && run.bad_lines == 0) return;
  uint64_t suppressed = 0;
  if (!plugin.log.allow(run.ended_ns, suppressed)) return;
  std::string stderr_line = run.stderr_head.substr(0, run.stderr_head.find('\n'));
  spdlog::warn("plugin {}: {}{}{}{}{} [{} more faulty runs in the last minute not shown]", run.file,
               plugin_outcome_name(run.outcome), run.reason.empty() ? "" : " (" + run.reason + ")",
               stderr_line.empty() ? "" : ", stderr: " + stderr_line,
               run.bad_lines == 0 ? "" : fmt::format(", {} bad lines, the first \"{}\" ({})", run.bad_lines,
                                                     run.first_bad_line, run.first_bad_reason),
               fmt::format(", {} lines taken", run.good_lines), suppressed);
}

}  // namespace monitor::agent
