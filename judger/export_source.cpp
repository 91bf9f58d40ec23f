#include "judger/export_source.hpp"

namespace monitor::judger {

ExportSource::ExportSource(const std::filesystem::path& store_file)
    : db_(open_db(store_file, OpenMode::kReadOnly)),
      next_rows_(db_.get(), "SELECT id, minute, version, queued_ms FROM export_queue WHERE id > ? ORDER BY id LIMIT 256"),
      behind_(db_.get(), "SELECT count(*), coalesce(min(queued_ms), 0) FROM export_queue WHERE id > ?"),
      start_at_(db_.get(), "SELECT coalesce(max(id), 0) FROM export_queue WHERE minute < ?"),
      points_(db_.get(),
              "SELECT s.service, s.attr, s.server_id, s.op, p.value FROM points p JOIN series s ON s.id = p.series "
              "WHERE p.resolution = 60 AND p.ts = ? ORDER BY s.service, s.attr, s.server_id"),
      points_after_(db_.get(),
                    "SELECT s.service, s.attr, s.server_id, s.op, p.value FROM points p JOIN series s ON s.id = "
                    "p.series WHERE p.resolution = 60 AND p.ts = ? AND (s.service, s.attr, s.server_id) > (?, ?, ?) "
                    "ORDER BY s.service, s.attr, s.server_id"),
      kept_seconds_(db_.get(), "SELECT version, body FROM export_seconds WHERE minute = ?"),
      read_names_(db_.get(), "SELECT id, service, attr FROM names WHERE id >= ? ORDER BY id") {}

int ExportSource::queued_after(int64_t after_id, std::vector<QueuedMinute>& out) {
  next_rows_.bind(1, after_id);
  int rc;
  while ((rc = next_rows_.step()) == SQLITE_ROW) {
    out.push_back({next_rows_.int64(0), next_rows_.int64(1), next_rows_.int64(2), next_rows_.int64(3)});
  }
  next_rows_.reset();
  return rc;
}

std::pair<int64_t, int64_t> ExportSource::backlog_after(int64_t after_id) {
  behind_.bind(1, after_id);
  std::pair<int64_t, int64_t> out{0, 0};
  if (behind_.step() == SQLITE_ROW) out = {behind_.int64(0), behind_.int64(1)};
  behind_.reset();
  return out;
}

int64_t ExportSource::last_id_before(int64_t minute_s) {
  start_at_.bind(1, minute_s);
  const int64_t id = start_at_.step() == SQLITE_ROW ? start_at_.int64(0) : 0;
  start_at_.reset();
  return id;
}

int ExportSource::minute_points(int64_t minute, const SeriesAt* after, const std::function<bool(const PointRow&)>& take) {
  Statement& part = after != nullptr ? points_after_ : points_;
  part.bind(1, minute);
  if (after != nullptr) part.bind(2, after->service).bind(3, after->attr).bind(4, after->server_id);
  int rc;
  PointRow row;
  while ((rc = part.step()) == SQLITE_ROW) {
    row.service = part.text(0);
    row.attr = part.text(1);
    row.server_id = part.int64(2);
    row.op = static_cast<uint32_t>(part.int64(3));
    row.value = part.real(4);
    if (!take(row)) break;
  }
  part.reset();
  return rc;
}

int ExportSource::kept_seconds(int64_t minute, const std::function<void(int64_t, std::string_view)>& take) {
  kept_seconds_.bind(1, minute);
  int rc;
  while ((rc = kept_seconds_.step()) == SQLITE_ROW) take(kept_seconds_.int64(0), kept_seconds_.blob(1));
  kept_seconds_.reset();
  return rc;
}

void ExportSource::load_names(std::vector<std::pair<std::string, std::string>>& names) {
  read_names_.bind(1, static_cast<int64_t>(names.size()));
  while (read_names_.step() == SQLITE_ROW && read_names_.int64(0) == static_cast<int64_t>(names.size())) {
    names.emplace_back(read_names_.text(1), read_names_.text(2));
  }
  read_names_.reset();
}

}  // namespace monitor::judger
