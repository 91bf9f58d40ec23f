#include "judger/judger_config.hpp"

#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/json_fields.hpp"
#include "registry/registry.hpp"
#include "judger/minute_store.hpp"
#include "net/endpoint.hpp"
#include "net/tls_settings.hpp"

namespace monitor::judger {

const SettingsTable<JudgerConfig>& judger_settings() {
  using C = JudgerConfig;
  using Custom = SettingsTable<JudgerConfig>::Custom;
  static const SettingsTable<JudgerConfig> table = [] {
    SettingsTable<JudgerConfig> t;
    const int64_t retention_minutes = Retention{}.minute_s / 60;
    t.add("name", &C::name, "its registry entry `judgers/<name>`")
        .add("listen", &C::listen, "`host:port` for batches from proxies (and agents sending directly)")
        .add("query_listen", &C::query_listen, "`host:port` of the HTTP query API")
        .add("data_dir", &C::data_dir, "directory of the store",
             "`/var/lib/monitor/judger` as root, else `$XDG_STATE_HOME/monitor/judger` (or "
             "`~/.local/state/monitor/judger`)")
        .add("registry", &C::registry, "registry address (docs/registry.md)", "`file:` beside the data directory")
        .add_bounded("grace_s", &C::grace_s,
                     "seconds after a minute ends before it is final when a sender sends no watermark or went away",
                     0, 600)
        .flag("grace")
        .add_bounded("watermark_wait_s", &C::watermark_wait_s,
                     "seconds a live sender whose watermark lags may hold a minute", 1, 3600)
        .flag("watermark-wait")
        .add_bounded("late_window_s", &C::late_window_s, "seconds a final minute stays in memory for late data", 0,
                     86'400)
        .flag("late-window")
        .add_bounded("catch_up_s", &C::catch_up_s,
                     "after a start, at most this many seconds in which no minute is final until the senders that "
                     "fed this judger are back and caught up",
                     0, 3600)
        .flag("catch-up")
        .add_bounded("future_window_s", &C::future_window_s,
                     "seconds a record may be ahead of this judger's clock; further ahead, or older than the minute "
                     "retention, it is refused (`Reports.Future`, `Reports.TooLate`)",
                     0, 86'400)
        .flag("future-window")
        .add_bounded("idle_timeout_s", &C::idle_timeout_s, "a batch connection silent this long is closed", 1, 86'400)
        .add_bounded("max_connections", &C::max_connections,
                     "batch connections at once; more are closed at accept (`Connections.Refused`), their senders "
                     "retry",
                     1, 1'000'000)
        .add_bounded("max_query_connections", &C::max_query_connections,
                     "HTTP query connections at once; more are closed at accept (`Connections.Refused`)", 1, 100'000)
        .add_bounded("query_threads", &C::query_threads, "threads running store queries, off the ingest thread", 1, 64)
        .add_bounded("query_timeout_s", &C::query_timeout_s, "seconds a store query may run before it is stopped (503)",
                     1, 3600)
        .flag("query-timeout")
        .add_bounded("max_names", &C::max_names,
                     "(service, attr) names interned; a DICT name past it is refused (`Names.Refused`) and so are "
                     "records naming it (`Reports.NameRefused`)",
                     64, UINT32_MAX)
        .add("series_per_service", &C::series_per_service,
             "series (attr, server) of one service in one minute; a record opening one more is refused before it is "
             "stored (`Reports.OverLimit`); 0: no limit")
        .add_bounded("server_id", &C::server_id, "server id of its `Monitor.Judger` metrics", 0, INT64_MAX)
        .add("self_metrics", &C::self_metrics, "report `Monitor.Judger` through the local agent, if one runs")
        .add("placement", &C::placement,
             "take part in automatic placement (`monitorctl placement manual` turns it off for all)")
        .add("smtp_url", &C::smtp_url, "SMTP server for alarm mail (docs/rules.md)")
        .add("mail_from", &C::mail_from, "sender of alarm mail")
        .add("dashboard_url", &C::dashboard_url,
             "the dashboard's address (`http://host:port`): each alarm message links to its series' chart there")
        .add_bounded("notify_tries", &C::notify_tries,
                     "deliveries of a notification tried before it is recorded as failed", 1, 100)
        .add_bounded("notify_backoff_ms", &C::notify_backoff_ms,
                     "wait before the second try, doubling per try (at most 5 min)", 10, 300'000)
        .add_bounded("command_timeout_s", &C::command_timeout_s, "seconds a notification command may run", 1, 3600)
        .flag("command-timeout")
        .add_bounded("command_max_running", &C::command_max_running, "notification commands running at once", 1, 256)
        .add("export",
             Custom{[](const boost::json::value& list, C& config) {
                      if (!list.is_array()) throw std::runtime_error("\"export\" must be an array of {name, kind, url}");
                      config.export_targets.clear();
                      for (const auto& item : list.as_array()) {
                        if (!item.is_object()) {
                          throw std::runtime_error("\"export\" must be an array of {name, kind, url}");
                        }
                        static constexpr const char* kTargetKnown[] = {"name", "kind", "url"};
                        json_fields::check_known(item.as_object(), kTargetKnown);
                        std::string target_name, kind, url;
                        json_fields::read_string(item.as_object(), "name", target_name);
                        json_fields::read_string(item.as_object(), "kind", kind);
                        json_fields::read_string(item.as_object(), "url", url);
                        config.export_targets.push_back(
                            JudgerConfig::parse_export_target(target_name + "=" + kind + ":" + url));
                      }
                    },
                    Custom::Flag::kRepeated,
                    [](const std::vector<std::string>& texts, C& config) {
                      config.export_targets.clear();  // the flags replace the config file's list
                      for (const auto& text : texts) config.export_targets.push_back(JudgerConfig::parse_export_target(text));
                    }},
             "export finished minutes to a target: in the file `[{\"name\", \"kind\", \"url\"}]`, as a flag "
             "`NAME=KIND:URL` (repeatable); KIND `victoriametrics` or `influxdb` (docs/export.md)")
        .add_bounded("export_backlog_minutes", &C::export_backlog_minutes,
                     "minutes a target that was down still receives (at most the minute retention)", 1,
                     retention_minutes)
        .flag("export-backlog")
        .add("export_seconds", &C::export_seconds,
             "export each second's aggregates too (measurement `monitor_second`)");
    net::add_tls_settings(t, true);
    t.add("query_tokens", &C::query_tokens,
          "the query API answers only requests with `Authorization: Bearer <token>` of a user "
          "(`monitorctl user token`), each seeing what the user's roles see (docs/security.md)")
        .add("allow_anonymous_queries", &C::allow_anonymous_queries,
             "without query_tokens, serve the query API on an address other than loopback anyway")
        .add("query_token", &C::query_token,
             "this judger's token for other judgers' query API (minutes of a service that moved here); over "
             "HTTPS with tls_cert, the judger's certificate is its credential and no token is needed");
    net::add_https_settings(t, "the query API");
    t.add("log_level", &C::log_level, "trace, debug, info, warn, error");
    return t;
  }();
  return table;
}

void JudgerConfig::load_file(const std::string& path) { judger_settings().load_file(path, *this); }

ExportTarget JudgerConfig::parse_export_target(const std::string& text) {
  const size_t equals = text.find('=');
  const size_t colon = text.find(':', equals == std::string::npos ? 0 : equals);
  if (equals == std::string::npos || colon == std::string::npos) {
    throw std::runtime_error(fmt::format("export target \"{}\": expected NAME=KIND:URL", text));
  }
  ExportTarget target;
  target.name = text.substr(0, equals);
  const std::string kind = text.substr(equals + 1, colon - equals - 1);
  target.url = text.substr(colon + 1);
  if (!registry::is_valid_key(target.name)) {
    throw std::runtime_error(fmt::format("export target \"{}\": name must be 1-128 bytes of [A-Za-z0-9._-]", text));
  }
  if (kind == "victoriametrics") {
    target.kind = ExportTarget::Kind::kVictoriaMetrics;
  } else if (kind == "influxdb") {
    target.kind = ExportTarget::Kind::kInfluxDb;
  } else {
    throw std::runtime_error(
        fmt::format("export target \"{}\": kind must be victoriametrics or influxdb, not \"{}\"", text, kind));
  }
  if (!target.url.starts_with("http://") && !target.url.starts_with("https://")) {
    throw std::runtime_error(fmt::format("export target \"{}\": the URL must start with http:// or https://", text));
  }
  return target;
}

void JudgerConfig::validate() const {
  judger_settings().check_bounds(*this, JudgerConfig{});
  if (!registry::is_valid_key(name)) throw std::runtime_error("name must be 1-128 bytes of [A-Za-z0-9._-]");
  if (listen.rfind(':') == std::string::npos) throw std::runtime_error("listen must be host:port");
  if (query_listen.rfind(':') == std::string::npos) throw std::runtime_error("query_listen must be host:port");
  net::check_transport(net::tls_files(*this), allow_plaintext, "listen", listen);
  if (!query_tokens && !allow_anonymous_queries) {
    const auto endpoint = net::parse_endpoint(query_listen);
    if (endpoint && !endpoint->address().is_loopback()) {
      throw std::runtime_error(fmt::format(
          "query_listen {} is not a loopback address: set query_tokens (every query shows a user's token, "
          "docs/security.md), or allow_anonymous_queries to serve anyone who can reach it",
          query_listen));
    }
  }
  if (!dashboard_url.empty() && ((!dashboard_url.starts_with("http://") && !dashboard_url.starts_with("https://")) ||
                                 dashboard_url.find_first_of(" \t\r\n\"<>") != std::string::npos)) {
    throw std::runtime_error("dashboard_url must be an http:// or https:// address");
  }
  for (size_t i = 0; i < export_targets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (export_targets[i].name == export_targets[j].name) {
        throw std::runtime_error(fmt::format("export target name \"{}\" is used twice", export_targets[i].name));
      }
    }
  }
}

}  // namespace monitor::judger
