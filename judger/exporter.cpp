#include "judger/exporter.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <tuple>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "common/log_throttle.hpp"
#include "judger/export_source.hpp"
#include "judger/minute_store.hpp"
#include "judger/op_values.hpp"
#include "judger/sqlite_db.hpp"
#include "model/op.hpp"
#include "net/http_post.hpp"

namespace monitor::judger {
namespace {

int64_t now_ms() { return realtime_ns() / 1'000'000; }

// Line protocol escapes in tag keys and values: comma, space, equals sign.
// The model's names hold none of them; escaped anyway, so no name can break a line.
void append_tag_value(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == ',' || c == ' ' || c == '=' || c == '\\') out += '\\';
    out += c;
  }
}

// The field of a stored op code: the op's name in lower case, HIST as its quantiles.
std::string_view field_of(uint32_t op) {
  switch (op) {
    case 1: return "sum";
    case 2: return "max";
    case 4: return "min";
    case 8: return "avg";
    case 16: return "first";
    case 32: return "last";
    case 64: return "count";
    case model::kOpHistP50: return "p50";
    case model::kOpHistP90: return "p90";
    case model::kOpHistP99: return "p99";
    case model::kOpHistP999: return "p999";
    default: return {};
  }
}

// A 4xx answer refuses the data itself (a point beyond a retention policy, a
// line the target cannot parse): posting it again would be refused again and
// hold every later minute back. These four say the target is not ready for
// anyone (auth, database missing, slow down) and are retried like a 5xx.
bool refused_for_good(const net::PostReply& reply) {
  const long s = reply.status;
  return reply.answered && s >= 400 && s < 500 && s != 401 && s != 403 && s != 404 && s != 408 && s != 429;
}

}  // namespace

std::string export_line(std::string_view measurement, std::string_view service, std::string_view attr,
                        int64_t server_id, const std::vector<std::pair<std::string_view, double>>& fields,
                        int64_t timestamp) {
  std::string line(measurement);
  line += ",service=";
  append_tag_value(line, service);
  line += ",attr=";
  append_tag_value(line, attr);
  line += ",server=";
  line += server_id < 0 ? std::string("total") : std::to_string(server_id);
  char separator = ' ';
  for (const auto& [field, value] : fields) {
    line += separator;
    fmt::format_to(std::back_inserter(line), "{}={}", field, value);
    separator = ',';
  }
  fmt::format_to(std::back_inserter(line), " {}\n", timestamp);
  return line;
}

struct Exporter::Target {
  explicit Target(ExportTarget target) : config(std::move(target)) { figures.target = config.name; }
  const ExportTarget config;
  mutable std::mutex mutex;
  ExportFigures figures;  // GUARDED_BY(mutex)
  LogThrottle drop_log{60'000'000'000};
  LogThrottle refuse_log{60'000'000'000};
};

Exporter::Exporter(const std::filesystem::path& data_dir, const std::filesystem::path& store_file,
                   ExportOptions options)
    : state_file_(data_dir / "export.db"), store_file_(store_file), options_(std::move(options)) {
  const Db state = open_db(state_file_, OpenMode::kCreate);
  exec_or_throw(state.get(),
                "PRAGMA journal_mode = WAL;"
                "CREATE TABLE IF NOT EXISTS positions (target TEXT PRIMARY KEY, queue_id INTEGER NOT NULL, "
                "minute INTEGER NOT NULL, updated_ms INTEGER NOT NULL)",
                fmt::format("prepare {}", state_file_.string()));
  for (const ExportTarget& t : options_.targets) targets_.push_back(std::make_unique<Target>(t));
  for (auto& t : targets_) {
    threads_.emplace_back([this, target = t.get()](std::stop_token stop) { run(*target, std::move(stop)); });
  }
}

Exporter::~Exporter() {
  for (std::jthread& t : threads_) t.request_stop();
  for (std::jthread& t : threads_) t.join();  // a post in flight ends within its timeout
}

void Exporter::minute_queued() {
  {
    std::lock_guard lock(mutex_);
    ++generation_;
  }
  wake_.notify_all();
}

std::vector<ExportFigures> Exporter::figures() const {
  std::vector<ExportFigures> out;
  for (const auto& t : targets_) {
    std::lock_guard lock(t->mutex);
    out.push_back(t->figures);
  }
  return out;
}

// One target's thread: reads the queue from its saved position, posts each
// minute's points (and seconds) in bodies of at most lines_per_post lines,
// and saves the position once the target took a body.
class Exporter::TargetRun {
 public:
  TargetRun(Exporter& exporter, Target& target, std::stop_token stop)
      : exporter_(exporter),
        target_(target),
        stop_(std::move(stop)),
        config_(target.config),
        options_(exporter.options_),
        victoria_(config_.kind == ExportTarget::Kind::kVictoriaMetrics),
        url_(config_.url + (config_.url.find('?') == std::string::npos ? "?" : "&") +
             (victoria_ ? "precision=ms" : "precision=s")),
        backlog_s_(options_.backlog_minutes * 60) {}

  void run() {
    if (!open_databases()) return;
    resume_position();
    while (true) {
      refresh_backlog();
      std::vector<ExportSource::QueuedMinute> rows;
      if (const int rc = source_->queued_after(position_, rows); rc != SQLITE_DONE) {
        spdlog::warn("export to {}: reading the queue: {}", config_.name, sqlite3_errstr(rc));
      }
      if (rows.empty()) {
        if (!wait(std::chrono::seconds(1), true)) return;
        continue;
      }
      if (!deliver(rows)) return;
    }
  }

 private:
  enum class Step { kDone, kStopped, kReadFailed };
  using QueuedMinute = ExportSource::QueuedMinute;

  // Waits up to `timeout` for a queued minute (or only the time) or the stop; false when stopping.
  bool wait(std::chrono::milliseconds timeout, bool for_new_minute) {
    std::unique_lock lock(exporter_.mutex_);
    exporter_.wake_.wait_for(lock, stop_, timeout,
                             [&] { return for_new_minute && exporter_.generation_ != seen_generation_; });
    seen_generation_ = exporter_.generation_;
    return !stop_.stop_requested();
  }

  // The store (read-only: the judger's thread writes it, WAL) and export.db; false when stopping first.
  bool open_databases() {
    while (true) {
      try {
        source_ = std::make_unique<ExportSource>(exporter_.store_file_);
        state_ = open_db(exporter_.state_file_, OpenMode::kReadWrite);
        read_position_ = std::make_unique<Statement>(state_.get(), "SELECT queue_id FROM positions WHERE target = ?");
        write_position_ = std::make_unique<Statement>(
            state_.get(), "INSERT OR REPLACE INTO positions (target, queue_id, minute, updated_ms) VALUES (?,?,?,?)");
        return true;
      } catch (const std::runtime_error& e) {
        spdlog::error("export to {}: {}; trying again in 5 s", config_.name, e.what());
      }
      if (!wait(std::chrono::seconds(5), false)) return false;
    }
  }

  void resume_position() {
    read_position_->bind(1, config_.name);
    if (read_position_->step() == SQLITE_ROW) {
      position_ = read_position_->int64(0);
      read_position_->reset();
      spdlog::info("export to {} ({}) resumes after queued minute {}", config_.name, config_.url, position_);
      return;
    }
    read_position_->reset();
    // A new target receives the backlog's minutes, not the whole store.
    position_ = source_->last_id_before(realtime_ns() / 1'000'000'000 - backlog_s_);
    save_position(position_, 0);
    spdlog::info("export to {} ({}) starts with the minutes of the last {} min", config_.name, config_.url,
                 options_.backlog_minutes);
  }

  void save_position(int64_t queue_id, int64_t minute) {
    write_position_->bind(1, config_.name).bind(2, queue_id).bind(3, minute).bind(4, now_ms());
    const int rc = write_position_->step();
    write_position_->reset();
    // Not fatal: the minutes are sent again after a restart and overwrite themselves.
    if (rc != SQLITE_DONE) spdlog::warn("export to {}: saving position: {}", config_.name, sqlite3_errstr(rc));
  }

  void refresh_backlog() {
    const auto [count, oldest_ms] = source_->backlog_after(position_);
    std::lock_guard lock(target_.mutex);
    target_.figures.backlog = count;
    target_.figures.lag_ms = count > 0 ? std::max<int64_t>(0, now_ms() - oldest_ms) : 0;
  }

  // Counted when found, not when delivered: a target that stays away shows them at once.
  void count_dropped(uint64_t n) {
    std::lock_guard lock(target_.mutex);
    target_.figures.dropped += n;
  }

  // VictoriaMetrics: version v of a point is written v ms after its time, so
  // deduplication per second keeps the newest (docs/export.md).
  int64_t stamp(int64_t time_s, int64_t version) const {
    return victoria_ ? time_s * 1000 + std::clamp<int64_t>(version, 1, 999) : time_s;
  }

  // Posts until delivered or refused for good; false when stopping first. A
  // refused body of several lines is halved and each half posted, down to the
  // lines the target refuses, which are counted (Export.Refused) and logged
  // with its answer: the rest is delivered (posting a line again overwrites).
  bool post(std::string_view body) {
    auto backoff = std::chrono::milliseconds(1000);
    while (true) {
      const net::PostReply reply = poster_.post(url_, body, {"Content-Type: text/plain; charset=utf-8"}, options_.timeout_s);
      if (reply.ok()) {
        if (failures_in_row_ > 0) {
          spdlog::info("export to {}: delivering again after {} failed posts", config_.name, failures_in_row_);
        }
        failures_in_row_ = 0;
        return true;
      }
      if (refused_for_good(reply)) {
        failures_in_row_ = 0;
        return post_refused(body, reply);
      }
      {
        std::lock_guard lock(target_.mutex);
        ++target_.figures.failures;
      }
      if (failures_in_row_++ % 10 == 0) {
        spdlog::warn("export to {}: post failed: {}{}{}; kept and tried again (backoff up to 10 s)", config_.name,
                     reply.error, reply.body.empty() ? "" : ": ", reply.body.substr(0, 200));
      }
      if (!wait(backoff, false)) return false;
      refresh_backlog();  // minutes queue up while the target is away
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
    }
  }

  bool post_refused(std::string_view body, const net::PostReply& reply) {
    const size_t lines = static_cast<size_t>(std::count(body.begin(), body.end(), '\n'));
    if (lines > 1) {
      // At the end of a line at or before the middle (or of the first line).
      size_t at = body.rfind('\n', body.size() / 2);
      if (at == std::string_view::npos || at + 1 >= body.size()) at = body.find('\n');
      return post(body.substr(0, at + 1)) && post(body.substr(at + 1));
    }
    uint64_t refused = 0;
    {
      std::lock_guard lock(target_.mutex);
      refused = ++target_.figures.refused;
    }
    uint64_t suppressed = 0;
    if (target_.refuse_log.allow(realtime_ns(), suppressed)) {
      spdlog::warn("export to {}: the target refused a point for good (HTTP {}: {}); it is dropped, later minutes "
                   "go on ({} refused so far, {} more not logged): {}",
                   config_.name, reply.status, reply.body.substr(0, 200), refused, suppressed,
                   body.substr(0, std::min<size_t>(body.size(), 200)));
    }
    return true;
  }

  // Posts the body (if any), counts what it delivered and moves the position
  // past the rows it holds; false when stopping first.
  bool flush() {
    if (!body_.empty() && !post(body_)) return false;
    {
      std::lock_guard lock(target_.mutex);
      target_.figures.points += values_;
      target_.figures.minutes += delivering_.size();
      if (!delivering_.empty()) target_.figures.last_delivery_ms = now_ms() - delivering_.back();
    }
    if (through_ != position_) save_position(through_, through_minute_);
    position_ = through_;
    body_.clear();
    lines_ = 0;
    values_ = 0;
    delivering_.clear();
    return true;
  }

  // The rows of one read of the queue; false when stopping.
  bool deliver(const std::vector<QueuedMinute>& rows) {
    const int64_t now_s = realtime_ns() / 1'000'000'000;
    through_ = position_;
    if (rows.front().id > position_ + 1) {
      const auto removed = static_cast<uint64_t>(rows.front().id - position_ - 1);
      count_dropped(removed);
      spdlog::warn("export to {}: {} queued minutes were removed by retention before delivery", config_.name, removed);
    }
    // A minute queued again later in this read is sent once, as its newest version.
    std::map<int64_t, size_t> newest;
    for (size_t i = 0; i < rows.size(); ++i) newest[rows[i].minute] = i;
    for (size_t i = 0; i < rows.size(); ++i) {
      const QueuedMinute& row = rows[i];
      if (row.minute < now_s - backlog_s_) {
        count_dropped(1);
        uint64_t suppressed = 0;
        if (target_.drop_log.allow(realtime_ns(), suppressed)) {
          spdlog::warn("export to {}: minute {} fell off the {} min backlog before delivery ({} more not logged)",
                       config_.name, row.minute, options_.backlog_minutes, suppressed);
        }
      } else if (newest[row.minute] == i) {
        Step step = add_points(row);
        if (step == Step::kDone && options_.seconds) step = add_seconds(row);
        if (step == Step::kStopped) return false;
        if (step == Step::kReadFailed) break;  // read again from this minute on the next round
        delivering_.push_back(row.queued_ms);
      }
      through_ = row.id;
      through_minute_ = row.minute;
      // Nothing waits to be posted (the rows so far were dropped, or had no
      // points): move past them now, so a target that is away does not keep
      // a dropped minute in the backlog until it returns.
      if (body_.empty()) flush();
      if (lines_ >= options_.lines_per_post && !flush()) return false;
    }
    return flush();
  }

  // The minute's points, a line per series. Read in parts of lines_per_post
  // series, each read ended before the body is posted: a read held across a
  // target's retries would pin the store's write-ahead log.
  Step add_points(const QueuedMinute& row) {
    const int64_t timestamp = stamp(row.minute, row.version);
    ExportSource::SeriesAt at;  // the series of the line being filled
    std::vector<std::pair<std::string_view, double>> fields;
    auto end_line = [&] {
      if (fields.empty()) return;
      body_ += export_line("monitor", at.service, at.attr, at.server_id, fields, timestamp);
      values_ += fields.size();
      fields.clear();
      ++lines_;
    };
    bool resume = false;  // the next part starts after `at`, sent
    int rc = SQLITE_DONE;
    while (true) {
      bool full = false;
      const ExportSource::SeriesAt after = at;
      rc = source_->minute_points(row.minute, resume ? &after : nullptr, [&](const ExportSource::PointRow& p) {
        if (p.service != at.service || p.attr != at.attr || p.server_id != at.server_id) {
          end_line();
          if (lines_ >= options_.lines_per_post) {
            full = true;
            return false;
          }
          at = {p.service, p.attr, p.server_id};
        }
        const std::string_view field = field_of(p.op);
        if (!field.empty() && std::isfinite(p.value)) fields.emplace_back(field, p.value);
        return true;
      });
      if (!full) break;
      if (!flush()) return Step::kStopped;
      resume = true;
    }
    end_line();
    if (rc != SQLITE_DONE) {
      spdlog::warn("export to {}: reading minute {}: {}", config_.name, row.minute, sqlite3_errstr(rc));
      return Step::kReadFailed;
    }
    return Step::kDone;
  }

  // Every kept version's records of the minute, merged per second, server and
  // op, and over servers: an amended second is sent whole, or not at all.
  Step add_seconds(const QueuedMinute& row) {
    std::vector<PendingRecord> records;
    std::set<int64_t> versions;
    bool readable = true;
    const int rc = source_->kept_seconds(row.minute, [&](int64_t version, std::string_view kept_body) {
      versions.insert(version);
      std::vector<PendingRecord> decoded;
      if (!MinuteStore::decode_records(kept_body, names_.size(), decoded)) {
        source_->load_names(names_);  // a name newer than those read so far
        decoded.clear();
        if (!MinuteStore::decode_records(kept_body, names_.size(), decoded)) readable = false;
      }
      records.insert(records.end(), decoded.begin(), decoded.end());
    });
    bool whole = readable && rc == SQLITE_DONE;
    for (int64_t v = 1; whole && v <= row.version; ++v) whole = versions.count(v) > 0;
    if (!whole) {
      // Sending part of a second would overwrite the whole of it.
      {
        std::lock_guard lock(target_.mutex);
        ++target_.figures.seconds_dropped;
      }
      spdlog::warn("export to {}: the seconds of minute {} (version {}) are not all kept{}; its minute is sent, "
                   "its seconds are not",
                   config_.name, row.minute, row.version, readable ? "" : " (a record did not decode)");
      return Step::kDone;
    }
    struct SecondCell {
      model::Stats stats;
      model::LogHistogram hist;
    };
    // (name, server, second, op bit): ordered so one line's fields are adjacent.
    std::map<std::tuple<uint32_t, int64_t, int64_t, uint32_t>, SecondCell> cells;
    for (const PendingRecord& p : records) {
      for (const auto& op : model::kOps) {
        if ((p.record.ops & op.bit) == 0) continue;
        for (const int64_t cell_server : {p.record.server_id, int64_t{-1}}) {
          SecondCell& cell = cells[{p.name, cell_server, p.record.second, op.bit}];
          cell.stats.merge(p.record.stats);
          if (op.bit == 128u) cell.hist.merge(p.record.hist);
        }
      }
    }
    std::vector<std::pair<std::string_view, double>> fields;
    for (auto it = cells.begin(); it != cells.end();) {
      const auto [name, line_server, second, first_bit] = it->first;
      for (; it != cells.end() && std::get<0>(it->first) == name && std::get<1>(it->first) == line_server &&
             std::get<2>(it->first) == second;
           ++it) {
        for_each_op_value(std::get<3>(it->first), it->second.stats, it->second.hist, [&](uint32_t code, double v) {
          const std::string_view field = field_of(code);
          if (!field.empty() && std::isfinite(v)) fields.emplace_back(field, v);
        });
      }
      if (!fields.empty()) {
        body_ += export_line("monitor_second", names_[name].first, names_[name].second, line_server, fields,
                             stamp(second, row.version));
        values_ += fields.size();
        ++lines_;
        fields.clear();
      }
      if (lines_ >= options_.lines_per_post && !flush()) return Step::kStopped;
    }
    return Step::kDone;
  }

  Exporter& exporter_;
  Target& target_;
  const std::stop_token stop_;
  const ExportTarget& config_;
  const ExportOptions& options_;
  const bool victoria_;
  const std::string url_;
  const int64_t backlog_s_;
  uint64_t seen_generation_ = 0;
  std::unique_ptr<ExportSource> source_;
  Db state_;
  std::unique_ptr<Statement> read_position_, write_position_;
  std::vector<std::pair<std::string, std::string>> names_;  // (service, attr) by the store's name id
  net::HttpPoster poster_;
  uint64_t failures_in_row_ = 0;
  int64_t position_ = 0;  // the last queue id delivered (or dropped)
  // The body being filled, and the rows it holds.
  std::string body_;
  size_t lines_ = 0;
  uint64_t values_ = 0;
  int64_t through_ = 0, through_minute_ = 0;
  std::vector<int64_t> delivering_;  // queued_ms of the minutes whose every line is in body_
};

void Exporter::run(Target& target, std::stop_token stop) { TargetRun(*this, target, std::move(stop)).run(); }

}  // namespace monitor::judger
