// Rolls per-second records up to minutes per series, per server and in total.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "judger/cell_table.hpp"
#include "judger/minute_store.hpp"
#include "judger/name_table.hpp"
#include "model/log_histogram.hpp"
#include "model/op.hpp"
#include "model/stats.hpp"

namespace monitor::judger {

using model::kOpHistP50;
using model::kOpHistP90;
using model::kOpHistP99;
using model::kOpHistP999;

/// A minute ready to store: new, or amended by late data.
struct FinishedMinute {
  int64_t minute = 0;
  std::vector<MinutePoint> points;
  std::vector<MinuteCell> cells;  // mergeable state, stored beside the points
  bool amended = false;
};

/// Rolls per-second records up to minutes per (service, attr, op, server) and
/// in total (server -1), by each op's merge rule. A minute is due once its
/// data is in (by watermarks, or the clock past its end + grace); it stays in memory for `late_window_s` more
/// (a late record makes it due again, amended). A record for a minute no
/// longer in memory reopens it from the stored state given by the loader (so
/// replays after an outage or a restart amend exactly), unless it is older
/// than `max_age_s` (the store's minute retention): then it is counted as too
/// late and dropped. Not thread-safe.
class MinuteRollup {
 public:
  struct Options {
    int grace_s = 7;            // after a minute ends, before it is final
    int late_window_s = 120;    // after it is final, how long it stays in memory
    int64_t max_age_s = 2 * 86400;  // older minutes cannot be amended any more
  };
  /// Gives the stored state of a finished minute (empty if none).
  using Loader = std::function<std::vector<MinuteCell>(int64_t minute)>;
  enum class AddResult { kAccepted, kTooLate };

  /// Records name their series by ids of `names` (the store's), which must outlive this.
  MinuteRollup(Options options, NameTable& names, Loader loader = {})
      : options_(options), loader_(std::move(loader)), names_(names) {}

  AddResult add(const PendingRecord& record, int64_t now_s);

  /// Minutes that became final or were amended since the last call, oldest
  /// first: final once every second of them is in (its end at or before
  /// `complete_before`, which the judger learns from its senders' watermarks).
  /// Each stays held (in memory, and due again on failure) until stored() or
  /// store_failed() says how storing it went; it leaves memory `late_window_s`
  /// after its end + grace by `now_s`.
  std::vector<FinishedMinute> due(int64_t now_s, int64_t complete_before);
  /// Final by the clock alone: its end + grace.
  std::vector<FinishedMinute> due(int64_t now_s) { return due(now_s, now_s - options_.grace_s); }

  /// The minute handed out by due() is in the store: it may leave memory once
  /// its late window is over.
  void stored(int64_t minute);
  /// Storing it failed: it is due again at the next call of due(), with
  /// whatever arrived meanwhile, and stays in memory until it is stored.
  void store_failed(int64_t minute);

  uint64_t too_late() const noexcept { return too_late_; }
  size_t open_minutes() const noexcept { return minutes_.size(); }

 private:
  // A cell is found by integers, not by comparing strings (the roll-up
  // bounds the judger's ingest).
  // Live cells are keyed by a record's whole op mask (one cell per series,
  // not per op: a record is merged once); due() splits them per op.
  struct Key {
    uint32_t name;  // NameTable id
    uint32_t ops;   // an op mask (live cells), or one op (per-op cells)
    int64_t server;  // -1: the total
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept;
  };
  struct Cell {
    model::Stats stats;
    model::LogHistogram hist;
  };
  using Cells = CellTable<Key, KeyHash, Cell>;
  struct Minute {
    Cells cells;
    bool finished = false;
    bool dirty = false;     // changed since it was last handed out
    bool unstored = false;  // handed out, not yet known to be in the store
  };
  Minute* open_minute(int64_t minute, int64_t now_s);
  void append_points(int64_t minute, const Key& key, const Cell& cell, std::vector<MinutePoint>& out) const;

  const Options options_;
  const Loader loader_;
  std::map<int64_t, Minute> minutes_;
  int64_t complete_before_ = 0;  // the highest due() was given: minutes ending before it may be stored
  NameTable& names_;
  uint64_t too_late_ = 0;
};

}  // namespace monitor::judger
