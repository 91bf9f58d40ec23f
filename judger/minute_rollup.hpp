#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "judger/minute_store.hpp"
#include "model/log_histogram.hpp"
#include "model/stats.hpp"

namespace monitor::judger {

/// HIST minutes are stored as four series, one per quantile, under these op codes.
inline constexpr uint32_t kOpHistP50 = 1280;
inline constexpr uint32_t kOpHistP90 = 1281;
inline constexpr uint32_t kOpHistP99 = 1282;
inline constexpr uint32_t kOpHistP999 = 1283;

/// A minute ready to store: new, or amended by late data.
struct FinishedMinute {
  int64_t minute = 0;
  std::vector<MinutePoint> points;
  bool amended = false;
};

/// Rolls per-second records up to minutes per (service, attr, op, server) and
/// in total (server -1), by each op's merge rule. A minute is due once the
/// clock passes its end + grace; it then stays amendable for `late_window_s`
/// (a late record makes it due again, amended); a record for a minute past
/// that is counted as too late and dropped. Not thread-safe.
class MinuteRollup {
 public:
  struct Options {
    int grace_s = 10;         // after a minute ends, before it is final
    int late_window_s = 120;  // after it is final, how long late data amends it
  };
  enum class AddResult { kAccepted, kTooLate };

  explicit MinuteRollup(Options options) : options_(options) {}

  AddResult add(const PendingRecord& record, int64_t now_s);

  /// Minutes that became final or were amended since the last call, oldest first.
  std::vector<FinishedMinute> due(int64_t now_s);

  uint64_t too_late() const noexcept { return too_late_; }
  size_t open_minutes() const noexcept { return minutes_.size(); }

 private:
  using Key = std::tuple<std::string, std::string, uint32_t, int64_t>;  // service, attr, op, server
  struct Cell {
    model::Stats stats;
    model::LogHistogram hist;
  };
  struct Minute {
    std::map<Key, Cell> cells;
    bool finished = false;
    bool dirty = false;  // changed since it was last handed out
  };
  static void append_points(int64_t minute, const Key& key, const Cell& cell, std::vector<MinutePoint>& out);

  const Options options_;
  std::map<int64_t, Minute> minutes_;
  int64_t forgotten_before_ = INT64_MIN;  // minutes before this are closed for good
  uint64_t too_late_ = 0;
};

}  // namespace monitor::judger
