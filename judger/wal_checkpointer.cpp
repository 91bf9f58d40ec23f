#include "judger/wal_checkpointer.hpp"

#include "judger/sqlite_db.hpp"

#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

namespace monitor::judger {

WalCheckpointer::WalCheckpointer(const std::filesystem::path& file, std::chrono::milliseconds every) {
  db_ = open_db(file, OpenMode::kReadWrite).release();  // closed after the thread that uses it ends
  thread_ = std::jthread([this, every](std::stop_token stop) { run(stop, every); });
}

WalCheckpointer::~WalCheckpointer() {
  thread_.request_stop();
  thread_.join();  // before the connection it uses goes
  sqlite3_close(db_);
}

uint64_t WalCheckpointer::failures() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

void WalCheckpointer::run(std::stop_token stop, std::chrono::milliseconds every) {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, stop, every, [] { return false; }) && !stop.stop_requested()) {
    lock.unlock();
    int log_frames = 0, checkpointed = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &checkpointed);
    lock.lock();
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      if (failures_++ % 60 == 0) spdlog::warn("checkpointing the store's log: {} ({} failures)", sqlite3_errstr(rc), failures_);
    }
  }
}

}  // namespace monitor::judger
