// The command channel: "/path args…" run without a shell, the message's
// JSON body on its stdin, waited for at most its timeout.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "alarm/rule.hpp"
#include "common/clock.hpp"
#include "judger/notify/channel.hpp"

namespace monitor::judger::notify {
namespace {

// What a command sees of the judger: PATH and LANG, and the alarm as
// MONITOR_ALARM_* (the key to de-duplicate by). Not the judger's environment,
// which may hold the registry's password.
std::vector<std::string> command_environment(const std::string& key, const std::string& body) {
  std::vector<std::string> env{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  const char* lang = std::getenv("LANG");
  env.push_back(std::string("LANG=") + (lang != nullptr ? lang : "C.UTF-8"));
  env.push_back("MONITOR_ALARM_KEY=" + key);
  boost::system::error_code ec;
  const boost::json::value parsed = boost::json::parse(body, ec);
  const auto* obj = ec ? nullptr : parsed.if_object();
  if (obj == nullptr) return env;
  for (const auto& [field, name] : {std::pair{"kind", "KIND"}, {"rule", "RULE"}, {"severity", "SEVERITY"},
                                    {"summary", "SUMMARY"}, {"service", "SERVICE"}, {"attr", "ATTR"},
                                    {"op", "OP"}, {"per", "PER"}, {"condition", "CONDITION"}, {"minute", "MINUTE"}}) {
    const auto* v = obj->if_contains(field);
    if (v == nullptr) continue;
    std::string text = v->is_string() ? std::string(v->as_string()) : boost::json::serialize(*v);
    std::replace(text.begin(), text.end(), '\0', ' ');
    env.push_back(fmt::format("MONITOR_ALARM_{}={}", name, text));
  }
  return env;
}

// Starts a notification command: without a shell, the body on stdin from
// `input`, in a process group of its own (killed as one), with no descriptor
// of the judger's but 0-2 and a clean environment. Its pid, or nullopt with
// `error` set.
std::optional<pid_t> spawn_command(const std::string& spec, const std::string& key, const std::string& body,
                                   const std::string& input, std::string& error) {
  auto split = alarm::command_words(spec);
  if (!split || split->empty()) {
    error = split ? "no program to run" : "a quoted argument is not closed";
    return std::nullopt;
  }
  std::vector<std::string>& words = *split;
  {
    std::ofstream f(input, std::ios::trunc);
    f << body;
    if (!f) {
      error = "cannot write the command's input";
      return std::nullopt;
    }
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, input.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_text = command_environment(key, body);
  std::vector<char*> env;
  for (auto& e : env_text) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    error = fmt::format("cannot run {}: {}", words[0], std::strerror(rc));
    return std::nullopt;
  }
  return pid;
}

// Waits for `pid` to end, at most until `deadline_ms`; past it kills its
// process group. The error of the run, empty when it exited 0.
std::string wait_for(pid_t pid, int64_t deadline_ms, int timeout_s) {
  // A pidfd is readable once the process has ended: the wait costs nothing,
  // however many commands wait for a slot or run.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0) {
    const int64_t left_ms = deadline_ms - realtime_ns() / 1'000'000;
    if (left_ms <= 0) break;
    if (pidfd >= 0) {
      pollfd fd{pidfd, POLLIN, 0};
      ::poll(&fd, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    } else {
      ::usleep(20'000);  // no pidfd (an old kernel): polled
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  if (done == 0) {
    ::kill(-pid, SIGKILL);  // its process group: what it started goes too
    waitpid(pid, &status, 0);
    return fmt::format("still running after {} s: killed", timeout_s);
  }
  ::kill(-pid, SIGKILL);  // a child it left behind would hold what it inherited
  if (done < 0) return fmt::format("waitpid: {}", std::strerror(errno));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  return WIFEXITED(status) ? fmt::format("exited with {}", WEXITSTATUS(status))
                           : fmt::format("killed by signal {}", WTERMSIG(status));
}

class CommandChannel final : public Channel {
 public:
  CommandChannel(std::string input_dir, int timeout_s) : input_dir_(std::move(input_dir)), timeout_s_(timeout_s) {
    std::error_code ec;
    std::filesystem::create_directories(input_dir_, ec);
  }

  bool deliver(const std::string& spec, const Delivery& d, std::string& error) override {
    const std::string input = (std::filesystem::path(input_dir_) / (d.key + ".json")).string();
    const int64_t deadline_ms = realtime_ns() / 1'000'000 + timeout_s_ * 1000LL;
    if (const auto pid = spawn_command(spec, d.key, d.body, input, error)) error = wait_for(*pid, deadline_ms, timeout_s_);
    std::error_code ec;
    std::filesystem::remove(input, ec);
    return error.empty();
  }

 private:
  const std::string input_dir_;
  const int timeout_s_;
};

}  // namespace

std::unique_ptr<Channel> make_command_channel(std::string input_dir, int timeout_s) {
  return std::make_unique<CommandChannel>(std::move(input_dir), timeout_s);
}

}  // namespace monitor::judger::notify
