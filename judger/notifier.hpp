// Delivers alarm notifications (webhook, e-mail, command) from an on-disk outbox, retried until done.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

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
/// and the threads that deliver: a notification is on disk before enqueue()
/// returns and leaves the outbox only delivered or recorded as failed, so a
/// restart resumes what was pending. Each target is a lane of its own: at most
/// kPerTarget of its deliveries run at once, on a pool of kWorkers threads, so
/// a receiver that never answers holds up only its own messages. Thread-safe.
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
  struct RunningCommand {
    pid_t pid;
    std::string key, rule, target;
    int64_t deadline_ms;
    std::string stdin_path;
  };
  void run();
  bool reap(const RunningCommand& c, bool wait);
  void work();
  void settle(const std::string& key, const std::string& rule, const std::string& target, bool ok,
              const std::string& error);
  bool deliver(const std::string& target, const std::string& key, const std::string& subject,
               const std::string& text, const std::string& html, const std::string& body, std::string& error);
  bool post_webhook(const std::string& url, const std::string& key, const std::string& body, std::string& error);
  bool send_mail(const std::string& to, const std::string& key, const std::string& subject, const std::string& text,
                 const std::string& html, std::string& error);

  NotifierOptions options_;
  sqlite3* db_ = nullptr;
  mutable std::mutex mutex_;  // db_ and counters_
  std::condition_variable wake_;
  NotifierCounters counters_;
  bool stopping_ = false;
  // Deliveries handed to the workers and not settled yet; all under mutex_.
  std::deque<Job> jobs_;
  std::condition_variable jobs_ready_;
  std::set<std::string> in_flight_;                 // keys: never two tries of one notification at once
  std::map<std::string, int> in_flight_by_target_;  // its lane's deliveries running or waiting for a worker
  std::thread thread_;
  std::vector<std::thread> workers_;
};

}  // namespace monitor::judger
