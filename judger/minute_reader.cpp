#include "judger/minute_reader.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <iterator>
#include <map>

#include "judger/sqlite_db.hpp"
#include "wire/byte_io.hpp"

namespace monitor::judger {
namespace {

// The eight Stats columns (count, sum, min, max, first, first_time, last,
// last_time), as the store writes them.
model::Stats read_stats(const Statement& st, int first) {
  model::Stats s;
  s.count = static_cast<uint64_t>(st.int64(first));
  s.sum = st.int64(first + 1);
  s.min = st.int64(first + 2);
  s.max = st.int64(first + 3);
  s.first = st.int64(first + 4);
  s.first_time = st.int64(first + 5);
  s.last = st.int64(first + 6);
  s.last_time = st.int64(first + 7);
  return s;
}

void decode_hist(std::string_view bytes, model::LogHistogram& h) {
  wire::ByteReader r(bytes);
  while (r.remaining() > 0) {
    const int64_t key = r.svarint();
    const uint64_t count = r.varint();
    if (!r.ok()) break;
    h.add_to_bucket(static_cast<int32_t>(key), count);
  }
}

}  // namespace

bool is_interrupted(const boost::system::error_code& ec) noexcept {
  return ec.category() == kSqliteCategory && ec.value() == SQLITE_INTERRUPT;
}

boost::system::result<std::unique_ptr<MinuteReader>> MinuteReader::open_read_only(const std::filesystem::path& file,
                                                                                  Retention retention) {
  auto opened = try_open_db(file, OpenMode::kReadOnly);
  if (!opened) return opened.error();
  auto reader = std::make_unique<MinuteReader>(opened->release(), retention);
  reader->owns_db_ = true;
  return reader;
}

MinuteReader::~MinuteReader() {
  if (owns_db_) sqlite3_close(db_);
}

boost::system::error_code interrupted_error() noexcept { return sqlite_error(SQLITE_INTERRUPT); }

int MinuteReader::progress(void* self) noexcept {
  const auto* reader = static_cast<const MinuteReader*>(self);
  if (reader->deadline_ == std::chrono::steady_clock::time_point{}) return 0;  // no stop asked
  if (reader->cancel_ != nullptr && reader->cancel_->load(std::memory_order_relaxed)) return 1;
  return std::chrono::steady_clock::now() > reader->deadline_ ? 1 : 0;
}

void MinuteReader::stop_after(std::chrono::steady_clock::time_point deadline, const std::atomic<bool>* cancel) {
  deadline_ = deadline;
  cancel_ = cancel;
  // Every few thousand virtual machine steps: microseconds apart.
  sqlite3_progress_handler(db_, 4096, &MinuteReader::progress, this);
}

void MinuteReader::clear_stop() {
  sqlite3_progress_handler(db_, 0, nullptr, nullptr);
  deadline_ = {};
  cancel_ = nullptr;
}

boost::system::result<std::vector<StoredPoint>> MinuteReader::query(const std::string& service, const std::string& attr,
                                                                   uint32_t op, int64_t server_id, int64_t from,
                                                                   int64_t to, int64_t step_s, int64_t now_s) {
  // Start at the coarsest resolution no coarser than the step (its archive
  // already holds the averages a step-wide bucket needs), then go coarser
  // until one still holds `from`.
  const std::pair<int64_t, int64_t> resolutions[] = {
      {60, retention_.minute_s}, {300, retention_.five_minute_s}, {3600, retention_.hour_s}};
  step_s = std::max<int64_t>(step_s, 60);
  size_t pick = 0;
  while (pick + 1 < std::size(resolutions) && resolutions[pick + 1].first <= step_s) ++pick;
  while (pick + 1 < std::size(resolutions) && now_s - resolutions[pick].second > from) ++pick;
  const int64_t resolution = resolutions[pick].first;
  Statement st(db_,
               "SELECT p.ts, p.value, p.min, p.max, p.minutes FROM points p JOIN series s ON s.id = p.series "
               "WHERE s.service = ? AND s.attr = ? AND s.op = ? AND s.server_id = ? AND p.resolution = ? "
               "AND p.ts >= ? AND p.ts < ? "
               // A minute being stored in parts is not served until all of it is.
               "AND (p.resolution != 60 OR p.ts IN (SELECT minute FROM completed_minutes)) ORDER BY p.ts");
  st.bind(1, service).bind(2, attr).bind(3, int64_t{op}).bind(4, server_id).bind(5, resolution).bind(6, from).bind(7, to);
  std::map<int64_t, StoredPoint> buckets;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    const int64_t ts = st.int64(0);
    const int64_t bucket = ts - ((ts % step_s) + step_s) % step_s;
    const double value = st.real(1), lo = st.real(2), hi = st.real(3);
    const int64_t minutes = st.int64(4);
    auto [it, fresh] = buckets.try_emplace(bucket, StoredPoint{bucket, 0, lo, hi, 0});
    StoredPoint& b = it->second;
    // Average weighted by the minutes each stored point stands for.
    b.value = (b.value * static_cast<double>(b.minutes) + value * static_cast<double>(minutes)) /
              static_cast<double>(b.minutes + minutes);
    b.minutes += minutes;
    if (!fresh) {
      b.min = std::min(b.min, lo);
      b.max = std::max(b.max, hi);
    }
  }
  if (rc != SQLITE_DONE) return sqlite_error(rc);
  std::vector<StoredPoint> out;
  out.reserve(buckets.size());
  for (auto& [t, p] : buckets) out.push_back(p);
  return out;
}

boost::system::result<std::vector<std::pair<int64_t, MinuteCell>>> MinuteReader::series_cells(
    const std::string& service, const std::string& attr, uint32_t op, std::optional<int64_t> server_id, int64_t from,
    int64_t to) {
  Statement st(db_,
               "SELECT c.minute, count, sum, min, max, first, first_time, last, last_time, hist, server_id "
               "FROM minute_cells c JOIN completed_minutes d ON d.minute = c.minute "
               "WHERE c.minute >= ?1 AND c.minute < ?2 AND service = ?3 AND attr = ?4 AND op = ?5 "
               "AND (?6 = 1 OR server_id = ?7) ORDER BY c.minute, server_id");
  st.bind(1, from).bind(2, to).bind(3, service).bind(4, attr).bind(5, static_cast<int64_t>(op));
  st.bind(6, int64_t{server_id ? 0 : 1}).bind(7, server_id.value_or(-1));
  std::vector<std::pair<int64_t, MinuteCell>> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    MinuteCell c{service, attr, op, st.int64(10), read_stats(st, 1), {}};
    decode_hist(st.blob(9), c.hist);
    out.emplace_back(st.int64(0), std::move(c));
  }
  if (rc != SQLITE_DONE) return sqlite_error(rc);
  return out;
}

boost::system::result<std::vector<MinuteCell>> MinuteReader::minute_cells(int64_t minute) {
  Statement st(db_,
               "SELECT service, attr, op, server_id, count, sum, min, max, first, first_time, last, last_time, hist "
               "FROM minute_cells WHERE minute = ?");
  st.bind(1, minute);
  std::vector<MinuteCell> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    MinuteCell c;
    c.service = st.text(0);
    c.attr = st.text(1);
    c.op = static_cast<uint32_t>(st.int64(2));
    c.server_id = st.int64(3);
    c.stats = read_stats(st, 4);
    decode_hist(st.blob(12), c.hist);
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return sqlite_error(rc);
  return out;
}

boost::system::result<std::vector<std::pair<std::string, std::string>>> MinuteReader::list_series() {
  Statement st(db_, "SELECT DISTINCT service, attr FROM series ORDER BY service, attr");
  std::vector<std::pair<std::string, std::string>> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.emplace_back(st.text(0), st.text(1));
  if (rc != SQLITE_DONE) return sqlite_error(rc);
  return out;
}

boost::system::result<int64_t> MinuteReader::last_minute(const std::string& service) {
  // Through the primary key, series by series: never a scan of all points.
  Statement st(db_,
               "SELECT coalesce(max(p.ts), 0) FROM series s, points p "
               "WHERE s.service = ? AND p.series = s.id AND p.resolution = 60");
  st.bind(1, service);
  if (const int rc = st.step(); rc != SQLITE_ROW) return sqlite_error(st.prepare_rc() != SQLITE_OK ? st.prepare_rc() : rc);
  return st.int64(0);
}

boost::system::result<std::vector<std::pair<std::string, int64_t>>> MinuteReader::reports_by_service(int64_t from,
                                                                                                     int64_t to) {
  Statement st(db_,
               "SELECT service, sum(reports) FROM service_reports WHERE minute >= ? AND minute < ? "
               "AND minute IN (SELECT minute FROM completed_minutes) GROUP BY service ORDER BY 2 DESC");
  st.bind(1, from).bind(2, to);
  std::vector<std::pair<std::string, int64_t>> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.emplace_back(st.text(0), st.int64(1));
  if (rc != SQLITE_DONE) return sqlite_error(st.prepare_rc() != SQLITE_OK ? st.prepare_rc() : rc);
  return out;
}

boost::system::result<std::vector<MinutePoint>> MinuteReader::minute_points(const std::string& service,
                                                                         const std::string& attr, uint32_t op,
                                                                         int64_t from, int64_t to, size_t limit) {
  std::vector<MinutePoint> out;
  auto read = each_minute_point(service, attr, op, from, to, limit, [&](int64_t server, int64_t minute, double value) {
    out.push_back({service, attr, op, server, minute, value});
  });
  if (!read) return read.error();
  return out;
}

boost::system::result<size_t> MinuteReader::each_minute_point(const std::string& service, const std::string& attr,
                                                              uint32_t op, int64_t from, int64_t to, size_t limit,
                                                              const PointFn& each) {
  size_t count = 0;
  // Minutes older than the minute retention live on as 5-minute averages,
  // each standing for its five minutes, so windows that reach a day or a week
  // back (1d, 1w) and `rule test --since 7d` still read values. Only before
  // the oldest minute still kept: a gap within the kept minutes stays a gap.
  Statement horizon(db_, "SELECT coalesce(min(minute), 0) FROM completed_minutes");
  if (const int rc = horizon.step(); rc != SQLITE_ROW) return sqlite_error(horizon.prepare_rc() != SQLITE_OK ? horizon.prepare_rc() : rc);
  const int64_t kept_from = horizon.int64(0);
  Statement coarse(db_,
                   "SELECT s.server_id, p.ts, p.value FROM series s JOIN points p ON p.series = s.id "
                   "WHERE s.service = ? AND s.attr = ? AND s.op = ? AND p.resolution = 300 AND p.ts > ? AND p.ts < ? "
                   "AND p.ts + 300 <= ? ORDER BY p.ts");
  coarse.bind(1, service).bind(2, attr).bind(3, int64_t{op}).bind(4, from - 300).bind(5, to).bind(6, kept_from);
  int rc = SQLITE_DONE;
  while (count < limit && (rc = coarse.step()) == SQLITE_ROW) {
    for (int64_t m = coarse.int64(1); m < coarse.int64(1) + 300 && count < limit; m += 60) {
      if (m >= from && m < to) {
        each(coarse.int64(0), m, coarse.real(2));
        ++count;
      }
    }
  }
  if (count < limit && rc != SQLITE_DONE) return sqlite_error(coarse.prepare_rc() != SQLITE_OK ? coarse.prepare_rc() : rc);
  Statement st(db_,
               "SELECT s.server_id, p.ts, p.value FROM series s JOIN points p ON p.series = s.id "
               "WHERE s.service = ? AND s.attr = ? AND s.op = ? AND p.resolution = 60 AND p.ts >= ? AND p.ts < ? "
               "AND p.ts IN (SELECT minute FROM completed_minutes) ORDER BY p.ts");
  st.bind(1, service).bind(2, attr).bind(3, int64_t{op}).bind(4, from).bind(5, to);
  rc = SQLITE_DONE;
  while (count < limit && (rc = st.step()) == SQLITE_ROW) {
    each(st.int64(0), st.int64(1), st.real(2));
    ++count;
  }
  if (count < limit && rc != SQLITE_DONE) return sqlite_error(rc);
  return count;
}

}  // namespace monitor::judger
