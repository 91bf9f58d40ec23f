#include "judger/judger_config.hpp"

#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/json_fields.hpp"
#include "registry/registry.hpp"
#include "judger/minute_store.hpp"

namespace monitor::judger {

void JudgerConfig::load_file(const std::string& path) {
  const boost::json::object obj = json_fields::read_json_object(path);
  static constexpr const char* kKnown[] = {"name",    "listen",        "query_listen",   "data_dir", "registry",
                                           "grace_s", "watermark_wait_s", "late_window_s", "catch_up_s", "future_window_s", "idle_timeout_s", "server_id",
                                           "self_metrics", "log_level", "max_connections", "max_query_connections",
                                           "query_threads", "query_timeout_s",
                                           "max_names", "series_per_service", "placement", "smtp_url", "mail_from", "dashboard_url",
                                           "notify_tries", "notify_backoff_ms", "command_timeout_s", "command_max_running",
                                           "export", "export_backlog_minutes", "export_seconds"};
  try {
    using namespace json_fields;
    check_known(obj, kKnown);
    read_string(obj, "name", name);
    read_string(obj, "listen", listen);
    read_string(obj, "query_listen", query_listen);
    read_string(obj, "data_dir", data_dir);
    read_string(obj, "registry", registry);
    read_int(obj, "grace_s", grace_s);
    read_int(obj, "watermark_wait_s", watermark_wait_s);
    read_int(obj, "late_window_s", late_window_s);
    read_int(obj, "catch_up_s", catch_up_s);
    read_int(obj, "future_window_s", future_window_s);
    read_int(obj, "idle_timeout_s", idle_timeout_s);
    read_int(obj, "server_id", server_id);
    read_bool(obj, "self_metrics", self_metrics);
    read_string(obj, "log_level", log_level);
    read_int(obj, "max_connections", max_connections);
    read_int(obj, "max_query_connections", max_query_connections);
    read_int(obj, "query_threads", query_threads);
    read_int(obj, "query_timeout_s", query_timeout_s);
    read_int(obj, "max_names", max_names);
    read_int(obj, "series_per_service", series_per_service);
    read_bool(obj, "placement", placement);
    read_string(obj, "smtp_url", smtp_url);
    read_string(obj, "mail_from", mail_from);
    read_string(obj, "dashboard_url", dashboard_url);
    read_int(obj, "notify_tries", notify_tries);
    read_int(obj, "notify_backoff_ms", notify_backoff_ms);
    read_int(obj, "command_timeout_s", command_timeout_s);
    read_int(obj, "command_max_running", command_max_running);
    read_int(obj, "export_backlog_minutes", export_backlog_minutes);
    read_bool(obj, "export_seconds", export_seconds);
    if (const auto* list = obj.if_contains("export")) {
      if (!list->is_array()) throw std::runtime_error("\"export\" must be an array of {name, kind, url}");
      for (const auto& item : list->as_array()) {
        if (!item.is_object()) throw std::runtime_error("\"export\" must be an array of {name, kind, url}");
        static constexpr const char* kTargetKnown[] = {"name", "kind", "url"};
        check_known(item.as_object(), kTargetKnown);
        std::string target_name, kind, url;
        read_string(item.as_object(), "name", target_name);
        read_string(item.as_object(), "kind", kind);
        read_string(item.as_object(), "url", url);
        export_targets.push_back(parse_export_target(target_name + "=" + kind + ":" + url));
      }
    }
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("config {}: {}", path, e.what()));
  }
}

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
  if (!registry::is_valid_key(name)) throw std::runtime_error("name must be 1-128 bytes of [A-Za-z0-9._-]");
  if (listen.rfind(':') == std::string::npos) throw std::runtime_error("listen must be host:port");
  if (query_listen.rfind(':') == std::string::npos) throw std::runtime_error("query_listen must be host:port");
  if (!dashboard_url.empty() && ((!dashboard_url.starts_with("http://") && !dashboard_url.starts_with("https://")) ||
                                 dashboard_url.find_first_of(" \t\r\n\"<>") != std::string::npos)) {
    throw std::runtime_error("dashboard_url must be an http:// or https:// address");
  }
  if (grace_s < 0 || grace_s > 600) throw std::runtime_error("grace_s must be in [0, 600]");
  if (watermark_wait_s < 1 || watermark_wait_s > 3600) throw std::runtime_error("watermark_wait_s must be in [1, 3600]");
  if (late_window_s < 0 || late_window_s > 86400) throw std::runtime_error("late_window_s must be in [0, 86400]");
  if (catch_up_s < 0 || catch_up_s > 3600) throw std::runtime_error("catch_up_s must be in [0, 3600]");
  if (future_window_s < 0 || future_window_s > 86400) throw std::runtime_error("future_window_s must be in [0, 86400]");
  if (idle_timeout_s < 1) throw std::runtime_error("idle_timeout_s must be >= 1");
  if (server_id < 0) throw std::runtime_error("server_id must be >= 0");
  if (max_connections < 1 || max_query_connections < 1) {
    throw std::runtime_error("max_connections and max_query_connections must be >= 1");
  }
  if (query_threads < 1 || query_threads > 64) throw std::runtime_error("query_threads must be in [1, 64]");
  if (query_timeout_s < 1 || query_timeout_s > 3600) throw std::runtime_error("query_timeout_s must be in [1, 3600]");
  if (max_names < 64) throw std::runtime_error("max_names must be >= 64");
  if (notify_tries < 1 || notify_tries > 100) throw std::runtime_error("notify_tries must be in [1, 100]");
  if (notify_backoff_ms < 10 || notify_backoff_ms > 300000) throw std::runtime_error("notify_backoff_ms must be in [10, 300000]");
  if (export_backlog_minutes < 1 || export_backlog_minutes > Retention{}.minute_s / 60) {
    throw std::runtime_error(fmt::format("export_backlog_minutes must be in [1, {}] (the minute retention)",
                                         Retention{}.minute_s / 60));
  }
  for (size_t i = 0; i < export_targets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (export_targets[i].name == export_targets[j].name) {
        throw std::runtime_error(fmt::format("export target name \"{}\" is used twice", export_targets[i].name));
      }
    }
  }
  if (command_timeout_s < 1 || command_max_running < 1) throw std::runtime_error("command_timeout_s and command_max_running must be >= 1");
}

}  // namespace monitor::judger
