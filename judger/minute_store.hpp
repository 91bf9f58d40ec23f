// The judger's durable state in SQLite (WAL mode): batches received but not yet
// rolled into finished minutes, each sender's last stored sequence, finished
// minute points, and their down-sampled archives.
//
// Every change is one transaction, so a judger killed at any moment restarts
// with either all of a batch (and its sequence) or none of it, and with either
// all of a finished minute (points written, its pending batches marked
// applied, to be removed in small transactions later) or none of it. A batch is acknowledged only after append_batch() returns.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/system/result.hpp>

#include "judger/minute_reader.hpp"
#include "judger/name_table.hpp"
#include "judger/seen_sequences.hpp"
#include "wire/messages.hpp"

struct sqlite3;

namespace monitor::judger {

/// A received record waiting for its minute to finish; `name` is an id of the
/// store's NameTable (the record's own name_id is the sender's, unused here).
struct PendingRecord {
  uint32_t name = 0;
  wire::BatchRecord record;
};

/// Not thread-safe: the judger's store thread owns it.
class MinuteStore {
 public:
  [[nodiscard]] static boost::system::result<std::unique_ptr<MinuteStore>> open(const std::filesystem::path& file,
                                                                                Retention retention = {});
  ~MinuteStore();
  MinuteStore(const MinuteStore&) = delete;
  MinuteStore& operator=(const MinuteStore&) = delete;

  enum class AppendResult { kStored, kDuplicate };

  /// Stores a batch's records unless `sequence` of `sender_id` was stored
  /// before (kDuplicate, nothing stored), in one transaction with the record
  /// of the sequence. Any order of sequences is accepted: batches reach the
  /// judger over several paths.
  [[nodiscard]] boost::system::result<AppendResult> append_batch(uint64_t sender_id, uint64_t sequence,
                                                                 const std::vector<PendingRecord>& records,
                                                                 int64_t now_s);

  /// One part of a batch with an origin of its own: the judger keys each
  /// service's records of a batch by (sender, service), so a batch that was
  /// split across judgers before a service moved, and replayed whole after,
  /// stores exactly the services not stored before (docs/judger.md).
  struct OriginPart {
    uint64_t origin = 0;
    std::vector<PendingRecord> records;
  };
  /// Stores the parts whose (origin, sequence) was not stored before, in one
  /// transaction; for each part, whether it was stored (false: a duplicate).
  [[nodiscard]] boost::system::result<std::vector<bool>> append_parts(uint64_t sequence,
                                                                      const std::vector<OriginPart>& parts,
                                                                      int64_t now_s);

  /// Queries over the store's own connection (the judger's thread); other
  /// threads open a MinuteReader of their own.
  MinuteReader& reader() noexcept { return reader_; }

  /// Leaves checkpoints of the write-ahead log to another connection (a
  /// WalCheckpointer): SQLite's automatic one runs inside a commit.
  [[nodiscard]] boost::system::result<void> stop_automatic_checkpoints();

  /// The highest sequence stored for a sender (0 if none).
  uint64_t last_sequence(uint64_t sender_id) const;
  /// Intervals of stored sequences held, over all senders (a health figure).
  size_t seen_intervals() const noexcept { return seen_.intervals(); }

  /// The names pending records refer to (loaded at open, grown by the caller).
  NameTable& names() noexcept { return names_; }

  /// Every pending record, in arrival order: the state to rebuild after a restart.
  [[nodiscard]] boost::system::result<std::vector<PendingRecord>> pending();

  /// Writes the finished minute's points and its cells' mergeable state,
  /// folds the points into the 5-minute and 1-hour archives, and marks the
  /// pending records of seconds in [minute, minute + 60) applied, all in one
  /// transaction. Writing a minute again (late data amending it) replaces it.
  [[nodiscard]] boost::system::result<void> finish_minute(int64_t minute, const std::vector<MinutePoint>& points,
                                                          const std::vector<MinuteCell>& cells = {});

  /// The same, in parts, so a minute of many series does not hold the caller
  /// (the judger's only thread) for seconds: any number of
  /// put_minute_points(), then put_minute_archives() and stage_minute_cells()
  /// (each its own transaction; the first staged part says so), then
  /// complete_minute(), which moves the staged cells in and marks the minute's pending
  /// records with ids up to `pending_through` (last_pending_id() when the
  /// minute was handed out: later records are its next amendment). A crash
  /// before complete_minute() leaves the pending records and the old cells,
  /// so the minute is rebuilt exactly and written again; points written by
  /// then are replaced. Parts of one minute must not interleave with another
  /// run for the same minute.
  [[nodiscard]] boost::system::result<void> put_minute_points(std::span<const MinutePoint> points);
  [[nodiscard]] boost::system::result<void> stage_minute_cells(int64_t minute, std::span<const MinuteCell> cells,
                                                               bool first_part);
  /// Re-derives the 5-minute and hour archives of the series with ids in
  /// [series_from, series_to) that have a point in `minute` (after its points).
  [[nodiscard]] boost::system::result<void> put_minute_archives(int64_t minute, int64_t series_from,
                                                                int64_t series_to);
  /// One past the highest series id: the end of the ranges put_minute_archives() takes.
  [[nodiscard]] boost::system::result<int64_t> series_id_end();
  [[nodiscard]] boost::system::result<void> complete_minute(int64_t minute, int64_t pending_through);
  /// Completing a minute marks its pending rows applied (pending() no longer
  /// returns them); this removes up to `rows` of them, in a transaction of
  /// its own. True while more are left: call it again, between other work.
  [[nodiscard]] boost::system::result<bool> purge_applied(int64_t rows);
  /// The id of the last pending row stored (0 if none yet).
  int64_t last_pending_id() const noexcept { return last_pending_id_; }

  /// Deletes points older than their resolution's retention, as of `now_s`.
  [[nodiscard]] boost::system::result<int64_t> apply_retention(int64_t now_s);

  /// Records a finished minute's reports per service, from its cells (a
  /// series reported with several ops counts its reports once), so a day's
  /// reports per service read a few rows, not every cell. finish_minute()
  /// does it itself; a minute stored in parts calls it before completing.
  [[nodiscard]] boost::system::result<void> put_service_reports(int64_t minute, std::span<const MinuteCell> cells);

  /// With export of per-second data on (docs/export.md), completing a minute
  /// also keeps its pending records, as they are, in table export_seconds for
  /// `seconds_kept_s`, so the exporter can merge every version's seconds.
  void keep_seconds_for_export(int64_t seconds_kept_s) noexcept { seconds_kept_s_ = seconds_kept_s; }

  /// Decodes one stored body of pending records (pending_records,
  /// export_seconds) naming ids below `names`; false when it does not decode.
  static bool decode_records(std::string_view body, size_t names, std::vector<PendingRecord>& out);

 private:
  MinuteStore(sqlite3* db, Retention retention);
  boost::system::result<void> exec(const char* sql);
  boost::system::result<void> load_seen();
  boost::system::result<void> load_names();
  boost::system::result<void> write_cells(const char* table, int64_t minute, std::span<const MinuteCell> cells);
  boost::system::result<void> write_points(std::span<const MinutePoint> points);
  boost::system::result<void> write_archives(int64_t minute, int64_t series_from, int64_t series_to);
  boost::system::result<void> write_completion(int64_t minute, int64_t pending_through);
  boost::system::result<void> write_service_reports(int64_t minute, std::span<const MinuteCell> cells);

  sqlite3* db_;
  const Retention retention_;
  MinuteReader reader_;
  SeenSequences seen_;
  struct AppendStatements;
  std::unique_ptr<AppendStatements> append_;
  NameTable names_;
  size_t persisted_names_ = 0;
  int64_t last_pending_id_ = 0;  // names_ ids below this are in table `names`
  int64_t seconds_kept_s_ = 0;   // 0: per-second data is not kept for export
};

}  // namespace monitor::judger
