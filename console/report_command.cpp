// The daily report (the seed's console mailed one): what fired, who reported
// most, and how the system itself is, over the last day. Read from the
// judgers' alarm history and stored minutes and from the registry; printed,
// or mailed through SMTP (deploy/systemd/monitor-report.timer runs it daily).
#include "console/report_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "alarm/records.hpp"
#include "console/alarm_commands.hpp"
#include "console/cluster_commands.hpp"
#include "console/console_context.hpp"
#include "query/judger_client.hpp"
#include "mail/smtp_mail.hpp"

namespace monitor::console {

namespace {

namespace json = boost::json;

struct RuleLine {
  int fired = 0, resolved = 0, failed = 0;
  bool firing_now = false;
};

struct Report {
  int64_t from = 0, to = 0;
  std::map<std::string, RuleLine> rules;
  std::vector<std::pair<std::string, int64_t>> top;  // service, reports; most first
  int64_t reports = 0;
  size_t services = 0;
  std::vector<PartState> parts;
  std::vector<std::string> unanswered;  // judgers whose figures are missing
  bool no_judger = false;                // none live: no history, no reports
};

Report gather(Console& console, int64_t from, int64_t to, size_t top_n) {
  Report r{from, to, {}, {}, 0, 0, part_states(console), {}};
  for (const auto& row : history_of(console, "", from, to)) {
    const auto& o = row.as_object();
    const std::string event(o.at("event").as_string());
    RuleLine& line = r.rules[std::string(o.at("rule").as_string())];
    if (event == "firing") ++line.fired;
    else if (event == "resolved" || event == "gone") ++line.resolved;  // gone: its server stopped for good
    else if (event == "notify_failed") ++line.failed;
  }
  for (const auto& e : console.check(console.registry().list(alarm::kAlarmsKind), "reading the alarms")) {
    for (const auto& [server, a] : alarm::alarms_from_value(e.value).alarms) {
      if (a.state == alarm::State::kFiring) r.rules[e.name].firing_now = true;
    }
  }
  // A service that moved has reports on two judgers: they add up.
  std::map<std::string, int64_t> by_service;
  const auto judgers = judger_queries(console);
  r.no_judger = judgers.empty();
  for (const auto& [name, address] : judgers) {
    auto reply = query::JudgerClient(address, std::chrono::seconds(60)).reports(from, to);
    boost::system::error_code ec;
    const json::value body = reply && reply->status == 200 ? json::parse(reply->body, ec) : json::value();
    const auto* services = !ec && body.is_object() ? body.as_object().if_contains("services") : nullptr;
    if (services == nullptr || !services->is_object()) {
      r.unanswered.push_back(name);
      continue;
    }
    for (const auto& [service, n] : services->as_object()) {
      if (n.is_int64()) by_service[std::string(service)] += n.as_int64();
    }
  }
  for (const auto& [service, n] : by_service) r.reports += n;
  r.services = by_service.size();
  r.top.assign(by_service.begin(), by_service.end());
  std::sort(r.top.begin(), r.top.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (r.top.size() > top_n) r.top.resize(top_n);
  return r;
}

size_t count_state(const Report& r, std::string_view state) {
  return static_cast<size_t>(std::count_if(r.parts.begin(), r.parts.end(), [&](const PartState& p) { return p.state == state; }));
}

int fired_total(const Report& r) {
  int n = 0;
  for (const auto& [rule, line] : r.rules) n += line.fired;
  return n;
}

std::string subject_of(const Report& r) {
  return fmt::format("[monitor] daily report {}: {} alarm(s) fired, {} part(s) gone", utc_text(r.to - 1, "%Y-%m-%d"),
                     fired_total(r), count_state(r, "gone"));
}

std::string text_of(const Report& r) {
  std::string out = fmt::format("monitor daily report, {} .. {} UTC\n\n", utc_text(r.from, "%Y-%m-%d %H:%M"),
                                utc_text(r.to, "%Y-%m-%d %H:%M"));
  if (r.no_judger) out += "NO JUDGER IS LIVE: the alarm history and the reports below are missing\n\n";
  out += fmt::format("ALARMS: {} fired\n", fired_total(r));
  if (r.rules.empty()) out += "  none\n";
  for (const auto& [rule, line] : r.rules) {
    out += fmt::format("  {:<40} fired {:>3}  resolved {:>3}{}{}\n", rule, line.fired, line.resolved,
                       line.firing_now ? "  FIRING NOW" : "",
                       line.failed > 0 ? fmt::format("  {} notification(s) failed", line.failed) : "");
  }
  out += fmt::format("\nTOP SERVICES BY REPORTS: {} report(s) from {} service(s)\n", r.reports, r.services);
  for (const auto& [service, n] : r.top) out += fmt::format("  {:<40} {:>14}\n", service, n);
  out += fmt::format("\nTHE SYSTEM: {} part(s) live, {} gone\n", count_state(r, "live"), count_state(r, "gone"));
  for (const auto& p : r.parts) {
    out += fmt::format("  {:<7} {:<24} {:<6} {}\n", p.role, p.name, p.state, p.health);
  }
  for (const auto& name : r.unanswered) out += fmt::format("  judger {} did not answer: its figures are missing\n", name);
  return out;
}

std::string html_of(const Report& r) {
  using mail::html_escape;
  std::string out = fmt::format("<h2>monitor daily report</h2><p>{} .. {} UTC</p>", utc_text(r.from, "%Y-%m-%d %H:%M"),
                                utc_text(r.to, "%Y-%m-%d %H:%M"));
  if (r.no_judger) out += "<p><b>No judger is live: the alarm history and the reports below are missing.</b></p>";
  out += fmt::format("<h3>Alarms: {} fired</h3><table border=\"1\" cellpadding=\"4\"><tr><th>rule</th><th>fired</th>"
                     "<th>resolved</th><th>now</th><th>failed notifications</th></tr>",
                     fired_total(r));
  for (const auto& [rule, line] : r.rules) {
    out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", html_escape(rule), line.fired,
                       line.resolved, line.firing_now ? "<b>firing</b>" : "", line.failed);
  }
  out += fmt::format("</table><h3>Top services by reports: {} from {} service(s)</h3><table border=\"1\" "
                     "cellpadding=\"4\"><tr><th>service</th><th>reports</th></tr>",
                     r.reports, r.services);
  for (const auto& [service, n] : r.top) out += fmt::format("<tr><td>{}</td><td>{}</td></tr>", html_escape(service), n);
  out += fmt::format("</table><h3>The system: {} part(s) live, {} gone</h3><table border=\"1\" cellpadding=\"4\">"
                     "<tr><th>role</th><th>name</th><th>state</th><th>health</th></tr>",
                     count_state(r, "live"), count_state(r, "gone"));
  for (const auto& p : r.parts) {
    out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", html_escape(p.role), html_escape(p.name),
                       p.state == "live" ? "live" : "<b>" + html_escape(p.state) + "</b>", html_escape(p.health));
  }
  out += "</table>";
  for (const auto& name : r.unanswered) out += fmt::format("<p>judger {} did not answer: its figures are missing</p>", html_escape(name));
  return out;
}

json::object json_of(const Report& r) {
  json::object rules;
  for (const auto& [rule, line] : r.rules) {
    rules[rule] = json::object{{"fired", line.fired}, {"resolved", line.resolved}, {"notifications_failed", line.failed},
                               {"firing_now", line.firing_now}};
  }
  json::array top, parts;
  for (const auto& [service, n] : r.top) top.push_back(json::object{{"service", service}, {"reports", n}});
  for (const auto& p : r.parts) parts.push_back(json::object{{"role", p.role}, {"name", p.name}, {"state", p.state}});
  return {{"from", r.from}, {"to", r.to}, {"alarms_fired", fired_total(r)}, {"rules", rules}, {"reports", r.reports},
          {"top_services", top}, {"parts", parts}, {"judgers_unanswered", json::value_from(r.unanswered)}, {"no_judger_live", r.no_judger}};
}

int report_daily(int argc, char** argv) {
  auto options = make_options("report daily", "The day's report: alarms fired, top services by reports, the system's "
                                              "own health. Printed, or mailed with --mail-to.");
  options.add_options()("since", "start: -24h, -1d, ... or Unix seconds", cxxopts::value<std::string>()->default_value("-24h"))
      ("to", "end: now or as --since", cxxopts::value<std::string>()->default_value("now"))
      ("top", "how many services to list", cxxopts::value<size_t>()->default_value("10"))
      ("mail-to", "mail it to this address (repeatable)", cxxopts::value<std::vector<std::string>>())
      ("smtp-url", "SMTP server", cxxopts::value<std::string>()->default_value("smtp://127.0.0.1:25"))
      ("mail-from", "sender address (default monitor@<host name>)", cxxopts::value<std::string>());
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const int64_t now = unix_now();
  const int64_t from = parse_time("--since", (*args)["since"].as<std::string>(), now);
  // The end is exclusive, and events are stamped in whole seconds: "now"
  // includes what happened in the current second (a notification that
  // failed just before the report was asked).
  const std::string to_text = (*args)["to"].as<std::string>();
  const int64_t to = parse_time("--to", to_text, now) + (to_text == "now" ? 1 : 0);
  if (from >= to) throw ConsoleError(kExitBadInput, "--since must be before --to");
  const Report report = gather(console, from, to, (*args)["top"].as<size_t>());
  if (!args->count("mail-to")) {
    if (console.json()) std::puts(json::serialize(json_of(report)).c_str());
    else std::fputs(text_of(report).c_str(), stdout);
    return 0;
  }
  std::string from_address;
  if (args->count("mail-from")) {
    from_address = (*args)["mail-from"].as<std::string>();
  } else {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    from_address = fmt::format("monitor@{}", host);
  }
  int failed = 0;
  for (const auto& to_address : (*args)["mail-to"].as<std::vector<std::string>>()) {
    std::string error;
    const mail::Mail m{from_address, to_address, subject_of(report), fmt::format("report-{}-{}", report.to, to_address),
                       text_of(report), html_of(report)};
    if (mail::send((*args)["smtp-url"].as<std::string>(), m, 30, error)) {
      std::printf("report mailed to %s\n", to_address.c_str());
    } else {
      std::fprintf(stderr, "monitorctl report: mailing %s through %s: %s\n", to_address.c_str(),
                   (*args)["smtp-url"].as<std::string>().c_str(), error.c_str());
      ++failed;
    }
  }
  return failed == 0 ? 0 : kExitUnreachable;
}

}  // namespace

int report_command(int argc, char** argv) { return dispatch_verbs("report", argc, argv, {{"daily", report_daily}}); }

}  // namespace monitor::console
