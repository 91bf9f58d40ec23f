// monitor-judger's settings: defaults, the JSON config file, flags (docs/judger.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/default_paths.hpp"
#include "common/settings.hpp"
#include "judger/exporter.hpp"

namespace monitor::judger {

/// Everything monitor-judger can be told: defaults, then the JSON config file,
/// then flags (docs/judger.md).
struct JudgerConfig {
  std::string name = "judger-1";
  std::string listen = "127.0.0.1:7300";  // batches from proxies
  std::string query_listen = "127.0.0.1:7301";  // the HTTP query API
  std::string data_dir = default_state_dir() + "/judger";
  std::string registry = default_registry();
  // A minute is final once every live sender's watermark has passed its
  // end; `grace_s` after its end for senders that send none or went away.
  int grace_s = 7;  // the agent sends a second 2-3 s after it ends
  int watermark_wait_s = 30;  // the longest a live sender whose watermark lags holds a minute
  int late_window_s = 120;
  // After a start, minutes are final only once the senders that fed this
  // judger are back and caught up, or this long has passed.
  int catch_up_s = 20;
  int future_window_s = 300;  // records of seconds further ahead of this judger's clock are refused
  int idle_timeout_s = 60;  // a connection silent this long is closed
  // Bounds on what peers can make the judger hold (docs/judger.md, "Limits").
  uint32_t max_connections = 1024;       // batch connections at once; more are closed at accept
  uint32_t max_query_connections = 256;  // HTTP query connections at once
  int query_threads = 2;       // store queries run here, off the thread that ingests and acknowledges
  int query_timeout_s = 30;    // a store query running longer is stopped (503)
  uint32_t max_names = 1'000'000;        // (service, attr) names interned; records of new ones past it refused
  uint32_t series_per_service = 500'000; // series (attr, server) of one service in one minute; 0: no limit
  int64_t server_id = 0;     // for the Monitor.Judger health metrics
  bool self_metrics = true;  // report Monitor.Judger through the local agent, if one runs
  bool placement = true;     // take part in automatic placement (acts when leader and the registry says auto)
  std::string tls_ca, tls_cert, tls_key;  // all three: batches only over TLS (docs/security.md)
  bool allow_plaintext = false;           // without TLS, listen for batches beyond loopback anyway
  bool query_tokens = false;              // the query API asks every request for a user's token
  bool allow_anonymous_queries = false;   // without query_tokens, serve queries beyond loopback anyway
  std::string query_token;                // this judger's token, to read other judgers' minutes
  std::string https_cert, https_key;      // both: the query API is HTTPS
  std::string query_ca;                   // other judgers' API is HTTPS, their certificates from this CA
  std::string log_level = "info";
  // Alarms (docs/rules.md, "Notifications").
  std::string smtp_url = "smtp://127.0.0.1:25";
  std::string mail_from = "monitor@localhost";
  std::string dashboard_url;     // if set, each alarm message links to its series' chart there
  int notify_tries = 6;          // deliveries tried before one is recorded as failed
  int notify_backoff_ms = 5000;  // before the second try; doubles per try, at most 5 min
  int command_timeout_s = 10;
  int command_max_running = 4;
  // Export of finished minutes (docs/export.md); none by default.
  std::vector<ExportTarget> export_targets;
  int64_t export_backlog_minutes = 1440;
  bool export_seconds = false;  // also per-second aggregates (kept for the backlog's length)

  /// Parses "NAME=KIND:URL" (KIND victoriametrics or influxdb), as --export takes it.
  static ExportTarget parse_export_target(const std::string& text);

  /// Throws std::runtime_error naming the file and the problem.
  void load_file(const std::string& path);
  /// Throws std::runtime_error when a value is out of range.
  void validate() const;
};

/// monitor-judger's settings: its flags, config keys, bounds, --help and the
/// table of docs/judger.md, from one list.
const SettingsTable<JudgerConfig>& judger_settings();

}  // namespace monitor::judger
