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

struct QueuedMinute {
  int64_t id = 0;
  int64_t minute = 0;
  int64_t version = 0;
  int64_t queued_ms = 0;
};

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
  for (auto& t : targets_) threads_.emplace_back([this, target = t.get()] { run(*target); });
}

Exporter::~Exporter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
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

void Exporter::run(Target& target) {
  const ExportTarget& config = target.config;
  const bool victoria = config.kind == ExportTarget::Kind::kVictoriaMetrics;
  const std::string url =
      config.url + (config.url.find('?') == std::string::npos ? "?" : "&") + (victoria ? "precision=ms" : "precision=s");
  const int64_t backlog_s = options_.backlog_minutes * 60;
  // VictoriaMetrics: version v of a point is written v ms after its time, so
  // deduplication per second keeps the newest (docs/export.md).
  auto stamp = [&](int64_t time_s, int64_t version) {
    return victoria ? time_s * 1000 + std::clamp<int64_t>(version, 1, 999) : time_s;
  };

  // Waits up to `timeout` for a queued minute or the stop; false when stopping.
  uint64_t seen_generation = 0;
  auto wait = [&](std::chrono::milliseconds timeout, bool for_new_minute) {
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, timeout, [&] { return stopping_ || (for_new_minute && generation_ != seen_generation); });
    seen_generation = generation_;
    return !stopping_;
  };

  Db store, state;
  while (!store || !state) {
    // The judger's thread writes the store while this one reads it (WAL).
    try {
      store = open_db(store_file_, OpenMode::kReadOnly);
      state = open_db(state_file_, OpenMode::kReadWrite);
      break;
    } catch (const std::runtime_error& e) {
      spdlog::error("export to {}: {}; trying again in 5 s", config.name, e.what());
    }
    if (!wait(std::chrono::seconds(5), false)) return;
  }

  Statement read_position(state.get(), "SELECT queue_id FROM positions WHERE target = ?");
  Statement write_position(state.get(),
                           "INSERT OR REPLACE INTO positions (target, queue_id, minute, updated_ms) VALUES (?,?,?,?)");
  Statement next_rows(store.get(),
                      "SELECT id, minute, version, queued_ms FROM export_queue WHERE id > ? ORDER BY id LIMIT 256");
  Statement behind(store.get(), "SELECT count(*), coalesce(min(queued_ms), 0) FROM export_queue WHERE id > ?");
  Statement start_at(store.get(), "SELECT coalesce(max(id), 0) FROM export_queue WHERE minute < ?");
  Statement points(store.get(),
                   "SELECT s.service, s.attr, s.server_id, s.op, p.value FROM points p JOIN series s ON s.id = p.series "
                   "WHERE p.resolution = 60 AND p.ts = ? ORDER BY s.service, s.attr, s.server_id");
  Statement points_after(store.get(),
                         "SELECT s.service, s.attr, s.server_id, s.op, p.value FROM points p JOIN series s ON s.id = "
                         "p.series WHERE p.resolution = 60 AND p.ts = ? AND (s.service, s.attr, s.server_id) > (?, ?, ?) "
                         "ORDER BY s.service, s.attr, s.server_id");

  Statement kept_seconds(store.get(), "SELECT version, body FROM export_seconds WHERE minute = ?");
  Statement read_names(store.get(), "SELECT id, service, attr FROM names WHERE id >= ? ORDER BY id");
  std::vector<std::pair<std::string, std::string>> names;  // (service, attr) by the store's name id
  auto load_names = [&] {
    read_names.bind(1, static_cast<int64_t>(names.size()));
    while (read_names.step() == SQLITE_ROW && read_names.int64(0) == static_cast<int64_t>(names.size())) {
      names.emplace_back(read_names.text(1), read_names.text(2));
    }
    read_names.reset();
  };

  auto save_position = [&](int64_t queue_id, int64_t minute) {
    write_position.bind(1, config.name).bind(2, queue_id).bind(3, minute).bind(4, now_ms());
    const int rc = write_position.step();
    write_position.reset();
    // Not fatal: the minutes are sent again after a restart and overwrite themselves.
    if (rc != SQLITE_DONE) spdlog::warn("export to {}: saving position: {}", config.name, sqlite3_errstr(rc));
  };

  int64_t position = 0;
  read_position.bind(1, config.name);
  if (read_position.step() == SQLITE_ROW) {
    position = read_position.int64(0);
    spdlog::info("export to {} ({}) resumes after queued minute {}", config.name, config.url, position);
  } else {
    // A new target receives the backlog's minutes, not the whole store.
    start_at.bind(1, realtime_ns() / 1'000'000'000 - backlog_s);
    if (start_at.step() == SQLITE_ROW) position = start_at.int64(0);
    start_at.reset();
    save_position(position, 0);
    spdlog::info("export to {} ({}) starts with the minutes of the last {} min", config.name, config.url,
                 options_.backlog_minutes);
  }

  auto refresh_backlog = [&] {
    behind.bind(1, position);
    if (behind.step() == SQLITE_ROW) {
      std::lock_guard lock(target.mutex);
      target.figures.backlog = behind.int64(0);
      target.figures.lag_ms = behind.int64(0) > 0 ? std::max<int64_t>(0, now_ms() - behind.int64(1)) : 0;
    }
    behind.reset();
  };

  net::HttpPoster poster;
  uint64_t failures_in_row = 0;
  // Posts until delivered or refused for good; false when stopping first. A
  // refused body of several lines is halved and each half posted, down to the
  // lines the target refuses, which are counted (Export.Refused) and logged
  // with its answer: the rest is delivered (posting a line again overwrites).
  std::function<bool(std::string_view)> post = [&](std::string_view body) {
    auto backoff = std::chrono::milliseconds(1000);
    while (true) {
      const net::PostReply reply = poster.post(url, body, {"Content-Type: text/plain; charset=utf-8"}, options_.timeout_s);
      if (reply.ok()) {
        if (failures_in_row > 0) {
          spdlog::info("export to {}: delivering again after {} failed posts", config.name, failures_in_row);
        }
        failures_in_row = 0;
        return true;
      }
      if (refused_for_good(reply)) {
        failures_in_row = 0;
        const size_t lines = static_cast<size_t>(std::count(body.begin(), body.end(), '\n'));
        if (lines > 1) {
          // At the end of a line at or before the middle (or of the first line).
          size_t at = body.rfind('\n', body.size() / 2);
          if (at == std::string_view::npos || at + 1 >= body.size()) at = body.find('\n');
          return post(body.substr(0, at + 1)) && post(body.substr(at + 1));
        }
        uint64_t refused = 0;
        {
          std::lock_guard lock(target.mutex);
          refused = ++target.figures.refused;
        }
        uint64_t suppressed = 0;
        if (target.refuse_log.allow(realtime_ns(), suppressed)) {
          spdlog::warn("export to {}: the target refused a point for good (HTTP {}: {}); it is dropped, later minutes "
                       "go on ({} refused so far, {} more not logged): {}",
                       config.name, reply.status, reply.body.substr(0, 200), refused, suppressed,
                       body.substr(0, std::min<size_t>(body.size(), 200)));
        }
        return true;
      }
      {
        std::lock_guard lock(target.mutex);
        ++target.figures.failures;
      }
      if (failures_in_row++ % 10 == 0) {
        spdlog::warn("export to {}: post failed: {}{}{}; kept and tried again (backoff up to 10 s)", config.name,
                     reply.error, reply.body.empty() ? "" : ": ", reply.body.substr(0, 200));
      }
      if (!wait(backoff, false)) return false;
      refresh_backlog();  // minutes queue up while the target is away
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
    }
  };

  while (true) {
    refresh_backlog();

    std::vector<QueuedMinute> rows;
    next_rows.bind(1, position);
    int rc;
    while ((rc = next_rows.step()) == SQLITE_ROW) {
      rows.push_back({next_rows.int64(0), next_rows.int64(1), next_rows.int64(2), next_rows.int64(3)});
    }
    next_rows.reset();
    if (rc != SQLITE_DONE) spdlog::warn("export to {}: reading the queue: {}", config.name, sqlite3_errstr(rc));
    if (rows.empty()) {
      if (!wait(std::chrono::seconds(1), true)) return;
      continue;
    }
    const int64_t now_s = realtime_ns() / 1'000'000'000;
    // Counted when found, not when delivered: a target that stays away shows them at once.
    auto count_dropped = [&](uint64_t n) {
      std::lock_guard lock(target.mutex);
      target.figures.dropped += n;
    };
    if (rows.front().id > position + 1) {
      const auto removed = static_cast<uint64_t>(rows.front().id - position - 1);
      count_dropped(removed);
      spdlog::warn("export to {}: {} queued minutes were removed by retention before delivery", config.name, removed);
    }
    // A minute queued again later in this read is sent once, as its newest version.
    std::map<int64_t, size_t> newest;
    for (size_t i = 0; i < rows.size(); ++i) newest[rows[i].minute] = i;

    std::string body;
    size_t lines = 0;
    uint64_t values = 0;
    int64_t through = position, through_minute = 0;
    std::vector<int64_t> delivering;  // queued_ms of the minutes whose every line is in `body`
    auto flush = [&]() {
      if (!body.empty() && !post(body)) return false;
      {
        std::lock_guard lock(target.mutex);
        target.figures.points += values;
        target.figures.minutes += delivering.size();
        if (!delivering.empty()) target.figures.last_delivery_ms = now_ms() - delivering.back();
      }
      if (through != position) save_position(through, through_minute);
      position = through;
      body.clear();
      lines = 0;
      values = 0;
      delivering.clear();
      return true;
    };
    bool stopped = false;
    for (size_t i = 0; i < rows.size() && !stopped; ++i) {
      const QueuedMinute& row = rows[i];
      if (row.minute < now_s - backlog_s) {
        count_dropped(1);
        uint64_t suppressed = 0;
        if (target.drop_log.allow(realtime_ns(), suppressed)) {
          spdlog::warn("export to {}: minute {} fell off the {} min backlog before delivery ({} more not logged)",
                       config.name, row.minute, options_.backlog_minutes, suppressed);
        }
      } else if (newest[row.minute] == i) {
        const int64_t timestamp = stamp(row.minute, row.version);
        std::string service, attr;
        int64_t server = 0;
        std::vector<std::pair<std::string_view, double>> fields;
        auto end_line = [&] {
          if (fields.empty()) return;
          body += export_line("monitor", service, attr, server, fields, timestamp);
          values += fields.size();
          fields.clear();
          ++lines;
        };
        // Read in parts of lines_per_post series, the read ended (reset)
        // before each post: a read held across a target's retries would pin
        // the store's write-ahead log, which then grows without bound.
        bool resume = false;  // the next part starts after (service, attr, server), sent
        while (true) {
          Statement& part = resume ? points_after : points;
          part.bind(1, row.minute);
          if (resume) part.bind(2, service).bind(3, attr).bind(4, server);
          bool full = false;
          while ((rc = part.step()) == SQLITE_ROW) {
            const std::string next_service = part.text(0), next_attr = part.text(1);
            const int64_t next_server = part.int64(2);
            if (next_service != service || next_attr != attr || next_server != server) {
              end_line();
              if (lines >= options_.lines_per_post) {
                full = true;
                break;
              }
              service = next_service;
              attr = next_attr;
              server = next_server;
            }
            const std::string_view field = field_of(static_cast<uint32_t>(part.int64(3)));
            const double value = part.real(4);
            if (!field.empty() && std::isfinite(value)) fields.emplace_back(field, value);
          }
          part.reset();
          if (!full) break;
          if (!flush()) {
            stopped = true;
            break;
          }
          resume = true;
        }
        if (stopped) break;
        end_line();
        if (rc != SQLITE_DONE) {
          // Read again from this minute on the next round.
          spdlog::warn("export to {}: reading minute {}: {}", config.name, row.minute, sqlite3_errstr(rc));
          break;
        }
        if (options_.seconds) {
          // Every kept version's records of the minute, merged per second,
          // server and op, and over servers: an amended second is sent whole.
          std::vector<PendingRecord> records;
          std::set<int64_t> versions;
          bool readable = true;
          kept_seconds.bind(1, row.minute);
          while ((rc = kept_seconds.step()) == SQLITE_ROW) {
            versions.insert(kept_seconds.int64(0));
            const std::string_view kept_body = kept_seconds.blob(1);
            std::vector<PendingRecord> decoded;
            if (!MinuteStore::decode_records(kept_body, names.size(), decoded)) {
              load_names();  // a name newer than those read so far
              decoded.clear();
              if (!MinuteStore::decode_records(kept_body, names.size(), decoded)) readable = false;
            }
            records.insert(records.end(), decoded.begin(), decoded.end());
          }
          kept_seconds.reset();
          bool whole = readable && rc == SQLITE_DONE;
          for (int64_t v = 1; whole && v <= row.version; ++v) whole = versions.count(v) > 0;
          if (!whole) {
            // Sending part of a second would overwrite the whole of it.
            {
              std::lock_guard lock(target.mutex);
              ++target.figures.seconds_dropped;
            }
            spdlog::warn("export to {}: the seconds of minute {} (version {}) are not all kept{}; its minute is sent, "
                         "its seconds are not",
                         config.name, row.minute, row.version, readable ? "" : " (a record did not decode)");
          } else {
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
            std::vector<std::pair<std::string_view, double>> second_fields;
            for (auto it = cells.begin(); it != cells.end();) {
              const auto [name, line_server, second, first_bit] = it->first;
              for (; it != cells.end() && std::get<0>(it->first) == name && std::get<1>(it->first) == line_server &&
                     std::get<2>(it->first) == second;
                   ++it) {
                for_each_op_value(std::get<3>(it->first), it->second.stats, it->second.hist, [&](uint32_t code, double v) {
                  const std::string_view field = field_of(code);
                  if (!field.empty() && std::isfinite(v)) second_fields.emplace_back(field, v);
                });
              }
              if (!second_fields.empty()) {
                body += export_line("monitor_second", names[name].first, names[name].second, line_server, second_fields,
                                    stamp(second, row.version));
                values += second_fields.size();
                ++lines;
                second_fields.clear();
              }
              if (lines >= options_.lines_per_post && !flush()) {
                stopped = true;
                break;
              }
            }
            if (stopped) break;
          }
        }
        delivering.push_back(row.queued_ms);
      }
      through = row.id;
      through_minute = row.minute;
      // Nothing waits to be posted (the rows so far were dropped, or had no
      // points): move past them now, so a target that is away does not
      // keep a dropped minute in the backlog until it returns.
      if (body.empty()) flush();
      if (lines >= options_.lines_per_post && !flush()) stopped = true;
    }
    if (stopped || !flush()) return;
  }
}

}  // namespace monitor::judger
