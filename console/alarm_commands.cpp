// Alarm rules, alarms and silences (docs/rules.md): rules and silences are
// registry entries; alarm states are what the evaluating judgers wrote there;
// the history is each judger's own, merged here.
#include "console/alarm_commands.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "alarm/admin.hpp"
#include "alarm/records.hpp"
#include "alarm/rule_template.hpp"
#include "alarm/replay.hpp"
#include "alarm/rule.hpp"
#include "registry/hosts.hpp"
#include "registry/placement.hpp"
#include "console/console_context.hpp"
#include "console/group_commands.hpp"
#include "query/judger_client.hpp"
#include "query/series_merge.hpp"

namespace monitor::console {

using query::merge_cells;
namespace {

// A registry that failed is exit 3 with what it said; the other outcomes are
// the caller's to word.
void changed_or_fail(Console& console, const alarm::ChangeOutcome& outcome, const std::string& doing) {
  if (outcome.status == alarm::ChangeOutcome::Status::kRegistryFailed) console.fail(outcome.error, doing);
}

namespace json = boost::json;

alarm::RuleFile parse_file_or_fail(const std::string& text, const std::string& where) {
  auto parsed = alarm::parse_rule_file(text);
  if (parsed.error) throw ConsoleError(kExitBadInput, fmt::format("{}, {}", where, parsed.error->text()));
  return std::move(parsed.file);
}

// The service, attr and op a rule names must exist.
void check_against_registry(Console& console, const alarm::Rule& rule) {
  auto service = console.check(console.registry().get("services", rule.service), "reading service " + rule.service);
  if (!service) {
    throw ConsoleError(kExitBadInput, fmt::format("rule {}: no service {} (monitorctl service add)", rule.name, rule.service));
  }
  const auto* obj = service->value.if_object();
  const auto* attrs = obj != nullptr ? obj->if_contains("attrs") : nullptr;
  if (attrs == nullptr || !attrs->is_object() || !attrs->as_object().contains(rule.attr)) {
    throw ConsoleError(kExitBadInput, fmt::format("rule {}: service {} has no attr {} (monitorctl attr add)", rule.name,
                                                  rule.service, rule.attr));
  }
}

std::vector<alarm::Rule> stored_rules(Console& console) {
  std::vector<alarm::Rule> out;
  for (const auto& e : console.check(console.registry().list(alarm::kRulesKind), "reading the rules")) {
    std::string error;
    if (auto r = alarm::rule_from_value(e.value, error)) out.push_back(std::move(*r));
    else std::fprintf(stderr, "rule %s does not parse: %s\n", e.name.c_str(), error.c_str());
  }
  return out;
}

alarm::Rule must_get_rule(Console& console, const std::string& name) {
  auto entry = console.check(console.registry().get(alarm::kRulesKind, name), "reading rule " + name);
  if (!entry) throw ConsoleError(kExitBadInput, fmt::format("no rule {} (monitorctl rule list)", name));
  std::string error;
  auto rule = alarm::rule_from_value(entry->value, error);
  if (!rule) throw ConsoleError(kExitBadInput, fmt::format("rule {} does not parse: {}", name, error));
  return std::move(*rule);
}

std::string time_text(int64_t s) { return s <= 0 ? "-" : utc_text(s); }

int rule_add(int argc, char** argv) {
  auto options = make_options("rule add", "Adds (or with --replace, changes) the rules of a file after checking them "
                                           "and running its test cases.");
  options.add_options()("file", "rule file (docs/rules.md); - for stdin", cxxopts::value<std::string>())
      ("replace", "replace rules of the same names");
  options.parse_positional({"file"});
  options.positional_help("FILE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string path = positional(*args, "file");
  const std::string text = path == "-" ? std::string(std::istreambuf_iterator<char>(std::cin), {}) : read_text(path);
  const auto file = parse_file_or_fail(text, path);
  if (file.rules.empty()) throw ConsoleError(kExitBadInput, path + " holds no rule");
  for (const auto& outcome : alarm::run_tests(file)) {
    if (!outcome.problems.empty()) {
      throw ConsoleError(kExitBadInput, fmt::format("{}, line {}: test \"{}\" fails: {}", path, outcome.line, outcome.name,
                                                    outcome.problems.front()));
    }
  }
  Console console(*args);
  for (const auto& rule : file.rules) check_against_registry(console, rule);
  const auto stored = alarm::store_rules(console.registry(), file.rules, args->count("replace") > 0);
  changed_or_fail(console, stored, "storing the rules");
  if (stored.status == alarm::ChangeOutcome::Status::kExists) {
    throw ConsoleError(kExitBadInput, fmt::format("rule {} exists (--replace changes it)", stored.name));
  }
  if (stored.status == alarm::ChangeOutcome::Status::kChangedMeanwhile) {
    throw ConsoleError(kExitBadInput, "a rule changed meanwhile; run it again");
  }
  std::vector<std::string> names;
  for (const auto& r : file.rules) names.push_back(r.name);
  console.print_done(fmt::format("{} rule(s) stored: {}", names.size(), fmt::join(names, ", ")));
  return 0;
}

int rule_list(int argc, char** argv) {
  auto options = make_options("rule list", "Lists the rules.");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : stored_rules(console)) {
    rows.push_back({r.name, r.enabled ? "enabled" : "disabled", std::string(alarm::severity_name(r.severity)), r.service,
                    r.attr, alarm::rule_op_name(r.op), r.per_server ? "server" : "total", r.when_text});
  }
  console.print_table({"rule", "state", "severity", "service", "attr", "op", "per", "when"}, rows);
  return 0;
}

int rule_show(int argc, char** argv) {
  auto options = make_options("rule show", "Prints a rule as stored.");
  options.add_options()("name", "rule", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("RULE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const auto rule = must_get_rule(console, positional(*args, "name"));
  if (console.json()) {
    console.print_object({{"rule", rule.name}, {"enabled", rule.enabled}, {"text", rule.source}});
  } else {
    std::printf("%s\n# %s\n", rule.source.c_str(), rule.enabled ? "enabled" : "disabled");
  }
  return 0;
}

int rule_rm(int argc, char** argv) {
  auto options = make_options("rule rm", "Removes a rule and its alarms' states.");
  options.add_options()("name", "rule", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("RULE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const std::string name = positional(*args, "name");
  const auto removed = alarm::remove_rule(console.registry(), name);
  changed_or_fail(console, removed, "removing rule " + name + " and its alarms");
  if (removed.status == alarm::ChangeOutcome::Status::kNotFound) throw ConsoleError(kExitBadInput, "no rule " + name);
  console.print_done(fmt::format("rule {} removed", name));
  return 0;
}

int rule_switch(int argc, char** argv, bool enable) {
  auto options = make_options(enable ? "rule enable" : "rule disable",
                              enable ? "Evaluates a rule again." : "Stops evaluating a rule (its alarms keep their state).");
  options.add_options()("name", "rule", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("RULE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const std::string name = positional(*args, "name");
  const auto switched = alarm::set_rule_enabled(console.registry(), name, enable);
  changed_or_fail(console, switched, "storing rule " + name);
  if (switched.status == alarm::ChangeOutcome::Status::kNotFound) throw ConsoleError(kExitBadInput, "no rule " + name);
  if (switched.status == alarm::ChangeOutcome::Status::kChangedMeanwhile) {
    throw ConsoleError(kExitUnreachable, "rule " + name + " kept changing; run it again");
  }
  console.print_done(fmt::format("rule {} {}", name, enable ? "enabled" : "disabled"));
  return 0;
}
int rule_enable(int argc, char** argv) { return rule_switch(argc, argv, true); }
int rule_disable(int argc, char** argv) { return rule_switch(argc, argv, false); }

int rule_check(int argc, char** argv) {
  auto options = make_options("rule check", "Checks a rule file offline and runs its test cases.");
  options.add_options()("file", "rule file", cxxopts::value<std::string>());
  options.parse_positional({"file"});
  options.positional_help("FILE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string path = positional(*args, "file");
  const std::string text = read_text(path);
  alarm::RuleFile file;
  std::vector<int> test_lines;  // of a template: the file's lines, not the resolved text's
  if (alarm::is_template_text(text)) {
    // A template standing alone; one that extends another is checked by `template add`, against the stored parent.
    auto parsed = alarm::parse_template(text);
    if (parsed.error) throw ConsoleError(kExitBadInput, fmt::format("{}, {}", path, parsed.error->text()));
    std::string error;
    auto resolved = alarm::resolve_template(
        *parsed.parsed, [](const std::string&) { return std::optional<alarm::RuleTemplate>(); }, error);
    if (!resolved) throw ConsoleError(kExitBadInput, fmt::format("{}: {} (rule check reads no registry)", path, error));
    file = std::move(resolved->file);
    test_lines = parsed.parsed->test_lines;
  } else {
    file = parse_file_or_fail(text, path);
  }
  int failed = 0;
  auto outcomes = alarm::run_tests(file);
  for (size_t i = 0; i < outcomes.size() && i < test_lines.size(); ++i) outcomes[i].line = test_lines[i];
  for (const auto& o : outcomes) {
    if (o.problems.empty()) {
      std::printf("ok    test \"%s\" (line %d)\n", o.name.c_str(), o.line);
      continue;
    }
    ++failed;
    std::printf("FAIL  test \"%s\" (line %d)\n", o.name.c_str(), o.line);
    for (const auto& p : o.problems) std::printf("        %s\n", p.c_str());
  }
  std::printf("%zu rule(s), %zu test(s), %d failed\n", file.rules.size(), outcomes.size(), failed);
  return failed == 0 ? 0 : kExitBadInput;
}

// A rule's series over [from, to) as the judgers that held its service store
// them: every server (and the total) -> minute -> value. A minute that two
// judgers hold (the service moved during it) is merged from their cells, as
// `monitorctl query` does, so it reads exactly. Also the newest finished minute.
struct StoredHistory {
  alarm::History history;
  int64_t last_minute_s = 0;
  std::vector<std::string> judgers, missing;
};

StoredHistory stored_history(Console& console, const alarm::Rule& rule, int64_t from_s, int64_t to_s) {
  StoredHistory out;
  const std::string op = alarm::rule_op_name(rule.op);
  const query::SeriesRef series{rule.service, rule.attr, op};
  auto get_json = [](const HoldingJudger& judger, query::JudgerClient::Answer r) {
    if (!r) throw ConsoleError(kExitUnreachable, fmt::format("judger {}: {}", judger.name, r.error().message()));
    if (r->status != 200) {
      throw ConsoleError(r->status == 400 || r->status == 413 ? kExitBadInput : kExitUnreachable,
                         fmt::format("judger {} answered {}: {}", judger.name, r->status, r->body));
    }
    boost::system::error_code ec;
    auto v = json::parse(r->body, ec);
    if (ec || !v.is_object()) throw ConsoleError(kExitUnreachable, fmt::format("judger {} sent what does not parse", judger.name));
    return v;
  };
  const auto judgers = holding_judgers(console, rule.service, from_s);
  // (server, minute) read from more than one judger, by server: the range to merge.
  std::map<int64_t, std::pair<int64_t, int64_t>> shared;
  for (const auto& judger : judgers) {
    if (judger.query.empty()) {
      std::fprintf(stderr, "judger %s held %s within the range and is not live: minutes it holds are missing\n",
                   judger.name.c_str(), rule.service.c_str());
      out.missing.push_back(judger.name);
      continue;
    }
    out.judgers.push_back(judger.name);
    const auto body = get_json(judger, query::JudgerClient(judger.query, std::chrono::seconds(60)).points(series, from_s, to_s));
    const auto* last = body.as_object().if_contains("last_minute");
    alarm::History held;
    size_t skipped = 0;
    if (last == nullptr || !last->is_int64() || !alarm::add_points_reply(body, held, skipped) || skipped > 0) {
      throw ConsoleError(kExitUnreachable, fmt::format("judger {} sent minutes that do not have the shape of /api/points "
                                                       "(docs/judger.md)", judger.name));
    }
    out.last_minute_s = std::max(out.last_minute_s, last->as_int64());
    for (const auto& [server, minutes] : held) {
      auto& into = out.history[server];
      for (const auto& [minute, value] : minutes) {
        if (into.emplace(minute, value).second) continue;
        auto [range, first] = shared.try_emplace(server, minute, minute);
        range->second.first = std::min(range->second.first, minute);
        range->second.second = std::max(range->second.second, minute);
      }
    }
  }
  for (const auto& [server, range] : shared) {
    std::vector<json::value> replies;
    for (const auto& judger : judgers) {
      if (judger.query.empty()) continue;
      replies.push_back(get_json(judger, query::JudgerClient(judger.query, std::chrono::seconds(60))
                                             .cells(series, server < 0 ? std::string("total") : std::to_string(server),
                                                    range.first * 60, (range.second + 1) * 60)));
    }
    std::string error;
    const auto merged = merge_cells(replies, op, 60, error);
    if (!merged) throw ConsoleError(kExitUnreachable, error);
    for (const auto& p : merged->at("points").as_array()) {
      out.history[server][p.as_array().at(0).to_number<int64_t>() / 60] = p.as_array().at(1).to_number<double>();
    }
  }
  return out;
}

int rule_test(int argc, char** argv) {
  auto options = make_options("rule test", "Replays stored minutes through a rule, stored or from --file: when it would "
                                           "have fired and resolved, and the notifications it would have sent.");
  options.add_options()("name", "rule (may be left out when --file holds one rule)", cxxopts::value<std::string>())
      ("file", "a rule file to take the rule from instead of the registry", cxxopts::value<std::string>())
      ("since", "how far back: 7d, 12h, 90m or Unix seconds", cxxopts::value<std::string>()->default_value("7d"))
      ("to", "until: now, -1h, ... or Unix seconds", cxxopts::value<std::string>()->default_value("now"));
  options.parse_positional({"name"});
  options.positional_help("[RULE]");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const std::string name = args->count("name") ? (*args)["name"].as<std::string>() : "";
  alarm::Rule rule;
  if (args->count("file")) {
    const std::string path = (*args)["file"].as<std::string>();
    const auto file = parse_file_or_fail(read_text(path), path);
    const auto it = std::find_if(file.rules.begin(), file.rules.end(), [&](const auto& r) { return r.name == name; });
    if (it != file.rules.end()) rule = *it;
    else if (name.empty() && file.rules.size() == 1) rule = file.rules.front();
    else throw ConsoleError(kExitBadInput, fmt::format("{} holds {} rule(s); name the one to test", path, file.rules.size()));
    check_against_registry(console, rule);
  } else {
    if (name.empty()) throw ConsoleError(kExitBadInput, "name a stored rule, or give --file");
    rule = must_get_rule(console, name);
  }
  const int64_t now = unix_now();
  std::string since = (*args)["since"].as<std::string>();
  if (!since.empty() && since.back() >= 'a' && since.back() <= 'z' && since[0] != '-') since = "-" + since;
  const int64_t from_s = parse_time("--since", since, now) / 60 * 60;
  const int64_t to_s = parse_time("--to", (*args)["to"].as<std::string>(), now) / 60 * 60;
  if (from_s >= to_s) throw ConsoleError(kExitBadInput, "--since must be before --to");
  // The windows of the first minutes reach back `span` minutes before it.
  StoredHistory stored = stored_history(console, rule, from_s - rule.span() * 60, to_s);
  if (!rule.group.empty()) {
    // The group's servers as it stands now (the judger resolves it minute by minute).
    std::vector<int64_t> servers;
    for (const auto& [server, minutes] : stored.history) {
      if (server >= 0) servers.push_back(server);
    }
    const auto members = group_servers(console, rule.group, servers);
    if (!members) throw ConsoleError(kExitBadInput, fmt::format("rule {} watches group {}, which is not stored", rule.name, rule.group));
    std::erase_if(stored.history, [&](const auto& series) {
      return series.first >= 0 && std::find(members->begin(), members->end(), series.first) == members->end();
    });
  }
  // Minutes after the newest finished one are not final: a replay through
  // them would see every series stop.
  const int64_t last = std::min(to_s / 60 - 1, stored.last_minute_s / 60);
  if (last < from_s / 60) {
    throw ConsoleError(kExitBadInput, fmt::format("no finished minute of {} is stored from {} on (judgers {})", rule.service,
                                                  time_text(from_s), fmt::join(stored.judgers, ", ")));
  }
  const auto result = alarm::replay(rule, stored.history, from_s / 60, last);
  std::map<std::string, int> sent;
  for (const auto& n : result.notices) ++sent[std::string(alarm::notice_name(n.kind))];
  int fired = 0, resolved = 0;
  std::map<int64_t, bool> firing_at_end;
  json::array transitions;
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : result.transitions) {
    const bool fires = t.kind == alarm::EventKind::kFiring;
    (fires ? fired : resolved) += 1;
    firing_at_end[t.server] = fires;
    const std::string series_name = t.server < 0 ? "total" : fmt::format("server {}", t.server);
    const std::string value = t.value ? fmt::format("{:g}", *t.value) : "no data";
    rows.push_back({time_text(t.minute * 60), series_name, std::string(alarm::event_name(t.kind)), value});
    transitions.push_back(json::object{{"minute", t.minute * 60},
                                       {"server", t.server < 0 ? json::value("total") : json::value(t.server)},
                                       {"event", alarm::event_name(t.kind)},
                                       {"value", t.value ? json::value(*t.value) : json::value(nullptr)}});
  }
  int still_firing = 0;
  for (const auto& [server, firing] : firing_at_end) still_firing += firing ? 1 : 0;
  size_t series_count = 0;
  for (const auto& [server, minutes] : stored.history) series_count += rule.per_server == (server >= 0) ? 1 : 0;
  if (console.json()) {
    json::object notifications;
    for (const auto& [kind, n] : sent) notifications[kind] = n;
    std::puts(json::serialize(json::object{{"rule", rule.name}, {"from", from_s}, {"to", (last + 1) * 60},
                                           {"minutes", result.minutes}, {"series", series_count},
                                           {"transitions", transitions}, {"fired", fired}, {"resolved", resolved},
                                           {"firing_at_end", still_firing}, {"notifications", notifications},
                                           {"notifications_total", result.notices.size()},
                                           {"judgers", json::value_from(stored.judgers)},
                                           {"missing", json::value_from(stored.missing)}})
                  .c_str());
    return 0;
  }
  std::printf("rule %s: %s, when %s\n", rule.name.c_str(), rule.per_server ? "per server" : "total", rule.when_text.c_str());
  std::printf("replayed %lld minute(s) of %zu series, %s .. %s, from judger(s) %s\n\n",
              static_cast<long long>(result.minutes), series_count, time_text(from_s).c_str(),
              time_text((last + 1) * 60).c_str(), fmt::format("{}", fmt::join(stored.judgers, ", ")).c_str());
  if (rows.empty()) std::printf("it would not have fired\n\n");
  else {
    console.print_table({"minute", "series", "event", "value"}, rows);
    std::printf("\n");
  }
  std::vector<std::string> parts;
  for (const auto& [kind, n] : sent) parts.push_back(fmt::format("{} {}", n, kind));
  std::printf("fired %d time(s), resolved %d, %d still firing at the end; would have sent %zu notification(s)%s\n", fired,
              resolved, still_firing, result.notices.size(),
              parts.empty() ? "" : fmt::format(" ({})", fmt::join(parts, ", ")).c_str());
  return 0;
}

}  // namespace

// The judgers' query addresses, live ones first.
std::vector<std::pair<std::string, std::string>> judger_queries(Console& console) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& j : console.check(registry::read_judgers(console.registry()), "reading the judgers")) {
    if (j.live && !j.query.empty()) out.emplace_back(j.name, j.query);
  }
  return out;
}

json::array history_of(Console& console, const std::string& rule, int64_t from, int64_t to) {
  std::vector<json::object> rows;
  for (const auto& [name, address] : judger_queries(console)) {
    auto r = query::JudgerClient(address, std::chrono::seconds(5)).alarm_history(from, to, rule);
    if (!r || r->status != 200) {
      std::fprintf(stderr, "judger %s did not answer; its history is missing here\n", name.c_str());
      continue;
    }
    boost::system::error_code ec;
    const auto v = json::parse(r->body, ec);
    const auto* h = !ec && v.is_object() ? v.as_object().if_contains("history") : nullptr;
    if (h == nullptr || !h->is_array()) continue;
    for (const auto& row : h->as_array()) {
      if (!row.is_object()) continue;
      json::object o = row.as_object();
      o["judger"] = name;
      rows.push_back(std::move(o));
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const json::object& a, const json::object& b) {
    return a.at("time").to_number<int64_t>() > b.at("time").to_number<int64_t>();
  });
  json::array out;
  for (auto& r : rows) out.push_back(std::move(r));
  return out;
}

namespace {

int alarm_list(int argc, char** argv) {
  auto options = make_options("alarm list", "Lists alarms that are not ok: pending, firing, recently resolved.");
  options.add_options()("all", "also alarms that are ok");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  // The host beside each server id, from its agent's entry (none if it registered none).
  std::map<int64_t, std::string> host_of;
  if (const auto hosts = registry::read_hosts(console.registry())) {
    for (const auto& h : *hosts) {
      if (h.live && h.server_id >= 0) host_of.emplace(h.server_id, h.host);
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : console.check(console.registry().list(alarm::kAlarmsKind), "reading the alarms")) {
    const auto r = alarm::alarms_from_value(e.value);
    for (const auto& [server, a] : r.alarms) {
      if (a.state == alarm::State::kOk && !args->count("all")) continue;
      const auto host = host_of.find(server);
      rows.push_back({e.name, server < 0 ? "total" : std::to_string(server), host == host_of.end() ? "-" : host->second,
                      std::string(alarm::state_name(a.state)), time_text(a.since * 60),
                      a.value ? fmt::format("{:g}", *a.value) : "-", std::to_string(a.notifications),
                      a.acked_at != 0 ? a.acked_by : "-"});
    }
  }
  console.print_table({"rule", "series", "host", "state", "since", "value", "notifications", "acked_by"}, rows);
  return 0;
}

int alarm_show(int argc, char** argv) {
  auto options = make_options("alarm show", "Shows a rule's alarms, its recent history and failed notifications.");
  options.add_options()("name", "rule", cxxopts::value<std::string>())
      ("since", "history since, in hours", cxxopts::value<int>()->default_value("24"));
  options.parse_positional({"name"});
  options.positional_help("RULE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const std::string name = positional(*args, "name");
  const auto rule = must_get_rule(console, name);
  auto entry = console.check(console.registry().get(alarm::kAlarmsKind, name), "reading the alarms of " + name);
  const auto state = entry ? alarm::alarms_from_value(entry->value) : alarm::RuleAlarms{};
  json::array alarms;
  for (const auto& [server, a] : state.alarms) {
    alarms.push_back(json::object{{"series", server < 0 ? "total" : std::to_string(server)},
                                  {"state", alarm::state_name(a.state)}, {"since", time_text(a.since * 60)},
                                  {"value", a.value ? json::value(*a.value) : json::value(nullptr)},
                                  {"notifications", a.notifications}, {"acked_by", a.acked_by}});
  }
  const int64_t now = unix_now();
  const auto history = history_of(console, name, now - int64_t{args->operator[]("since").as<int>()} * 3600, now + 1);
  json::array failures;
  for (const auto& h : history) {
    if (h.as_object().at("event").as_string() == "notify_failed") failures.push_back(h);
  }
  if (console.json()) {
    console.print_object({{"rule", name}, {"enabled", rule.enabled}, {"when", rule.when_text},
                          {"evaluated_through", state.evaluated * 60}, {"alarms", alarms}, {"failed_notifications", failures},
                          {"history", history}});
    return 0;
  }
  std::printf("rule: %s (%s)\nwhen: %s\nevaluated through: %s\n\nalarms:\n", name.c_str(),
              rule.enabled ? "enabled" : "disabled", rule.when_text.c_str(), time_text(state.evaluated * 60).c_str());
  for (const auto& a : alarms) std::printf("  %s\n", json::serialize(a).c_str());
  std::printf("\nfailed notifications: %zu\n", failures.size());
  for (const auto& f : failures) std::printf("  %s  %s\n", time_text(f.as_object().at("time").to_number<int64_t>()).c_str(),
                                             std::string(f.as_object().at("detail").as_string()).c_str());
  std::printf("\nhistory:\n");
  for (const auto& h : history) {
    const auto& o = h.as_object();
    const int64_t server = o.at("server").to_number<int64_t>();
    std::printf("  %s  %-14s %-8s %s\n", time_text(o.at("time").to_number<int64_t>()).c_str(),
                std::string(o.at("event").as_string()).c_str(), server < 0 ? "" : std::to_string(server).c_str(),
                std::string(o.at("detail").as_string()).c_str());
  }
  return 0;
}

int alarm_ack(int argc, char** argv) {
  auto options = make_options("alarm ack", "Acknowledges a rule's firing alarms: no repeats, no escalation.");
  options.add_options()("name", "rule", cxxopts::value<std::string>())
      ("server", "only this server's alarm: its id, its host name, or total", cxxopts::value<std::string>())
      ("by", "who acknowledges (default: the user, or $USER)", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("RULE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const std::string name = positional(*args, "name");
  std::optional<int64_t> only;
  if (args->count("server")) {
    const std::string s = (*args)["server"].as<std::string>();
    only = s == "total" ? -1 : server_of(console, "--server", s);
  }
  const char* env_user = std::getenv("USER");
  const std::string by = args->count("by") ? (*args)["by"].as<std::string>()
                         : !console.user().empty() ? console.user() : env_user != nullptr ? env_user : "someone";
  const auto outcome = alarm::acknowledge(console.registry(), name, only, by, unix_now() / 60);
  using Status = alarm::AckOutcome::Status;
  if (outcome.status == Status::kNoAlarms) throw ConsoleError(kExitBadInput, fmt::format("rule {} has no alarms", name));
  if (outcome.status == Status::kNothingToAcknowledge) {
    throw ConsoleError(kExitBadInput, fmt::format("rule {} has no unacknowledged firing alarm", name));
  }
  if (outcome.status == Status::kRegistryFailed) console.fail(outcome.error, "acknowledging");
  if (outcome.status == Status::kKeptChanging) {
    throw ConsoleError(kExitUnreachable, fmt::format("acknowledging: the alarms of {} kept changing; try again", name));
  }
  const int acked = outcome.acknowledged;
  console.print_done(fmt::format("{} alarm(s) of {} acknowledged by {}", acked, name, by));
  return 0;
}

int alarm_history(int argc, char** argv) {
  auto options = make_options("alarm history", "The alarm history of every live judger, newest first.");
  options.add_options()("rule", "only this rule", cxxopts::value<std::string>())
      ("since", "hours back", cxxopts::value<int>()->default_value("24"));
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const int64_t now = unix_now();
  const auto history = history_of(console, args->count("rule") ? (*args)["rule"].as<std::string>() : "",
                                  now - int64_t{(*args)["since"].as<int>()} * 3600, now + 1);
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : history) {
    const auto& o = h.as_object();
    const int64_t server = o.at("server").to_number<int64_t>();
    rows.push_back({time_text(o.at("time").to_number<int64_t>()), std::string(o.at("rule").as_string()),
                    server < 0 ? "-" : std::to_string(server), std::string(o.at("event").as_string()),
                    std::string(o.at("detail").as_string()), std::string(o.at("judger").as_string())});
  }
  console.print_table({"time", "rule", "server", "event", "detail", "judger"}, rows);
  return 0;
}

int silence_add(int argc, char** argv) {
  auto options = make_options("silence add", "Silences notifications of matching alarms from --start until --end.");
  options.add_options()("rule", "match this rule", cxxopts::value<std::string>())
      ("service", "match this service", cxxopts::value<std::string>())
      ("attr", "match this attr", cxxopts::value<std::string>())
      ("server", "match this server: its id or its host name", cxxopts::value<std::string>())
      ("start", "from (now, +1h, Unix seconds)", cxxopts::value<std::string>()->default_value("now"))
      ("end", "until (+2h, Unix seconds)", cxxopts::value<std::string>()->default_value("+1h"))
      ("comment", "why", cxxopts::value<std::string>()->default_value(""));
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  alarm::Silence s;
  if (args->count("rule")) s.rule = (*args)["rule"].as<std::string>();
  if (args->count("service")) s.service = (*args)["service"].as<std::string>();
  if (args->count("attr")) s.attr = (*args)["attr"].as<std::string>();
  std::unique_ptr<Console> hosts_console;  // only to read a host name
  if (args->count("server")) {
    hosts_console = std::make_unique<Console>(*args);
    s.server = server_of(*hosts_console, "--server", (*args)["server"].as<std::string>());
  }
  if (s.rule.empty() && s.service.empty() && s.attr.empty() && s.server == -2) {
    throw ConsoleError(kExitBadInput, "a silence matches at least one of --rule, --service, --attr, --server");
  }
  if (!s.service.empty()) check_name("service", s.service);
  if (!s.attr.empty()) check_name("attr", s.attr);
  const int64_t now = unix_now();
  s.start_s = parse_time("--start", (*args)["start"].as<std::string>(), now, true);
  s.end_s = parse_time("--end", (*args)["end"].as<std::string>(), now, true);
  if (s.end_s <= s.start_s) throw ConsoleError(kExitBadInput, "--end must be after --start");
  s.comment = (*args)["comment"].as<std::string>();
  Console console(*args);
  // A silence of a rule nobody defined matches nothing, while its author
  // believes the alarm silenced: a typo must be an error, not a no-op.
  if (!s.rule.empty()) must_get_rule(console, s.rule);
  const char* env_user = std::getenv("USER");
  s.by = !console.user().empty() ? console.user() : env_user != nullptr ? env_user : "";
  const auto added = alarm::add_silence(console.registry(), s,
                                       std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch()).count());
  changed_or_fail(console, added, "storing the silence");
  if (added.status == alarm::ChangeOutcome::Status::kExists) {
    throw ConsoleError(kExitBadInput, "a silence with this id exists; try again");
  }
  console.print_done(fmt::format("silence {} until {}", s.id, time_text(s.end_s)), {{"id", s.id}});
  return 0;
}

int silence_list(int argc, char** argv) {
  auto options = make_options("silence list", "Lists silences, expired ones too.");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const int64_t now = unix_now();
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : console.check(console.registry().list(alarm::kSilencesKind), "reading the silences")) {
    const auto s = alarm::silence_from_value(e.name, e.value);
    if (!s) continue;
    rows.push_back({s->id, s->rule.empty() ? "*" : s->rule, s->service.empty() ? "*" : s->service,
                    s->attr.empty() ? "*" : s->attr, s->server == -2 ? "*" : std::to_string(s->server),
                    time_text(s->start_s), time_text(s->end_s),
                    now >= s->end_s ? "expired" : now < s->start_s ? "waiting" : "active", s->comment});
  }
  console.print_table({"id", "rule", "service", "attr", "server", "start", "end", "state", "comment"}, rows);
  return 0;
}

int silence_rm(int argc, char** argv) {
  auto options = make_options("silence rm", "Removes a silence.");
  options.add_options()("id", "silence id", cxxopts::value<std::string>());
  options.parse_positional({"id"});
  options.positional_help("ID");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string id = positional(*args, "id");
  if (!registry::is_valid_key(id)) throw ConsoleError(kExitBadInput, "not a silence id: " + id);
  Console console(*args);
  const auto removed = alarm::remove_silence(console.registry(), id);
  changed_or_fail(console, removed, "removing silence " + id);
  if (removed.status == alarm::ChangeOutcome::Status::kNotFound) throw ConsoleError(kExitBadInput, "no silence " + id);
  console.print_done("silence " + id + " removed");
  return 0;
}

}  // namespace

int rule_command(int argc, char** argv) {
  return dispatch_verbs("rule", argc, argv,
                        {{"add", rule_add}, {"list", rule_list}, {"show", rule_show}, {"rm", rule_rm},
                         {"enable", rule_enable}, {"disable", rule_disable}, {"check", rule_check}, {"test", rule_test}});
}

int alarm_command(int argc, char** argv) {
  return dispatch_verbs("alarm", argc, argv,
                        {{"list", alarm_list}, {"show", alarm_show}, {"ack", alarm_ack}, {"history", alarm_history}});
}

int silence_command(int argc, char** argv) {
  return dispatch_verbs("silence", argc, argv, {{"add", silence_add}, {"list", silence_list}, {"rm", silence_rm}});
}

}  // namespace monitor::console
