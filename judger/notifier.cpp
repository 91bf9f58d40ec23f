#include "judger/notifier.hpp"


#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "common/clock.hpp"
#include "judger/sqlite_db.hpp"
namespace monitor::judger {
namespace {

int64_t now_ms() { return realtime_ns() / 1'000'000; }

}  // namespace

Notifier::Notifier(const std::string& data_dir, NotifierOptions options) : options_(std::move(options)) {
  const std::filesystem::path path = std::filesystem::path(data_dir) / "alarms.db";
  // Several threads write the outbox: one connection, serialized by SQLite and by mutex_.
  Db db = open_db(path, OpenMode::kCreate, Threading::kShared);
  exec_or_throw(db.get(), R"(
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
)", fmt::format("prepare {}", path.string()));
  db_ = db.release();  // closed by the destructor, after the threads that use it
  {
    Statement st(db_, "SELECT count(*) FROM outbox WHERE state = 'pending'");
    if (st.step() == SQLITE_ROW && st.int64(0) > 0) {
      spdlog::info("alarms: {} notifications waiting in the outbox since before the restart", st.int64(0));
    }
  }
  channels_["webhook"] = notify::make_webhook_channel(options_.timeout_s);
  channels_["email"] = notify::make_email_channel(options_.smtp_url, options_.mail_from, options_.timeout_s);
  channels_["command"] =
      notify::make_command_channel((std::filesystem::path(data_dir) / "command-input").string(), options_.command_timeout_s);
  network_.capacity = kWorkers;
  network_.per_target = kPerTarget;
  commands_.capacity = commands_.per_target = options_.command_max_running;
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
  for (Pool* pool : {&network_, &commands_}) {
    for (int i = 0; i < pool->capacity; ++i) {
      pool->workers.emplace_back([this, pool](std::stop_token stop) { work(*pool, stop); });
    }
  }
}

Notifier::~Notifier() {
  // Every thread at once: no worker takes a new delivery once the stop began.
  thread_.request_stop();
  for (Pool* pool : {&network_, &commands_}) {
    for (std::jthread& w : pool->workers) w.request_stop();
  }
  if (thread_.joinable()) thread_.join();
  // A delivery under way ends within its timeout and is settled as any try
  // is: a command that succeeded is not run again after the restart (only one
  // that failed, or was killed at its deadline). What was handed out and not
  // begun stays pending.
  size_t commands_running = 0;
  {
    std::lock_guard lock(mutex_);
    commands_running = static_cast<size_t>(commands_.in_flight) - commands_.jobs.size();
  }
  if (commands_running > 0) {
    spdlog::info("alarms: stopping: waiting for {} command(s) under way (at most {} s)", commands_running,
                 options_.command_timeout_s);
  }
  for (Pool* pool : {&network_, &commands_}) {
    for (std::jthread& w : pool->workers) w.join();
  }
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

void Notifier::work(Pool& pool, std::stop_token stop) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      pool.ready.wait(lock, stop, [&] { return !pool.jobs.empty(); });
      if (stop.stop_requested()) return;  // what was handed out and not begun stays pending: sent after the restart
      job = std::move(pool.jobs.front());
      pool.jobs.pop_front();
    }
    std::string error;
    const bool ok = deliver(job, error);
    settle(job.key, job.rule, job.target, ok, error);
    {
      std::lock_guard lock(mutex_);
      in_flight_.erase(job.key);
      --pool.in_flight;
      if (--pool.by_target[job.target] == 0) pool.by_target.erase(job.target);
    }
    wake_.notify_all();  // the lane has room again
  }
}

bool Notifier::deliver(const Job& job, std::string& error) {
  const size_t colon = job.target.find(':');
  const auto channel = colon == std::string::npos ? channels_.end() : channels_.find(job.target.substr(0, colon));
  if (channel == channels_.end()) {
    error = "unknown target";
    return false;
  }
  return channel->second->deliver(job.target.substr(colon + 1), {job.key, job.subject, job.text, job.html, job.body},
                                  error);
}

void Notifier::run(std::stop_token stop) {
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
    std::unique_lock lock(mutex_);
    if (stop.stop_requested()) break;
    int64_t next_ms = now_ms() + 1000;
    bool handed = false;
    // Due rows whose lane or pool is full are skipped, not waited on: the
    // wait below ends when a delivery settles.
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
      Pool& pool = target.starts_with("command:") ? commands_ : network_;
      int& lane = pool.by_target[target];
      if (lane >= pool.per_target || pool.in_flight >= pool.capacity) {
        if (lane == 0) pool.by_target.erase(target);
        continue;
      }
      ++lane;
      ++pool.in_flight;
      in_flight_.insert(key);
      pool.jobs.push_back(Job{key, st.text(1), target, st.text(3), st.text(4), st.text(5), st.text(6)});
      pool.ready.notify_one();
      handed = true;
    }
    if (!handed) {
      wake_.wait_for(lock, stop, std::chrono::milliseconds(std::max<int64_t>(1, next_ms - now_ms())), [] { return false; });
    }
  }
}

}  // namespace monitor::judger
