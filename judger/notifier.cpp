#include "judger/notifier.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "alarm/rule.hpp"
#include "common/clock.hpp"
#include "judger/sqlite_statement.hpp"
#include "mail/smtp_mail.hpp"
#include "net/http_post.hpp"


namespace monitor::judger {
namespace {

int64_t now_ms() { return realtime_ns() / 1'000'000; }

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

}  // namespace

Notifier::Notifier(const std::string& data_dir, NotifierOptions options) : options_(std::move(options)) {
  const std::string path = (std::filesystem::path(data_dir) / "alarms.db").string();
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error(fmt::format("open {}: {}", path, message));
  }
  const char* schema = R"(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS outbox (
  key TEXT PRIMARY KEY, rule TEXT NOT NULL, target TEXT NOT NULL, subject TEXT NOT NULL, text TEXT NOT NULL,
  html TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', tries INTEGER NOT NULL DEFAULT 0,
  next_try_ms INTEGER NOT NULL, created_s INTEGER NOT NULL, error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_try_ms);
CREATE TABLE IF NOT EXISTS history (
  id INTEGER PRIMARY KEY, time_s INTEGER NOT NULL, rule TEXT NOT NULL, server INTEGER NOT NULL,
  event TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_rule ON history (rule, time_s);
)";
  char* error = nullptr;
  if (sqlite3_exec(db_, schema, nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error != nullptr ? error : "?";
    sqlite3_free(error);
    sqlite3_close(db_);
    throw std::runtime_error(fmt::format("prepare {}: {}", path, message));
  }
  {
    Statement st(db_, "SELECT count(*) FROM outbox WHERE state = 'pending'");
    if (st.step() == SQLITE_ROW && st.int64(0) > 0) {
      spdlog::info("alarms: {} notifications waiting in the outbox since before the restart", st.int64(0));
    }
  }
  thread_ = std::thread([this] { run(); });
  for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { work(); });
}

Notifier::~Notifier() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  jobs_ready_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (std::thread& w : workers_) w.join();  // a delivery under way ends within its timeout
  sqlite3_close(db_);
}

bool Notifier::enqueue(const Notification& n) {
  std::lock_guard lock(mutex_);
  Statement st(db_,
          "INSERT OR IGNORE INTO outbox (key, rule, target, subject, text, html, body, next_try_ms, created_s) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  st.bind(1, n.key).bind(2, n.rule).bind(3, n.target).bind(4, n.subject).bind(5, n.text).bind(6, n.html);
  st.bind(7, boost::json::serialize(n.body)).bind(8, now_ms()).bind(9, now_ms() / 1000);
  if (st.step() != SQLITE_DONE) {
    spdlog::error("alarms: could not queue notification {} to {}: {}", n.key, n.target, sqlite3_errmsg(db_));
    return false;
  }
  if (sqlite3_changes(db_) > 0) ++counters_.queued;
  wake_.notify_all();
  return true;
}

void Notifier::record(int64_t time_s, const std::string& rule, int64_t server, const std::string& event,
                      const std::string& detail) {
  std::lock_guard lock(mutex_);
  Statement st(db_, "INSERT INTO history (time_s, rule, server, event, detail) VALUES (?, ?, ?, ?, ?)");
  st.bind(1, time_s).bind(2, rule).bind(3, server).bind(4, event).bind(5, detail);
  if (st.step() != SQLITE_DONE) spdlog::error("alarms: could not record {} of {}: {}", event, rule, sqlite3_errmsg(db_));
}

boost::json::array Notifier::history(const std::string& rule, int64_t from_s, int64_t to_s, size_t limit) {
  std::lock_guard lock(mutex_);
  Statement st(db_,
          "SELECT time_s, rule, server, event, detail FROM history WHERE (? = '' OR rule = ?) AND time_s >= ? "
          "AND time_s < ? ORDER BY time_s DESC, id DESC LIMIT ?");
  st.bind(1, rule).bind(2, rule).bind(3, from_s).bind(4, to_s).bind(5, static_cast<int64_t>(limit));
  boost::json::array out;
  while (st.step() == SQLITE_ROW) {
    out.push_back(boost::json::object{{"time", st.int64(0)}, {"rule", st.text(1)}, {"server", st.int64(2)},
                                      {"event", st.text(3)}, {"detail", st.text(4)}});
  }
  return out;
}

NotifierCounters Notifier::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

uint64_t Notifier::pending() const {
  std::lock_guard lock(mutex_);
  Statement st(db_, "SELECT count(*) FROM outbox WHERE state = 'pending'");
  return st.step() == SQLITE_ROW ? static_cast<uint64_t>(st.int64(0)) : 0;
}

void Notifier::settle(const std::string& key, const std::string& rule, const std::string& target, bool ok,
                      const std::string& error) {
  std::lock_guard lock(mutex_);
  if (ok) {
    Statement st(db_, "UPDATE outbox SET state = 'sent', tries = tries + 1, error = '' WHERE key = ?");
    st.bind(1, key).step();
    ++counters_.sent;
    Statement h(db_, "INSERT INTO history (time_s, rule, server, event, detail) VALUES (?, ?, -1, 'delivered', ?)");
    h.bind(1, now_ms() / 1000).bind(2, rule).bind(3, target).step();
    spdlog::info("alarms: {} delivered to {} ({})", rule, target, key);
    return;
  }
  Statement q(db_, "SELECT tries FROM outbox WHERE key = ?");
  q.bind(1, key);
  const int64_t tries = (q.step() == SQLITE_ROW ? q.int64(0) : 0) + 1;
  if (tries >= options_.tries) {
    Statement st(db_, "UPDATE outbox SET state = 'failed', tries = ?, error = ? WHERE key = ?");
    st.bind(1, tries).bind(2, error).bind(3, key).step();
    ++counters_.failed;
    Statement h(db_, "INSERT INTO history (time_s, rule, server, event, detail) VALUES (?, ?, -1, 'notify_failed', ?)");
    h.bind(1, now_ms() / 1000).bind(2, rule).bind(3, fmt::format("{}: {} (after {} tries)", target, error, tries)).step();
    spdlog::error("alarms: notification {} of {} to {} failed after {} tries: {}", key, rule, target, tries, error);
    return;
  }
  const int64_t backoff = std::min<int64_t>(int64_t{options_.backoff_ms} << std::min<int64_t>(tries - 1, 20), 300'000);
  Statement st(db_, "UPDATE outbox SET tries = ?, next_try_ms = ?, error = ? WHERE key = ?");
  st.bind(1, tries).bind(2, now_ms() + backoff).bind(3, error).bind(4, key).step();
  ++counters_.retried;
  spdlog::warn("alarms: notification {} to {} failed (try {} of {}), again in {} ms: {}", key, target, tries,
               options_.tries, backoff, error);
}

void Notifier::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      jobs_ready_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;  // what was handed out and not sent stays pending: sent after the restart
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    std::string error;
    const bool ok = deliver(job.target, job.key, job.subject, job.text, job.html, job.body, error);
    settle(job.key, job.rule, job.target, ok, error);
    {
      std::lock_guard lock(mutex_);
      in_flight_.erase(job.key);
      if (--in_flight_by_target_[job.target] == 0) in_flight_by_target_.erase(job.target);
    }
    wake_.notify_all();  // the lane has room again
  }
}

void Notifier::run() {
  std::map<pid_t, RunningCommand> running;
  const std::filesystem::path stdin_dir = std::filesystem::path(sqlite3_db_filename(db_, "main")).parent_path() / "command-input";
  std::error_code fs_ec;
  std::filesystem::create_directories(stdin_dir, fs_ec);
  // The history is kept 30 days (the daily report and `alarm history` read
  // it); a settled outbox row 2 days, far longer than a restart's catch-up
  // (60 minutes) during which its key keeps a replay from queueing it again.
  constexpr int64_t kHistoryKeepS = 30 * 86400, kSettledKeepS = 2 * 86400;
  int64_t next_prune_s = 0;
  auto prune = [&] {
    const int64_t now_s = now_ms() / 1000;
    if (now_s < next_prune_s) return;
    next_prune_s = now_s + 3600;
    std::lock_guard lock(mutex_);
    Statement h(db_, "DELETE FROM history WHERE time_s < ?");
    h.bind(1, now_s - kHistoryKeepS).step();
    const int history_rows = sqlite3_changes(db_);
    Statement o(db_, "DELETE FROM outbox WHERE state != 'pending' AND created_s < ?");
    o.bind(1, now_s - kSettledKeepS).step();
    const int outbox_rows = sqlite3_changes(db_);
    if (history_rows + outbox_rows > 0) {
      spdlog::info("alarms: pruned {} history row(s) older than 30 days and {} settled notification(s) older than 2 days",
                   history_rows, outbox_rows);
    }
  };
  for (;;) {
    prune();
    std::vector<Job> commands;
    {
      std::unique_lock lock(mutex_);
      if (stopping_) break;
      // Running commands are reaped by polling: a short wait only while there are some.
      int64_t next_ms = now_ms() + (running.empty() ? 1000 : 50);
      int64_t in_flight = 0;
      for (const auto& [target, n] : in_flight_by_target_) in_flight += n;
      size_t handed = 0;
      // Due rows whose lane is full, or commands past command_max_running,
      // are skipped, not waited on: the wait below ends when a lane frees.
      Statement st(db_,
              "SELECT key, rule, target, subject, text, html, body, next_try_ms FROM outbox WHERE state = 'pending' "
              "ORDER BY next_try_ms LIMIT 256");
      while (st.step() == SQLITE_ROW) {
        const int64_t at = st.int64(7);
        const std::string key = st.text(0), target = st.text(2);
        if (in_flight_.contains(key)) continue;
        if (at > now_ms()) {
          next_ms = std::min(next_ms, at);
          continue;
        }
        Job job{key, st.text(1), target, st.text(3), st.text(4), st.text(5), st.text(6)};
        if (target.starts_with("command:")) {
          if (running.size() + commands.size() >= static_cast<size_t>(options_.command_max_running)) continue;
          in_flight_.insert(key);
          commands.push_back(std::move(job));
          continue;
        }
        int& lane = in_flight_by_target_[target];
        if (lane >= kPerTarget || in_flight >= kWorkers) {
          if (lane == 0) in_flight_by_target_.erase(target);
          continue;
        }
        ++lane;
        ++in_flight;
        in_flight_.insert(key);
        jobs_.push_back(std::move(job));
        ++handed;
      }
      if (handed > 0) jobs_ready_.notify_all();
      if (handed == 0 && commands.empty()) {
        wake_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, next_ms - now_ms())));
      }
      if (stopping_) break;
    }
    for (const Job& d : commands) {
      const std::string input = (stdin_dir / (d.key + ".json")).string();
      std::string error;
      if (const auto pid = spawn_command(d.target.substr(8), d.key, d.body, input, error)) {
        running[*pid] = {*pid, d.key, d.rule, d.target, now_ms() + options_.command_timeout_s * 1000LL, input};
      } else {
        std::filesystem::remove(input, fs_ec);
        settle(d.key, d.rule, d.target, false, error);
        std::lock_guard lock(mutex_);
        in_flight_.erase(d.key);
      }
    }
    for (auto it = running.begin(); it != running.end();) {
      it = reap(it->second, false) ? running.erase(it) : std::next(it);
    }
  }
  // Stopping: a command under way may finish until its deadline and is
  // settled as any try is, so one that succeeded is not run again after the
  // restart (only one that failed, or was killed at its deadline, is tried
  // again). The stop waits at most command_timeout_s.
  if (!running.empty()) {
    spdlog::info("alarms: stopping: waiting for {} command(s) under way (at most {} s)", running.size(),
                 options_.command_timeout_s);
  }
  for (auto& [pid, c] : running) reap(c, true);
}

// Settles a command that has ended, or is past its deadline (then killed
// with its process group), or, with `wait`, once either happens. True once
// settled.
bool Notifier::reap(const RunningCommand& c, bool wait) {
  int status = 0;
  pid_t done = waitpid(c.pid, &status, WNOHANG);
  while (wait && done == 0 && now_ms() < c.deadline_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polled: a child's end wakes nothing here
    done = waitpid(c.pid, &status, WNOHANG);
  }
  std::string error;
  if (done == 0 && now_ms() >= c.deadline_ms) {
    ::kill(-c.pid, SIGKILL);  // its process group: what it started goes too
    waitpid(c.pid, &status, 0);
    error = fmt::format("still running after {} s: killed", options_.command_timeout_s);
    done = c.pid;
  } else if (done == c.pid) {
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      error = WIFEXITED(status) ? fmt::format("exited with {}", WEXITSTATUS(status))
                                : fmt::format("killed by signal {}", WTERMSIG(status));
    }
    ::kill(-c.pid, SIGKILL);  // a child it left behind would hold what it inherited
  }
  if (done == 0) return false;
  std::error_code fs_ec;
  std::filesystem::remove(c.stdin_path, fs_ec);
  settle(c.key, c.rule, c.target, error.empty(), error);
  std::lock_guard lock(mutex_);
  in_flight_.erase(c.key);
  return true;
}

bool Notifier::deliver(const std::string& target, const std::string& key, const std::string& subject,
                       const std::string& text, const std::string& html, const std::string& body, std::string& error) {
  if (target.starts_with("webhook:")) return post_webhook(target.substr(8), key, body, error);
  if (target.starts_with("email:")) return send_mail(target.substr(6), key, subject, text, html, error);
  error = "unknown target";
  return false;
}

bool Notifier::post_webhook(const std::string& url, const std::string& key, const std::string& body,
                            std::string& error) {
  net::HttpPoster poster;
  const net::PostReply reply = poster.post(url, body, {"Content-Type: application/json", "Idempotency-Key: " + key},
                                           static_cast<long>(options_.timeout_s));
  error = reply.error;
  return reply.ok();
}

bool Notifier::send_mail(const std::string& to, const std::string& key, const std::string& subject,
                         const std::string& text, const std::string& html, std::string& error) {
  // The Message-ID is the idempotency key: a retried delivery is recognisable.
  return mail::send(options_.smtp_url, {options_.mail_from, to, subject, key, text, html},
                    static_cast<long>(options_.timeout_s), error);
}

}  // namespace monitor::judger
