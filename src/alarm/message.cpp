#include "alarm/message.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "common/sparkline.hpp"
#include "mail/smtp_mail.hpp"

namespace monitor::alarm {
namespace {

namespace json = boost::json;
using mail::html_escape;

std::string number(std::optional<double> v) {
  if (!v) return "no data";
  return fmt::format("{:g}", *v);
}

std::string series_label(const MessageSeries& s) {
  if (s.server < 0) return "total";
  return s.host.empty() ? fmt::format("server {}", s.server) : fmt::format("server {} ({})", s.server, s.host);
}

// The chart of the series an hour around the minute, as a Grafana alert links
// to its panel. Names and op names are URL-safe by their grammar.
std::string chart_url(const Rule& rule, const MessageFacts& facts, const MessageSeries& s) {
  if (facts.dashboard_url.empty()) return {};
  return fmt::format("{}/#/chart?service={}&attr={}&op={}&servers={}&from={}&to={}", facts.dashboard_url, rule.service,
                     rule.attr, rule_op_name(rule.op), s.server < 0 ? std::string("total") : std::to_string(s.server),
                     (facts.minute - 30) * 60, (facts.minute + 31) * 60);
}

json::object series_json(const MessageFacts& facts, const MessageSeries& s, const std::string& chart) {
  json::array recent;
  const int64_t first = facts.minute - static_cast<int64_t>(s.recent.size()) + 1;
  for (size_t i = 0; i < s.recent.size(); ++i) {
    recent.push_back(json::object{{"minute", (first + static_cast<int64_t>(i)) * 60},
                                  {"value", s.recent[i] ? json::value(*s.recent[i]) : json::value(nullptr)}});
  }
  json::object item{{"server", s.server < 0 ? json::value(nullptr) : json::value(s.server)},
                    {"host", s.host.empty() ? json::value(nullptr) : json::value(s.host)},
                    {"value", s.value ? json::value(*s.value) : json::value(nullptr)},
                    {"recent", std::move(recent)}};
  if (!chart.empty()) item["chart_url"] = chart;
  if (s.alarm) {
    item["state"] = state_name(s.alarm->state);
    item["fired_at"] = s.alarm->fired_at * 60;
  }
  return item;
}

}  // namespace

Message render_message(const Rule& rule, const MessageFacts& facts) {
  const std::string kind(notice_name(facts.kind));
  std::string upper = kind;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  const std::string op = rule_op_name(rule.op);
  const std::string per = rule.per_server ? "server" : "total";
  const std::string query = fmt::format("monitorctl query --service {} --attr {} --op {}{} --from -1h", rule.service,
                                        rule.attr, op, rule.per_server ? " --server <N>" : "");
  Message m;
  m.subject = fmt::format("[{}] {}: {} series", upper, rule.name, facts.series.size());
  m.text = fmt::format("{} {} ({}): {}\n{}\n\n", upper, rule.name, severity_name(rule.severity),
                       rule.summary.empty() ? rule.when_text : rule.summary, rule.description);
  m.text += fmt::format("{} {} {} per {}, when {}\n\n", rule.service, rule.attr, op, per, rule.when_text);
  m.html = fmt::format("<h3>{} {} <small>({})</small></h3><p>{}</p><p>{}</p><p><code>{} {} {} per {}: when {}</code></p>"
                       "<table border=\"1\" cellpadding=\"3\"><tr><th>series</th><th>value</th><th>last {} minutes</th></tr>",
                       upper, html_escape(rule.name), severity_name(rule.severity), html_escape(rule.summary),
                       html_escape(rule.description), rule.service, rule.attr, op, per, html_escape(rule.when_text),
                       kMessageRecentMinutes);
  json::array alarms;
  for (const MessageSeries& s : facts.series) {
    const std::string label = series_label(s);
    const std::string chart = chart_url(rule, facts, s);
    std::string table;
    for (const auto& v : s.recent) table += fmt::format(" {}", v ? fmt::format("{:g}", *v) : "-");
    m.text += fmt::format("  {}: {} now   {}   last {} minutes:{}\n", label, number(s.value), sparkline(s.recent),
                          s.recent.size(), table);
    if (!chart.empty()) m.text += fmt::format("    chart: {}\n", chart);
    m.html += fmt::format("<tr><td>{}</td><td>{}</td><td>{} &nbsp; {}</td></tr>",
                          chart.empty() ? label : fmt::format("<a href=\"{}\">{}</a>", html_escape(chart), label),
                          number(s.value), sparkline(s.recent), table);
    alarms.push_back(series_json(facts, s, chart));
  }
  if (!facts.correction.empty()) {
    m.text += fmt::format("\nCorrected: {}.\n", facts.correction);
    m.html += fmt::format("<p><b>Corrected:</b> {}.</p>", html_escape(facts.correction));
  }
  if (!facts.partial.empty()) {
    m.text += fmt::format("\nPartial: the service moved during this minute, and it was {}.\n", facts.partial);
    m.html += fmt::format("<p><b>Partial:</b> the service moved during this minute, and it was {}.</p>",
                          html_escape(facts.partial));
  }
  m.text += fmt::format("\nMore: {}\n", query);
  m.html += fmt::format("</table><p>More: <code>{}</code></p>", html_escape(query));

  json::object labels;
  for (const auto& [k, v] : rule.labels) labels[k] = v;
  m.body = json::object{{"version", 1}, {"key", ""}, {"kind", kind}, {"rule", rule.name},
                        {"severity", severity_name(rule.severity)}, {"summary", rule.summary},
                        {"description", rule.description}, {"labels", std::move(labels)}, {"service", rule.service},
                        {"attr", rule.attr}, {"op", op}, {"per", per}, {"condition", rule.when_text},
                        {"minute", facts.minute * 60}, {"alarms", std::move(alarms)}, {"text", m.text},
                        {"query", query}};
  if (!facts.partial.empty()) m.body["partial"] = facts.partial;
  if (!facts.correction.empty()) m.body["correction"] = facts.correction;
  if (!rule.group.empty()) m.body["group"] = rule.group;
  if (!rule.from_template.empty()) m.body["template"] = rule.from_template;
  return m;
}

}  // namespace monitor::alarm
