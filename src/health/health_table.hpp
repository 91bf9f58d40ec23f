// One table of a daemon's health figures drives its `Monitor.*` reports and,
// through the reporter, its /metrics; its /api/health keys; and its periodic
// log line. A new figure is one line; a unit test holds the table's attrs
// equal to those the example registry declares (examples/registry).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/process_info.hpp"
#include "health/health_reporter.hpp"
#include "monitor/monitor.hpp"

namespace monitor::health {

template <class Daemon>
class HealthTable {
 public:
  enum class Kind { kCounter, kGauge };
  struct Figure {
    monitor::Name attr;     // of Monitor.<Daemon>; /metrics names it after this
    Kind kind;
    std::string json_key;   // in /api/health; empty: not there
    std::string log_text;   // in the log line, after the value ("batches stored"); empty: not there
    std::function<int64_t(const Daemon&)> read;
    std::function<bool(const Daemon&)> present;  // null: always
  };

  /// The figures added after this, until the next when(), belong to a part
  /// the daemon may not run (the agent's forwarder, its plugins): they are
  /// reported only while `present` holds. A null `present` ends the part.
  HealthTable& when(std::function<bool(const Daemon&)> present) {
    present_ = std::move(present);
    return *this;
  }

  /// A monotonic total: reported as its increase (SUM), a _total in /metrics.
  HealthTable& counter(monitor::Name attr, std::string json_key, std::string log_text,
                       std::function<uint64_t(const Daemon&)> read) {
    figures_.push_back({attr, Kind::kCounter, std::move(json_key), std::move(log_text),
                        [read = std::move(read)](const Daemon& d) { return static_cast<int64_t>(read(d)); },
                        present_});
    return *this;
  }
  /// A level: reported as LAST, MAX, MIN.
  HealthTable& gauge(monitor::Name attr, std::string json_key, std::string log_text,
                     std::function<int64_t(const Daemon&)> read) {
    figures_.push_back({attr, Kind::kGauge, std::move(json_key), std::move(log_text), std::move(read), present_});
    return *this;
  }

  /// Process.RssBytes: the daemon's resident memory, every daemon's.
  HealthTable& resident_memory() {
    return gauge("Process.RssBytes", "", "", [](const Daemon&) {
      const RssInfo rss = read_rss();
      return static_cast<int64_t>(rss.anon_bytes + rss.file_bytes);
    });
  }

  void report(const Daemon& d, HealthReporter& reporter) const {
    for (const Figure& f : figures_) {
      if (f.present && !f.present(d)) continue;
      if (f.kind == Kind::kCounter) reporter.counter(f.attr, static_cast<uint64_t>(f.read(d)));
      else reporter.gauge(f.attr, f.read(d));
    }
  }

  /// Adds the figures that have a key to `out` (the rest of /api/health is the daemon's).
  void add_json(const Daemon& d, boost::json::object& out) const {
    for (const Figure& f : figures_) {
      if (f.json_key.empty() || (f.present && !f.present(d))) continue;
      if (f.kind == Kind::kCounter) out[f.json_key] = static_cast<uint64_t>(f.read(d));
      else out[f.json_key] = f.read(d);
    }
  }

  /// "12 connections, 3 batches stored, ...": the figures that have a log text.
  std::string log_line(const Daemon& d) const {
    std::string line;
    for (const Figure& f : figures_) {
      if (f.log_text.empty() || (f.present && !f.present(d))) continue;
      fmt::format_to(std::back_inserter(line), "{}{} {}", line.empty() ? "" : ", ", f.read(d), f.log_text);
    }
    return line;
  }

  std::vector<std::string> attrs() const {
    std::vector<std::string> out;
    for (const Figure& f : figures_) out.emplace_back(f.attr.view());
    return out;
  }

 private:
  std::vector<Figure> figures_;
  std::function<bool(const Daemon&)> present_;
};

}  // namespace monitor::health
