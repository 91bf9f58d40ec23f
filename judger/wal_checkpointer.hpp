// Checkpoints of the store's write-ahead log, on a thread and connection of
// their own. SQLite's automatic checkpoint runs inside the committing
// writer's call: on the judger's io thread, every few thousand pages, it
// copied the log into the database and synced it, holding ingest (and its
// acknowledgements) for 100-500 ms, longer while a query's snapshot kept
// part of the log pinned. A passive checkpoint from here never blocks the
// writer or the readers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <stop_token>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>

struct sqlite3;

namespace monitor::judger {

class WalCheckpointer {
 public:
  /// Checkpoints the database at `file` every `every` (the caller turned
  /// the writer's automatic checkpoints off). Throws std::runtime_error when
  /// it cannot open the file.
  WalCheckpointer(const std::filesystem::path& file, std::chrono::milliseconds every);
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  /// Checkpoints that failed (busy or an I/O error): a health figure.
  uint64_t failures() const;

 private:
  void run(std::stop_token stop, std::chrono::milliseconds every);

  sqlite3* db_ = nullptr;
  mutable std::mutex mutex_;
  std::condition_variable_any wake_;  // woken at once by the stop token
  uint64_t failures_ = 0;
  std::jthread thread_;
};

}  // namespace monitor::judger
