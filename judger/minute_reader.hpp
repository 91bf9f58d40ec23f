// The read side of the judger's store: what the query API serves, and what
// the judger reads back itself (a minute's cells to amend it, a series'
// points to warm a rule's window). Over the store's own connection, or over a
// read-only connection of a query thread: the store is in WAL mode, so a
// reader sees the last committed state and never holds up the writer.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/system/result.hpp>

#include "model/log_histogram.hpp"
#include "model/stats.hpp"

struct sqlite3;

namespace monitor::judger {

/// One value of one series for one period. server_id -1 is the total.
struct MinutePoint {
  std::string service;
  std::string attr;
  uint32_t op = 0;  // one op bit
  int64_t server_id = -1;
  int64_t minute = 0;  // Unix seconds of the period's start
  double value = 0;
};

/// A stored point, possibly down-sampled: value is the average of the minute
/// values in the period, min and max their extremes, minutes how many there were.
struct StoredPoint {
  int64_t time = 0;
  double value = 0;
  double min = 0;
  double max = 0;
  int64_t minutes = 0;
};

/// The mergeable state of one series in one finished minute: what lets a
/// minute be amended exactly after the judger restarted.
struct MinuteCell {
  std::string service;
  std::string attr;
  uint32_t op = 0;  // one op bit
  int64_t server_id = -1;
  model::Stats stats;
  model::LogHistogram hist;
};

/// Retention per resolution (defaults: 1 min x 2 days, 5 min x 2 weeks, 1 h x 1 year).
struct Retention {
  int64_t minute_s = 2 * 86400;
  int64_t five_minute_s = 14 * 86400;
  int64_t hour_s = 365 * 86400;
};

/// The error a query stopped by stop_after() ends with.
bool is_interrupted(const boost::system::error_code& ec) noexcept;
boost::system::error_code interrupted_error() noexcept;

/// Not thread-safe: one thread uses a reader at a time.
class MinuteReader {
 public:
  /// Reads over `db`, which stays the caller's.
  MinuteReader(sqlite3* db, Retention retention) : db_(db), retention_(retention) {}
  /// A read-only connection of its own to the store at `file`, closed with it.
  [[nodiscard]] static boost::system::result<std::unique_ptr<MinuteReader>> open_read_only(
      const std::filesystem::path& file, Retention retention);
  ~MinuteReader();
  MinuteReader(const MinuteReader&) = delete;
  MinuteReader& operator=(const MinuteReader&) = delete;

  /// Until cleared, a query running past `deadline`, or once `cancel` is
  /// set (by any thread: the client went away), stops and returns an error
  /// is_interrupted() knows. `cancel` must outlive the queries.
  void stop_after(std::chrono::steady_clock::time_point deadline, const std::atomic<bool>* cancel);
  void clear_stop();
  /// Whether a stop asked by stop_after() is due: for the work after the
  /// reads (an answer of millions of points takes seconds to build).
  bool stop_due() const noexcept { return progress(const_cast<MinuteReader*>(this)) != 0; }

  /// Points of a series in [from, to), in buckets of `step_s` (at least 60):
  /// read from the coarsest resolution no coarser than the step, or a coarser
  /// one when that no longer holds `from`; bucket values are averages weighted
  /// by minutes, with min and max kept.
  [[nodiscard]] boost::system::result<std::vector<StoredPoint>> query(const std::string& service,
                                                                      const std::string& attr, uint32_t op,
                                                                      int64_t server_id, int64_t from, int64_t to,
                                                                      int64_t step_s, int64_t now_s);

  /// The mergeable state of one series (op one bit; HIST: 128) in the
  /// finished minutes of [from, to), by minute; of every server's series
  /// and the total's, by minute and server, without `server_id`.
  [[nodiscard]] boost::system::result<std::vector<std::pair<int64_t, MinuteCell>>> series_cells(
      const std::string& service, const std::string& attr, uint32_t op, std::optional<int64_t> server_id, int64_t from,
      int64_t to);

  /// The mergeable state stored for a finished minute (empty if none).
  [[nodiscard]] boost::system::result<std::vector<MinuteCell>> minute_cells(int64_t minute);

  /// Every server's (and the total's) minute points of a series in [from, to):
  /// what the alarm engine evaluates rules on after a restart, and `rule
  /// test` replays. Minutes older than the minute retention are their
  /// 5-minute average, once per minute. At most `limit` points are read: a
  /// caller that gets `limit` knows there are more.
  [[nodiscard]] boost::system::result<std::vector<MinutePoint>> minute_points(const std::string& service,
                                                                              const std::string& attr, uint32_t op,
                                                                              int64_t from, int64_t to,
                                                                              size_t limit = SIZE_MAX);
  /// The same points, each given to `each(server_id, minute, value)` as it
  /// is read (nothing is held); how many there were.
  using PointFn = std::function<void(int64_t server_id, int64_t minute, double value)>;
  [[nodiscard]] boost::system::result<size_t> each_minute_point(const std::string& service, const std::string& attr,
                                                                uint32_t op, int64_t from, int64_t to, size_t limit,
                                                                const PointFn& each);

  /// Reports per service in the finished minutes of [from, to), most first;
  /// kept as long as minute points.
  [[nodiscard]] boost::system::result<std::vector<std::pair<std::string, int64_t>>> reports_by_service(int64_t from,
                                                                                                        int64_t to);

  /// The newest finished minute stored of a service, 0 if none.
  [[nodiscard]] boost::system::result<int64_t> last_minute(const std::string& service);

  /// (service, attr) pairs with stored points, for the query API.
  [[nodiscard]] boost::system::result<std::vector<std::pair<std::string, std::string>>> list_series();

 private:
  static int progress(void* self) noexcept;

  sqlite3* db_;
  const Retention retention_;
  bool owns_db_ = false;
  std::chrono::steady_clock::time_point deadline_{};
  const std::atomic<bool>* cancel_ = nullptr;
};

}  // namespace monitor::judger
