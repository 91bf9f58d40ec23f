// What the exporter reads of the judger's store — its queue of finished
// minutes, their points in series order, the seconds kept for them, the
// names — on a read-only connection of the exporter's thread. The SQL lives
// here, beside the store's schema (judger/minute_store.cpp), not in the
// exporter; each read ends (its statement reset) before it returns, so no
// read pins the store's write-ahead log while a target is away.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "judger/sqlite_db.hpp"

namespace monitor::judger {

class ExportSource {
 public:
  struct QueuedMinute {
    int64_t id = 0;  // the queue's, increasing
    int64_t minute = 0;
    int64_t version = 0;
    int64_t queued_ms = 0;
  };
  struct PointRow {
    std::string service, attr;
    int64_t server_id = -1;
    uint32_t op = 0;
    double value = 0;
  };
  struct SeriesAt {
    std::string service, attr;
    int64_t server_id = -1;
  };

  /// Throws std::runtime_error naming the file.
  explicit ExportSource(const std::filesystem::path& store_file);

  /// Up to 256 queued minutes after `after_id`, in order. SQLite's result code (SQLITE_DONE when read).
  int queued_after(int64_t after_id, std::vector<QueuedMinute>& out);
  /// How many are queued after `after_id`, and the oldest one's queued_ms (0 when none).
  std::pair<int64_t, int64_t> backlog_after(int64_t after_id);
  /// The last queue id of a minute before `minute_s`: where a new target starts.
  int64_t last_id_before(int64_t minute_s);
  /// The minute's points in (service, attr, server) order, after `after` when
  /// given, handed to `take` until it returns false (that row is not taken).
  /// SQLite's result code: SQLITE_DONE when all were read, SQLITE_ROW when `take` stopped.
  int minute_points(int64_t minute, const SeriesAt* after, const std::function<bool(const PointRow&)>& take);
  /// Each kept version's records of the minute (the store's packed form).
  int kept_seconds(int64_t minute, const std::function<void(int64_t version, std::string_view body)>& take);
  /// Appends the names with ids from names.size() on, as long as they are dense.
  void load_names(std::vector<std::pair<std::string, std::string>>& names);

 private:
  Db db_;
  Statement next_rows_, behind_, start_at_, points_, points_after_, kept_seconds_, read_names_;
};

}  // namespace monitor::judger
