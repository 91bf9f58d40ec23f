// Per-second aggregation by event time of every report the agent drains.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "agent/aggregate_record.hpp"
#include "model/log_histogram.hpp"
#include "model/stats.hpp"

namespace monitor::agent {

class RecoveryJournal;

/// Per-second aggregation by event time. Not thread-safe: one owner thread.
///
/// A report for second S is accepted while S is newer than the last flushed
/// second (the watermark) and at most `future_window_s` ahead of the caller's
/// clock; otherwise it is counted as late or future and dropped. The caller
/// flushes S once its clock passes S + 1 + late window, so a report may arrive
/// up to `late_window_s` seconds after its second ended.
///
/// Reports are kept per (name, server, op mask): a series asked for with one
/// mask costs one hash lookup per report whatever the number of ops. Masks that
/// differ for one (name, server) in a second are merged op by op at flush.
class Aggregator {
 public:
  struct Options {
    int late_window_s = 2;
    int future_window_s = 2;
  };
  enum class AddResult { kAccepted, kLate, kFuture, kOverLimit };

  /// Bits of Input::ops above the op mask: a statsd sample rate in
  /// millionths (1..999 999; 0 = unsampled). A sampled report counts 1/rate
  /// times: SUM and COUNT are summed exactly and rounded once, at the second;
  /// HIST takes whole copies, the fraction carried (docs/socket.md).
  static constexpr uint32_t kOpBits = 0xFF;
  static constexpr uint32_t kRateShift = 8;
  static constexpr uint32_t kRateOne = 1'000'000;
  static constexpr uint32_t with_rate(uint32_t ops, uint32_t rate_ppm) noexcept {
    return rate_ppm == 0 || rate_ppm >= kRateOne ? ops : ops | (rate_ppm << kRateShift);
  }

  /// One report waiting in a batch.
  struct Input {
    uint32_t name_id;
    uint32_t ops;
    int64_t server_id;
    int64_t value;
    int64_t time_ns;
  };
  /// How many reports of a batch fell outside the window.
  struct Rejected {
    uint64_t late = 0;
    uint64_t future = 0;
    uint64_t over_limit = 0;   // new series of a service that had its limit's worth in that second
    uint32_t over_limit_name = 0;  // the name of one of them, for the log
  };
  static constexpr size_t kMaxBatch = 64;

  /// Keeps open at most late + future + 3 + `extra_open_seconds` seconds at
  /// once: the extra ones are for a watermark held back while the agent
  /// catches up after a stall. A report for a second beyond that is refused
  /// as kFuture.
  Aggregator(Options options, int64_t now_s, size_t extra_open_seconds = 0);

  /// At most `per_service` series cells (one per series and op mask) of one
  /// service in one second; a report that would open one more is refused as
  /// kOverLimit, so a server_id loop in one service cannot exhaust the host.
  /// `service_of_name[name_id]` is the name's service index (dense, from 1);
  /// it must outlive the aggregator and cover every name id passed in.
  void set_series_limit(uint32_t per_service, const std::vector<uint32_t>* service_of_name) noexcept {
    series_limit_ = per_service;
    service_of_name_ = service_of_name;
  }

  /// Every report accepted from now on is also added to `journal` (null: none).
  void set_journal(RecoveryJournal* journal) noexcept { journal_ = journal; }

  /// A report a killed agent had accepted, read back from its journal: taken
  /// for any second after the watermark, whatever the clock says now.
  /// False when no table is free for its second.
  bool add_recovered(const Input& input);

  /// Where a series' cell was last found, for add() to look first: a statsd
  /// name comes line after line, and a hit skips the hash lookup. Checked
  /// before use, so any hint is safe.
  struct CellHint {
    const void* table = nullptr;
    uint32_t cell = 0;  // 1-based; 0: none
  };

  AddResult add(uint32_t name_id, int64_t server_id, int64_t value, uint32_t ops,
                int64_t time_ns, int64_t now_s, CellHint* hint = nullptr);

  /// As add() for up to kMaxBatch reports, in order. Faster: it prefetches
  /// the hash slots and cells of the whole batch before touching any, so the
  /// cache misses of one report overlap those of the others.
  Rejected add_batch(const Input* inputs, size_t n, int64_t now_s);

  /// Emits every second <= `up_to_second` not yet emitted, oldest first, and
  /// advances the watermark to it. Calls `between_chunks` (if set) after every
  /// kEmitChunk series, so a caller can keep draining its inputs while a large
  /// second is written out; it may call add() and add_batch(), never flush_until().
  void flush_until(int64_t up_to_second, AggregateSink& sink,
                   const std::function<void()>& between_chunks = {});
  static constexpr size_t kEmitChunk = 4096;

  /// Series cells held across all open seconds.
  size_t live_cells() const noexcept;
  int64_t watermark() const noexcept { return watermark_; }
  /// The newest second holding reports, or the watermark when none does.
  int64_t newest_open_second() const noexcept {
    int64_t newest = watermark_;
    for (const SecondTable& t : tables_) newest = std::max(newest, t.second);
    return newest;
  }
  int late_window_s() const noexcept { return options_.late_window_s; }
  int future_window_s() const noexcept { return options_.future_window_s; }
  size_t memory_bytes() const noexcept;

 private:
  struct Cell {
    uint32_t name_id;
    uint32_t ops;
    int64_t server_id;
    model::Stats stats;
    uint32_t hist;  // 1-based index into hists_, 0 = none
    uint32_t sampled = 0;  // 1-based index into its table's `sampled`, 0 = none
  };
  // What sampled reports add beyond one each, kept exact until the second is emitted.
  struct SampledSums {
    double sum = 0;
    double count = 0;
    double hist_carry = 0.5;  // starts at one half, so HIST takes round(sum of weights) copies
  };
  struct SecondTable {
    int64_t second = -1;  // -1: unused
    std::vector<uint32_t> index;  // open addressing: 1-based cell numbers, 0 = empty
    std::vector<Cell> cells;
    std::vector<uint32_t> service_cells;  // cells per service index, with a series limit
    std::vector<SampledSums> sampled;
  };

  SecondTable* table_for(int64_t second);
  SecondTable* cached_table_for(int64_t second) {
    if (second == cached_second_ && cached_table_->second == second) return cached_table_;
    SecondTable* t = table_for(second);
    if (t != nullptr) {
      cached_second_ = second;
      cached_table_ = t;
    }
    return t;
  }
  void update(SecondTable& t, Cell& cell, int64_t value, uint32_t ops, int64_t time_ns);
  void settle_sampled(SecondTable& t);
  // Merges the report into its cell of `t` and journals it; false when the
  // cell would be new and its service is at the series limit.
  bool place(SecondTable& t, const Input& in, CellHint* hint = nullptr);
  // Null when the cell would be new and its service is at the series limit.
  Cell* find_or_insert(SecondTable& t, uint32_t name_id, int64_t server_id, uint32_t ops);
  void grow(SecondTable& t);
  void emit(SecondTable& t, AggregateSink& sink, const std::function<void()>& between_chunks);
  uint32_t new_hist();

  const Options options_;
  RecoveryJournal* journal_ = nullptr;
  uint32_t series_limit_ = 0;  // 0: none
  const std::vector<uint32_t>* service_of_name_ = nullptr;
  int64_t watermark_;
  std::vector<SecondTable> tables_;  // capacity max_tables_, reserved: pointers stay valid
  const size_t max_tables_;
  std::vector<model::LogHistogram> hists_;
  std::vector<uint32_t> free_hists_;
  std::vector<uint32_t> order_;  // scratch for emit
  int64_t cached_second_ = INT64_MIN;
  SecondTable* cached_table_ = nullptr;
};

}  // namespace monitor::agent
