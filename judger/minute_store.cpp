#include "judger/minute_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "common/clock.hpp"
#include "judger/sqlite_db.hpp"
#include "wire/byte_io.hpp"

namespace monitor::judger {
namespace {

constexpr const char* kSchema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA wal_autocheckpoint = 8192;
-- Debian builds SQLite with SECURE_DELETE: every page a deleted row frees was
-- zeroed and written again, 12x the cost of removing a minute's pending rows.
-- Nothing here is a secret to wipe.
PRAGMA secure_delete = OFF;
CREATE TABLE IF NOT EXISTS seen (
  sender_id INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, updated INTEGER NOT NULL,
  PRIMARY KEY (sender_id, first)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, service TEXT NOT NULL, attr TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending_records (
  id INTEGER PRIMARY KEY AUTOINCREMENT, minute INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS pending_records_minute ON pending_records (minute);
-- The pending rows of `minute` with ids up to `through` are in its stored
-- state; purge_applied() removes them after the minute's transaction.
CREATE TABLE IF NOT EXISTS applied_pending (minute INTEGER PRIMARY KEY, through INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS series (
  id INTEGER PRIMARY KEY, service TEXT NOT NULL, attr TEXT NOT NULL, op INTEGER NOT NULL, server_id INTEGER NOT NULL,
  UNIQUE (service, attr, op, server_id));
CREATE TABLE IF NOT EXISTS points (
  series INTEGER NOT NULL, resolution INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
  min REAL NOT NULL, max REAL NOT NULL, minutes INTEGER NOT NULL, PRIMARY KEY (series, resolution, ts)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_time ON points (resolution, ts, series);
CREATE TABLE IF NOT EXISTS minute_cells (
  minute INTEGER NOT NULL, service TEXT NOT NULL, attr TEXT NOT NULL, op INTEGER NOT NULL, server_id INTEGER NOT NULL,
  count INTEGER NOT NULL, sum INTEGER NOT NULL, min INTEGER NOT NULL, max INTEGER NOT NULL, first INTEGER NOT NULL,
  first_time INTEGER NOT NULL, last INTEGER NOT NULL, last_time INTEGER NOT NULL, hist BLOB,
  PRIMARY KEY (minute, service, attr, op, server_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS completed_minutes (minute INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS service_reports (
  minute INTEGER NOT NULL, service TEXT NOT NULL, reports INTEGER NOT NULL, PRIMARY KEY (minute, service)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS export_queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT, minute INTEGER NOT NULL, version INTEGER NOT NULL, queued_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS export_queue_minute ON export_queue (minute);
CREATE TABLE IF NOT EXISTS export_seconds (minute INTEGER NOT NULL, version INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS export_seconds_minute ON export_seconds (minute);
CREATE TABLE IF NOT EXISTS minute_cells_staging (
  minute INTEGER NOT NULL, service TEXT NOT NULL, attr TEXT NOT NULL, op INTEGER NOT NULL, server_id INTEGER NOT NULL,
  count INTEGER NOT NULL, sum INTEGER NOT NULL, min INTEGER NOT NULL, max INTEGER NOT NULL, first INTEGER NOT NULL,
  first_time INTEGER NOT NULL, last INTEGER NOT NULL, last_time INTEGER NOT NULL, hist BLOB,
  PRIMARY KEY (minute, service, attr, op, server_id)) WITHOUT ROWID;
)sql";

// The eight Stats columns (count, sum, min, max, first, first_time, last,
// last_time) that the pending and minute_cells tables both hold, in that order.
void bind_stats(Statement& st, int first, const model::Stats& s) {
  st.bind(first, static_cast<int64_t>(s.count)).bind(first + 1, s.sum).bind(first + 2, s.min).bind(first + 3, s.max);
  st.bind(first + 4, s.first).bind(first + 5, s.first_time).bind(first + 6, s.last).bind(first + 7, s.last_time);
}

std::string encode_hist(const model::LogHistogram& h) {
  std::string out;
  wire::ByteWriter w(out);
  h.for_each([&](int32_t key, uint64_t count) {
    w.svarint(key);
    w.varint(count);
  });
  return out;
}

// Pending records are stored one row per batch and minute, records packed in
// a blob: a row per record made SQLite the bottleneck of ingest.
// A pending record is a wire record whose name id is the NameTable id + 1.
void encode_pending(wire::ByteWriter& w, const PendingRecord& p) { wire::encode_record(w, p.record, p.name + 1); }

bool decode_pending(wire::ByteReader& r, size_t names, PendingRecord& p) {
  if (wire::decode_record(r, p.record) != wire::WireError::kOk || p.record.name_id > names) return false;
  p.name = p.record.name_id - 1;
  return true;
}

}  // namespace

// append_batch() runs for every batch: its statements are prepared once.
struct MinuteStore::AppendStatements {
  explicit AppendStatements(sqlite3* db)
      : add_name(db, "INSERT INTO names (id, service, attr) VALUES (?, ?, ?)"),
        insert(db, "INSERT INTO pending_records (minute, body) VALUES (?, ?)"),
        merged(db, "DELETE FROM seen WHERE sender_id = ? AND first = ?"),
        seen(db, "INSERT OR REPLACE INTO seen (sender_id, first, last, updated) VALUES (?, ?, ?, ?)") {}
  int prepare_rc() const {
    for (const Statement* st : {&add_name, &insert, &merged, &seen}) {
      if (st->prepare_rc() != SQLITE_OK) return st->prepare_rc();
    }
    return SQLITE_OK;
  }
  Statement add_name, insert, merged, seen;
};

boost::system::result<std::unique_ptr<MinuteStore>> MinuteStore::open(const std::filesystem::path& file,
                                                                      Retention retention) {
  auto opened = try_open_db(file, OpenMode::kCreate);
  if (!opened) return opened.error();
  sqlite3* db = opened->release();  // the store closes it, after its statements
  std::unique_ptr<MinuteStore> store(new MinuteStore(db, retention));
  if (auto schema = store->exec(kSchema); !schema) return schema.error();
  // A store written before completed_minutes existed: its minutes are complete.
  if (auto upgraded = store->exec("INSERT OR IGNORE INTO completed_minutes SELECT DISTINCT ts FROM points "
                                  "WHERE resolution = 60 AND NOT EXISTS (SELECT 1 FROM completed_minutes)");
      !upgraded) {
    return upgraded.error();
  }
  if (auto seen = store->load_seen(); !seen) return seen.error();
  if (auto names = store->load_names(); !names) return names.error();
  {
    Statement last(db, "SELECT coalesce(max(id), 0) FROM pending_records");
    if (last.step() != SQLITE_ROW) return sqlite_error(last.prepare_rc() != SQLITE_OK ? last.prepare_rc() : SQLITE_ERROR);
    store->last_pending_id_ = last.int64(0);
  }
  store->append_ = std::make_unique<AppendStatements>(db);
  if (const int prepared = store->append_->prepare_rc(); prepared != SQLITE_OK) return sqlite_error(prepared);
  return store;
}

MinuteStore::MinuteStore(sqlite3* db, Retention retention) : db_(db), retention_(retention), reader_(db, retention) {}

MinuteStore::~MinuteStore() {
  append_.reset();  // statements first: a database with live statements does not close
  sqlite3_close(db_);
}

boost::system::result<void> MinuteStore::exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(rc);
  return {};
}

boost::system::result<void> MinuteStore::stop_automatic_checkpoints() { return exec("PRAGMA wal_autocheckpoint = 0"); }

uint64_t MinuteStore::last_sequence(uint64_t sender_id) const { return seen_.highest(sender_id); }

boost::system::result<void> MinuteStore::load_names() {
  Statement st(db_, "SELECT id, service, attr FROM names ORDER BY id");
  if (st.prepare_rc() != SQLITE_OK) return sqlite_error(st.prepare_rc());
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    if (st.int64(0) != static_cast<int64_t>(names_.size())) return sqlite_error(SQLITE_CORRUPT);  // ids are dense
    if (names_.intern(st.text(1), st.text(2)) != st.int64(0)) return sqlite_error(SQLITE_CORRUPT);  // a duplicate
  }
  if (rc != SQLITE_DONE) return sqlite_error(rc);
  persisted_names_ = names_.size();
  return {};
}

boost::system::result<void> MinuteStore::load_seen() {
  Statement st(db_, "SELECT sender_id, first, last, updated FROM seen");
  if (st.prepare_rc() != SQLITE_OK) return sqlite_error(st.prepare_rc());
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    seen_.restore(static_cast<uint64_t>(st.int64(0)), SeenSequences::Interval{static_cast<uint64_t>(st.int64(1)),
                                                                             static_cast<uint64_t>(st.int64(2)),
                                                                             st.int64(3)});
  }
  if (rc != SQLITE_DONE) return sqlite_error(rc);
  return {};
}

boost::system::result<MinuteStore::AppendResult> MinuteStore::append_batch(uint64_t sender_id, uint64_t sequence,
                                                                           const std::vector<PendingRecord>& records,
                                                                           int64_t now_s) {
  auto stored = append_parts(sequence, {OriginPart{sender_id, records}}, now_s);
  if (!stored) return stored.error();
  return stored->front() ? AppendResult::kStored : AppendResult::kDuplicate;
}

boost::system::result<std::vector<bool>> MinuteStore::append_parts(uint64_t sequence,
                                                                    const std::vector<OriginPart>& parts,
                                                                    int64_t now_s) {
  std::vector<bool> stored(parts.size(), false);
  std::vector<std::pair<uint64_t, SeenSequences::Change>> changes;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto change = seen_.plan_add(parts[i].origin, sequence, now_s);
    if (!change) continue;
    // A second part of one origin in one batch shares the first's fate (and change).
    if (std::any_of(changes.begin(), changes.end(), [&](const auto& c) { return c.first == parts[i].origin; })) {
      stored[i] = true;
      continue;
    }
    changes.emplace_back(parts[i].origin, std::move(*change));
    stored[i] = true;
  }
  if (changes.empty()) return stored;
  Transaction txn(db_);
  if (txn.begin_rc() != SQLITE_OK) return sqlite_error(txn.begin_rc());

  for (Statement* st : {&append_->add_name, &append_->insert, &append_->merged, &append_->seen}) st->reset();
  // One row per minute the batch touches (an agent's batch is one second), so
  // finishing a minute deletes exactly its records.
  std::vector<std::pair<int64_t, std::string>> bodies;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!stored[i]) continue;
    for (const auto& p : parts[i].records) {
      const int64_t minute = minute_of(p.record.second);
      auto body = std::find_if(bodies.begin(), bodies.end(), [&](const auto& b) { return b.first == minute; });
      if (body == bodies.end()) body = bodies.insert(bodies.end(), {minute, std::string()});
      wire::ByteWriter w(body->second);
      encode_pending(w, p);
    }
  }
  // Names interned since the last commit are stored with this batch.
  const size_t names_now = names_.size();
  Statement& add_name = append_->add_name;
  for (size_t i = persisted_names_; i < names_now; ++i) {
    const auto id = static_cast<uint32_t>(i);
    add_name.bind(1, static_cast<int64_t>(i)).bind(2, names_.service(id)).bind(3, names_.attr(id));
    if (const int rc = add_name.step(); rc != SQLITE_DONE) return sqlite_error(rc);
    add_name.reset();
  }
  Statement& insert = append_->insert;
  for (const auto& [minute, body] : bodies) {
    insert.bind(1, minute).bind_blob(2, body);
    if (const int rc = insert.step(); rc != SQLITE_DONE) return sqlite_error(rc);
    insert.reset();
  }
  const int64_t last_row = sqlite3_last_insert_rowid(db_);
  Statement& merged = append_->merged;
  Statement& seen = append_->seen;
  for (const auto& [origin, change] : changes) {
    for (const uint64_t first : change.removed) {
      merged.bind(1, static_cast<int64_t>(origin)).bind(2, static_cast<int64_t>(first));
      if (const int rc = merged.step(); rc != SQLITE_DONE) return sqlite_error(rc);
      merged.reset();
    }
    seen.reset();
    seen.bind(1, static_cast<int64_t>(origin)).bind(2, static_cast<int64_t>(change.upsert.first));
    seen.bind(3, static_cast<int64_t>(change.upsert.last)).bind(4, change.upsert.updated_s);
    const int seen_rc = seen.step();
    seen.reset();
    if (seen_rc != SQLITE_DONE) return sqlite_error(seen_rc);
  }
  if (const int rc = txn.commit(); rc != SQLITE_OK) return sqlite_error(rc);
  persisted_names_ = names_now;
  if (!bodies.empty()) last_pending_id_ = last_row;
  for (const auto& [origin, change] : changes) seen_.apply(change);
  return stored;
}

bool MinuteStore::decode_records(std::string_view body, size_t names, std::vector<PendingRecord>& out) {
  wire::ByteReader r(body);
  while (r.remaining() > 0) {
    PendingRecord p;
    if (!decode_pending(r, names, p)) return false;
    out.push_back(std::move(p));
  }
  return true;
}

boost::system::result<std::vector<PendingRecord>> MinuteStore::pending() {
  Statement st(db_,
               "SELECT body FROM pending_records p WHERE NOT EXISTS "
               "(SELECT 1 FROM applied_pending a WHERE a.minute = p.minute AND p.id <= a.through) ORDER BY id");
  if (st.prepare_rc() != SQLITE_OK) return sqlite_error(st.prepare_rc());
  std::vector<PendingRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    if (!decode_records(st.blob(0), persisted_names_, out)) return sqlite_error(SQLITE_CORRUPT);
  }
  if (rc != SQLITE_DONE) return sqlite_error(rc);
  return out;
}

boost::system::result<void> MinuteStore::write_cells(const char* table, int64_t minute,
                                                     std::span<const MinuteCell> cells) {
  Statement put_cell(db_, fmt::format("INSERT OR REPLACE INTO {} (minute, service, attr, op, server_id, count, sum, "
                                      "min, max, first, first_time, last, last_time, hist) "
                                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                      table)
                              .c_str());
  if (put_cell.prepare_rc() != SQLITE_OK) return sqlite_error(put_cell.prepare_rc());
  for (const auto& c : cells) {
    put_cell.bind(1, minute).bind(2, c.service).bind(3, c.attr).bind(4, int64_t{c.op}).bind(5, c.server_id);
    bind_stats(put_cell, 6, c.stats);
    if (!c.hist.empty()) put_cell.bind_blob(14, encode_hist(c.hist));
    if (const int rc = put_cell.step(); rc != SQLITE_DONE) return sqlite_error(rc);
    put_cell.reset();
  }
  return {};
}

boost::system::result<void> MinuteStore::write_points(std::span<const MinutePoint> points) {
  Statement add_series(db_, "INSERT OR IGNORE INTO series (service, attr, op, server_id) VALUES (?,?,?,?)");
  Statement find_series(db_, "SELECT id FROM series WHERE service = ? AND attr = ? AND op = ? AND server_id = ?");
  Statement put(db_,
                "INSERT OR REPLACE INTO points (series, resolution, ts, value, min, max, minutes) "
                "VALUES (?, 60, ?, ?, ?, ?, 1)");
  for (const auto& p : points) {
    add_series.bind(1, p.service).bind(2, p.attr).bind(3, int64_t{p.op}).bind(4, p.server_id);
    if (const int rc = add_series.step(); rc != SQLITE_DONE) return sqlite_error(rc);
    add_series.reset();
    find_series.bind(1, p.service).bind(2, p.attr).bind(3, int64_t{p.op}).bind(4, p.server_id);
    if (const int rc = find_series.step(); rc != SQLITE_ROW) return sqlite_error(rc);
    const int64_t series = find_series.int64(0);
    find_series.reset();
    put.bind(1, series).bind(2, p.minute).bind(3, p.value).bind(4, p.value).bind(5, p.value);
    if (const int rc = put.step(); rc != SQLITE_DONE) return sqlite_error(rc);
    put.reset();
  }
  return {};
}

boost::system::result<void> MinuteStore::write_archives(int64_t minute, int64_t series_from, int64_t series_to) {
  // Re-derive, for the series with a point in this minute, the 5-minute
  // archive from its (at most 5) minutes, then the hour from its (at most 12)
  // 5-minute points: folding the hour from up to 60 minutes made the work of
  // each minute grow through the hour (seconds for 100 000 series).
  // Minute points have min = max = value and minutes = 1, so one weighted
  // fold serves both levels.
  for (const auto& [resolution, source] : {std::pair<int64_t, int64_t>{300, 60}, {3600, 300}}) {
    Statement fold(db_,
                   "INSERT OR REPLACE INTO points (series, resolution, ts, value, min, max, minutes) "
                   "SELECT series, ?1, ?2, sum(value * minutes) / sum(minutes), min(min), max(max), sum(minutes) "
                   "FROM points WHERE resolution = ?3 AND ts >= ?2 AND ts < ?2 + ?1 AND series IN "
                   "(SELECT series FROM points WHERE resolution = 60 AND ts = ?4 AND series >= ?5 AND series < ?6) "
                   "GROUP BY series");
    fold.bind(1, resolution).bind(2, minute - minute % resolution).bind(3, source).bind(4, minute);
    fold.bind(5, series_from).bind(6, series_to);
    if (const int rc = fold.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  }
  return {};
}

boost::system::result<void> MinuteStore::write_completion(int64_t minute, int64_t pending_through) {
  Statement next_version(db_, "SELECT coalesce(max(version), 0) + 1 FROM export_queue WHERE minute = ?");
  next_version.bind(1, minute);
  if (const int rc = next_version.step(); rc != SQLITE_ROW) return sqlite_error(rc);
  const int64_t version = next_version.int64(0);
  if (seconds_kept_s_ > 0) {
    // This version's records (those after the last version's): the exporter
    // merges every version's (judger/exporter.hpp).
    Statement keep(db_,
                   "INSERT INTO export_seconds (minute, version, body) "
                   "SELECT minute, ?3, body FROM pending_records WHERE minute = ?1 AND id <= ?2 "
                   "AND id > coalesce((SELECT through FROM applied_pending WHERE minute = ?1), 0)");
    keep.bind(1, minute).bind(2, pending_through).bind(3, version);
    if (const int rc = keep.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  }
  // Marked here, removed by purge_applied(): deleting a busy minute's rows
  // (12 000 batches) in this transaction held the judger's thread 100 ms,
  // 300 ms while a long query kept the log from being reset.
  Statement applied(db_,
                    "INSERT INTO applied_pending (minute, through) VALUES (?1, ?2) "
                    "ON CONFLICT (minute) DO UPDATE SET through = max(through, excluded.through)");
  applied.bind(1, minute).bind(2, pending_through);
  if (const int rc = applied.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  // Its points were written in parts before this: only now is it served.
  Statement completed(db_, "INSERT OR IGNORE INTO completed_minutes (minute) VALUES (?)");
  completed.bind(1, minute);
  if (const int rc = completed.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  // In the same transaction as the points it announces: every stored version
  // of a minute is exported, and none before it is whole (judger/exporter.hpp).
  Statement queued(db_, "INSERT INTO export_queue (minute, version, queued_ms) VALUES (?, ?, ?)");
  queued.bind(1, minute).bind(2, version).bind(3, realtime_ns() / 1'000'000);
  if (const int rc = queued.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  return {};
}

boost::system::result<void> MinuteStore::finish_minute(int64_t minute, const std::vector<MinutePoint>& points,
                                                       const std::vector<MinuteCell>& cells) {
  Transaction txn(db_);
  if (txn.begin_rc() != SQLITE_OK) return sqlite_error(txn.begin_rc());
  if (auto r = write_cells("minute_cells", minute, cells); !r) return r;
  if (auto r = write_service_reports(minute, cells); !r) return r;
  if (auto r = write_points(points); !r) return r;
  if (auto r = write_archives(minute, 0, INT64_MAX); !r) return r;
  if (auto r = write_completion(minute, last_pending_id_); !r) return r;
  if (const int rc = txn.commit(); rc != SQLITE_OK) return sqlite_error(rc);
  return {};
}

boost::system::result<void> MinuteStore::put_minute_points(std::span<const MinutePoint> points) {
  Transaction txn(db_);
  if (txn.begin_rc() != SQLITE_OK) return sqlite_error(txn.begin_rc());
  if (auto r = write_points(points); !r) return r;
  if (const int rc = txn.commit(); rc != SQLITE_OK) return sqlite_error(rc);
  return {};
}

boost::system::result<void> MinuteStore::put_minute_archives(int64_t minute, int64_t series_from,
                                                             int64_t series_to) {
  Transaction txn(db_);
  if (txn.begin_rc() != SQLITE_OK) return sqlite_error(txn.begin_rc());
  if (auto r = write_archives(minute, series_from, series_to); !r) return r;
  if (const int rc = txn.commit(); rc != SQLITE_OK) return sqlite_error(rc);
  return {};
}

boost::system::result<int64_t> MinuteStore::series_id_end() {
  Statement st(db_, "SELECT coalesce(max(id), 0) + 1 FROM series");
  if (st.prepare_rc() != SQLITE_OK) return sqlite_error(st.prepare_rc());
  if (const int rc = st.step(); rc != SQLITE_ROW) return sqlite_error(rc);
  return st.int64(0);
}

boost::system::result<void> MinuteStore::stage_minute_cells(int64_t minute, std::span<const MinuteCell> cells,
                                                            bool first_part) {
  Transaction txn(db_);
  if (txn.begin_rc() != SQLITE_OK) return sqlite_error(txn.begin_rc());
  if (first_part) {  // what a run cut short by a crash staged is not this minute's state
    Statement stale(db_, "DELETE FROM minute_cells_staging WHERE minute = ?");
    stale.bind(1, minute);
    if (const int rc = stale.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  }
  if (auto r = write_cells("minute_cells_staging", minute, cells); !r) return r;
  if (const int rc = txn.commit(); rc != SQLITE_OK) return sqlite_error(rc);
  return {};
}

boost::system::result<void> MinuteStore::complete_minute(int64_t minute, int64_t pending_through) {
  Transaction txn(db_);
  if (txn.begin_rc() != SQLITE_OK) return sqlite_error(txn.begin_rc());
  Statement move(db_, "INSERT OR REPLACE INTO minute_cells SELECT * FROM minute_cells_staging WHERE minute = ?");
  move.bind(1, minute);
  if (const int rc = move.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  Statement clear(db_, "DELETE FROM minute_cells_staging WHERE minute = ?");
  clear.bind(1, minute);
  if (const int rc = clear.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  if (auto r = write_completion(minute, pending_through); !r) return r;
  if (const int rc = txn.commit(); rc != SQLITE_OK) return sqlite_error(rc);
  return {};
}

boost::system::result<bool> MinuteStore::purge_applied(int64_t rows) {
  // (a bare error_code would convert to bool)
  auto failed = [](int rc) { return boost::system::result<bool>(boost::system::in_place_error, sqlite_error(rc)); };
  Transaction txn(db_);
  if (txn.begin_rc() != SQLITE_OK) return failed(txn.begin_rc());
  Statement next(db_, "SELECT minute, through FROM applied_pending WHERE minute > ? ORDER BY minute LIMIT 1");
  Statement purge(db_,
                  "DELETE FROM pending_records WHERE id IN "
                  "(SELECT id FROM pending_records WHERE minute = ? AND id <= ? ORDER BY id LIMIT ?)");
  Statement purged(db_, "DELETE FROM applied_pending WHERE minute = ?");
  int64_t after = INT64_MIN;
  bool more = false;
  while (true) {
    next.reset();
    next.bind(1, after);
    const int found = next.step();
    if (found == SQLITE_DONE) break;
    if (found != SQLITE_ROW) return failed(found);
    if (rows <= 0) {
      more = true;
      break;
    }
    const int64_t minute = next.int64(0), through = next.int64(1);
    purge.reset();
    purge.bind(1, minute).bind(2, through).bind(3, rows);
    if (const int rc = purge.step(); rc != SQLITE_DONE) return failed(rc);
    const auto removed = static_cast<int64_t>(sqlite3_changes(db_));
    if (removed == rows) {
      more = true;
      break;
    }
    purged.reset();
    purged.bind(1, minute);
    if (const int rc = purged.step(); rc != SQLITE_DONE) return failed(rc);
    rows -= removed + 1;  // a marker alone costs a row's work
    after = minute;
  }
  if (const int rc = txn.commit(); rc != SQLITE_OK) return failed(rc);
  return more;
}

boost::system::result<int64_t> MinuteStore::apply_retention(int64_t now_s) {
  Statement st(db_,
               "DELETE FROM points WHERE (resolution = 60 AND ts < ?1) OR (resolution = 300 AND ts < ?2) "
               "OR (resolution = 3600 AND ts < ?3)");
  st.bind(1, now_s - retention_.minute_s).bind(2, now_s - retention_.five_minute_s).bind(3, now_s - retention_.hour_s);
  if (const int rc = st.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  const auto removed = static_cast<int64_t>(sqlite3_changes(db_));
  // Staged cells an hour old are left from a run cut short by a crash.
  Statement staged(db_, "DELETE FROM minute_cells_staging WHERE minute < ?");
  staged.bind(1, now_s - 3600);
  if (const int rc = staged.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  Statement completed(db_, "DELETE FROM completed_minutes WHERE minute < ?");
  completed.bind(1, now_s - retention_.minute_s);
  if (const int rc = completed.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  // An exporter still behind these counts them as dropped (judger/exporter.hpp).
  Statement queue(db_, "DELETE FROM export_queue WHERE minute < ?");
  queue.bind(1, now_s - retention_.minute_s);
  if (const int rc = queue.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  Statement seconds(db_, "DELETE FROM export_seconds WHERE minute < ?");
  seconds.bind(1, now_s - std::max<int64_t>(seconds_kept_s_, 0));
  if (const int rc = seconds.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  Statement reports(db_, "DELETE FROM service_reports WHERE minute < ?");
  reports.bind(1, now_s - retention_.minute_s);
  if (const int rc = reports.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  // Mergeable state lives as long as the minute points it can amend.
  Statement cells(db_, "DELETE FROM minute_cells WHERE minute < ?");
  cells.bind(1, now_s - retention_.minute_s);
  if (const int rc = cells.step(); rc != SQLITE_DONE) return sqlite_error(rc);
  // A replay of a batch whose interval is forgotten here holds only seconds
  // older than any minute that can still be amended: it is counted too late.
  Statement forget(db_, "DELETE FROM seen WHERE sender_id = ? AND first = ?");
  for (const auto& [sender, first] : seen_.expire(now_s - retention_.minute_s - 3600)) {
    forget.bind(1, static_cast<int64_t>(sender)).bind(2, static_cast<int64_t>(first));
    if (const int rc = forget.step(); rc != SQLITE_DONE) return sqlite_error(rc);
    forget.reset();
  }
  return removed;
}

boost::system::result<void> MinuteStore::write_service_reports(int64_t minute, std::span<const MinuteCell> cells) {
  // Each op of a series has its own cell, counting the reports that asked
  // for it; the most of them is the series' reports. The total (-1) is not
  // counted again.
  std::map<std::tuple<std::string_view, std::string_view, int64_t>, uint64_t> per_series;
  for (const auto& c : cells) {
    if (c.server_id < 0) continue;
    uint64_t& n = per_series[{c.service, c.attr, c.server_id}];
    n = std::max(n, c.stats.count);
  }
  std::map<std::string_view, int64_t> per_service;
  for (const auto& [key, n] : per_series) per_service[std::get<0>(key)] += static_cast<int64_t>(n);
  Statement clear(db_, "DELETE FROM service_reports WHERE minute = ?");
  clear.bind(1, minute);
  if (const int rc = clear.step(); rc != SQLITE_DONE) return sqlite_error(clear.prepare_rc() != SQLITE_OK ? clear.prepare_rc() : rc);
  Statement put(db_, "INSERT INTO service_reports (minute, service, reports) VALUES (?, ?, ?)");
  for (const auto& [service, n] : per_service) {
    put.reset();
    put.bind(1, minute).bind(2, std::string(service)).bind(3, n);
    if (const int rc = put.step(); rc != SQLITE_DONE) return sqlite_error(put.prepare_rc() != SQLITE_OK ? put.prepare_rc() : rc);
  }
  return {};
}

boost::system::result<void> MinuteStore::put_service_reports(int64_t minute, std::span<const MinuteCell> cells) {
  Transaction txn(db_);
  if (txn.begin_rc() != SQLITE_OK) return sqlite_error(txn.begin_rc());
  if (auto r = write_service_reports(minute, cells); !r) return r;
  if (const int rc = txn.commit(); rc != SQLITE_OK) return sqlite_error(rc);
  return {};
}

}  // namespace monitor::judger
