#include "alarm/records.hpp"

#include <cmath>

namespace monitor::alarm {
namespace {

namespace json = boost::json;

int64_t int_of(const json::object& o, std::string_view key, int64_t fallback = 0) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return fallback;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->as_double());
  return fallback;
}

std::string string_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

json::object rule_value(const Rule& rule, bool enabled) {
  return {{"text", rule.source}, {"enabled", enabled}, {"service", rule.service}};
}

std::optional<Rule> rule_from_value(const json::value& value, std::string& error) {
  const auto* o = value.if_object();
  const auto* text = o != nullptr ? o->if_contains("text") : nullptr;
  if (text == nullptr || !text->is_string()) {
    error = "no rule text";
    return std::nullopt;
  }
  auto parsed = parse_rule_file(text->as_string());
  if (parsed.error || parsed.file.rules.size() != 1) {
    error = parsed.error ? parsed.error->text() : "not exactly one rule";
    return std::nullopt;
  }
  Rule rule = std::move(parsed.file.rules[0]);
  const auto* enabled = o->if_contains("enabled");
  rule.enabled = enabled == nullptr || !enabled->is_bool() || enabled->as_bool();
  return rule;
}

json::object alarms_value(const RuleAlarms& r) {
  json::object series;
  for (const auto& [server, a] : r.alarms) {
    json::object s{{"state", state_name(a.state)}, {"streak", a.streak}, {"since", a.since},
                   {"fired_at", a.fired_at}, {"evaluated", a.evaluated}, {"seen", a.seen}, {"notifications", a.notifications},
                   {"last_notified", a.last_notified}, {"escalated", a.escalated}, {"acked_at", a.acked_at},
                   {"acked_by", a.acked_by}};
    if (a.value) s["value"] = *a.value;
    series[std::to_string(server)] = std::move(s);
  }
  return {{"evaluated", r.evaluated}, {"series", std::move(series)}};
}

RuleAlarms alarms_from_value(const json::value& value) {
  RuleAlarms r;
  const auto* o = value.if_object();
  if (o == nullptr) return r;
  r.evaluated = int_of(*o, "evaluated");
  const auto* series = o->if_contains("series");
  if (series == nullptr || !series->is_object()) return r;
  for (const auto& [key, v] : series->as_object()) {
    const auto* s = v.if_object();
    if (s == nullptr) continue;
    int64_t server = 0;
    try {
      server = std::stoll(std::string(key));
    } catch (...) {
      continue;
    }
    AlarmState a;
    a.state = parse_state(string_of(*s, "state")).value_or(State::kOk);
    a.streak = int_of(*s, "streak");
    a.since = int_of(*s, "since");
    a.fired_at = int_of(*s, "fired_at");
    a.evaluated = int_of(*s, "evaluated");
    a.seen = int_of(*s, "seen");
    a.notifications = int_of(*s, "notifications");
    a.last_notified = int_of(*s, "last_notified");
    const auto* esc = s->if_contains("escalated");
    a.escalated = esc != nullptr && esc->is_bool() && esc->as_bool();
    a.acked_at = int_of(*s, "acked_at");
    a.acked_by = string_of(*s, "acked_by");
    if (const auto* v2 = s->if_contains("value"); v2 != nullptr && v2->is_number()) a.value = v2->to_number<double>();
    r.alarms[server] = a;
  }
  return r;
}

bool Silence::matches(const Rule& r, int64_t series_server, int64_t now_s) const noexcept {
  if (now_s < start_s || now_s >= end_s) return false;
  if (!rule.empty() && rule != r.name) return false;
  if (!service.empty() && service != r.service) return false;
  if (!attr.empty() && attr != r.attr) return false;
  return server == -2 || server == series_server;
}

json::object silence_value(const Silence& s) {
  return {{"rule", s.rule}, {"service", s.service}, {"attr", s.attr}, {"server", s.server},
          {"start", s.start_s}, {"end", s.end_s}, {"comment", s.comment}, {"by", s.by}};
}

std::optional<Silence> silence_from_value(const std::string& id, const json::value& value) {
  const auto* o = value.if_object();
  if (o == nullptr) return std::nullopt;
  Silence s;
  s.id = id;
  s.rule = string_of(*o, "rule");
  s.service = string_of(*o, "service");
  s.attr = string_of(*o, "attr");
  s.server = int_of(*o, "server", -2);
  s.start_s = int_of(*o, "start");
  s.end_s = int_of(*o, "end");
  s.comment = string_of(*o, "comment");
  s.by = string_of(*o, "by");
  return s;
}

}  // namespace monitor::alarm
