// Delivers alarm notifications from an on-disk outbox through the channels of
// judger/notify/ (webhook, e-mail, command), retried until done.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "judger/notify/channel.hpp"

struct sqlite3;

namespace monitor::judger {

struct NotifierOptions {
  std::string smtp_url = "smtp://127.0.0.1:25";
  std::string mail_from = "monitor@localhost";
  int tries = 6;                 // deliveries tried before a notification is recorded as failed
  int backoff_ms = 5000;         // before the second try; doubles per try, at most 5 min
  int command_timeout_s = 10;    // a command still running then is killed
  int command_max_running = 4;   // commands running at once; more wait their turn
  int timeout_s = 10;            // one webhook or SMTP exchange
};

/// One message to one target, as the alarm engine composes it.
struct Notification {
  std::string key;      // idempotency key: the same for every try, across restarts
  std::string rule;
  std::string target;   // webhook:URL | email:ADDRESS | command:/PATH ARGS
  std::string subject;
  std::string text;     // plain text
  std::string html;     // for mail
  boost::json::object body;  // the webhook's body, a command's stdin
};

struct NotifierCounters {
  uint64_t sent = 0, failed = 0, retried = 0, queued = 0;
};

/// The durable outbox and the history of alarms (alarms.db in the data dir),
/// and the threads that deliver through the channels (judger/notify/): a
/// notification is on disk before enqueue() returns and leaves the outbox only
/// delivered or recorded as failed, so a restart resumes what was pending. Each target is a lane of its own: at most
/// kPerTarget of its deliveries run at once, on a pool of kWorkers threads, so
/// a receiver that never answers holds up only its own messages; commands
/// have a pool of command_max_running threads of their own. Thread-safe.
class Notifier {
 public:
  static constexpr int kWorkers = 8;    // webhook and mail deliveries at once, over all targets
  static constexpr int kPerTarget = 2;  // of one target
  /// Throws std::runtime_error when alarms.db cannot be opened.
  Notifier(const std::string& data_dir, NotifierOptions options);
  ~Notifier();

  /// Queues it unless a notification with its key was queued before (a
  /// replay after a restart). False if it could not be written (logged).
  bool enqueue(const Notification& n);

  /// Appends to the alarm history: a transition, a notice, a delivery, a failure.
  void record(int64_t time_s, const std::string& rule, int64_t server, const std::string& event,
              const std::string& detail);
  /// History rows as JSON, newest first: rule "" for all; at most `limit`.
  boost::json::array history(const std::string& rule, int64_t from_s, int64_t to_s, size_t limit);

  NotifierCounters counters() const;
  uint64_t pending() const;

 private:
  struct Job {
    std::string key, rule, target, subject, text, html, body;
  };
  // Threads delivering through some channels, with their bounds; under mutex_.
  struct Pool {
    int capacity = 1;    // deliveries at once: its threads
    int per_target = 1;  // of one target (its lane)
    int in_flight = 0;   // handed out and not settled
    std::map<std::string, int> by_target;
    std::deque<Job> jobs;  // handed out, waiting for a thread
    std::condition_variable_any ready;  // woken at once by a worker's stop token
    std::vector<std::jthread> workers;
  };
  void run(std::stop_token stop);
  void work(Pool& pool, std::stop_token stop);
  bool deliver(const Job& job, std::string& error);
  void settle(const std::string& key, const std::string& rule, const std::string& target, bool ok,
              const std::string& error);

  NotifierOptions options_;
  std::map<std::string, std::unique_ptr<notify::Channel>, std::less<>> channels_;  // by the target's scheme
  sqlite3* db_ = nullptr;
  mutable std::mutex mutex_;  // db_, counters_ and the pools
  std::condition_variable_any wake_;  // woken at once by the run thread's stop token
  NotifierCounters counters_;
  std::set<std::string> in_flight_;  // keys: never two tries of one notification at once
  Pool network_;   // webhooks and mail: kWorkers threads, kPerTarget per target
  Pool commands_;  // command_max_running threads
  std::jthread thread_;
};

}  // namespace monitor::judger
