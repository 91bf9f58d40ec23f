#include "judger/alarm_engine.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "alarm/message.hpp"
#include "alarm/replay.hpp"
#include "common/clock.hpp"
#include "common/hash.hpp"
#include "registry/placement.hpp"
#include "query/judger_client.hpp"
#include "query/series_merge.hpp"

namespace monitor::judger {
namespace {

namespace json = boost::json;
using alarm::Notice;

constexpr int64_t kCatchUpMinutes = 60;  // after a long stop, only the last hour is evaluated
constexpr int64_t kOnTimeJudgement_s = 60;  // a minute judged later than this after its end is caught up
// How long a minute split by a move waits for the judger it moved from to
// have its part final (that judger restarting, or catching up).
constexpr auto kSplitMinuteWait = std::chrono::seconds(30);

std::string number(std::optional<double> v) {
  if (!v) return "no data";
  return fmt::format("{:g}", *v);
}

// The series an alarm is of, for the log: "the total" or "server 7".
std::string series_name(int64_t server) {
  return server < 0 ? std::string("the total") : fmt::format("server {}", server);
}

}  // namespace

AlarmEngine::AlarmEngine(registry::Registry& registry, std::string self, Notifier& notifier, std::string dashboard_url)
    : registry_(registry), self_(std::move(self)), notifier_(notifier), dashboard_url_(std::move(dashboard_url)) {
  while (dashboard_url_.ends_with('/')) dashboard_url_.pop_back();
}

AlarmEngine::~AlarmEngine() {
  watch_.reset();
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void AlarmEngine::load_rules() {
  for (const char* kind : {"rules", "assignments", "silences", "groups", "hosts"}) {
    if (auto entries = registry_.list(kind)) on_change(kind, *entries);
    else spdlog::warn("alarms: reading {} from the registry: {}; the watch reads them when it can", kind, entries.error().message());
  }
  watch_ = registry_.watch({"rules", "assignments", "silences", "groups", "hosts"},
                           [this](const std::string& kind, const std::vector<registry::Entry>& entries) {
                             on_change(kind, entries);
                           });
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

void AlarmEngine::on_change(const std::string& kind, const std::vector<registry::Entry>& entries) {
  std::lock_guard lock(mutex_);
  if (kind == "rules") {
    rules_.clear();
    rule_versions_.clear();
    figures_.bad_rules = 0;
    for (const auto& e : entries) {
      std::string error;
      auto rule = alarm::rule_from_value(e.value, error);
      if (!rule) {
        ++figures_.bad_rules;
        spdlog::warn("alarms: rule {} in the registry does not parse, skipped: {}", e.name, error);
        continue;
      }
      rule_versions_[rule->name] = e.version;
      rules_.emplace(rule->name, std::move(*rule));
    }
  } else if (kind == "assignments") {
    assignments_.clear();
    for (const auto& e : entries) assignments_[e.name] = e.value;
  } else if (kind == "silences") {
    silences_.clear();
    for (const auto& e : entries) {
      if (auto s = alarm::silence_from_value(e.name, e.value)) silences_.push_back(std::move(*s));
    }
  } else if (kind == registry::kGroupsKind || kind == registry::kHostsKind) {
    (kind == registry::kGroupsKind ? groups_ : hosts_) = entries;
    // Which servers each group holds: a host joins or leaves by its name.
    members_.clear();
    const registry::HostServers hosts = registry::host_servers(hosts_, {});
    host_of_ = registry::host_names_by_server(hosts);
    for (const auto& e : groups_) {
      if (auto group = registry::group_from_value(e.name, e.value)) {
        members_.emplace(e.name, registry::GroupMembers(*group, hosts));
      } else {
        spdlog::warn("alarms: group {} in the registry does not have a group's shape: it holds no server", e.name);
      }
    }
  }
  // What the rules of owned services read: which services, and how many minutes of each series.
  wanted_services_.clear();
  spans_.clear();
  for (const auto& [name, rule] : rules_) {
    const auto assignment = assignments_.find(rule.service);
    if (assignment == assignments_.end() || registry::assigned_judger(assignment->second) != self_) continue;
    wanted_services_.insert(rule.service);
    int64_t& span = spans_[{rule.service, rule.attr, rule.op}];
    span = std::max(span, rule.span() + 1);
  }
  wake_.notify_all();
}

std::vector<std::tuple<std::string, std::string, uint32_t, int64_t>> AlarmEngine::wanted_series() const {
  std::lock_guard lock(mutex_);
  std::vector<std::tuple<std::string, std::string, uint32_t, int64_t>> out;
  for (const auto& [key, span] : spans_) out.emplace_back(key.service, key.attr, key.op, span);
  return out;
}

void AlarmEngine::minute_stored(const std::vector<MinutePoint>& points) {
  std::vector<MinutePoint> wanted;
  {
    std::lock_guard lock(mutex_);
    if (wanted_services_.empty()) return;
    for (const auto& p : points) {
      if (wanted_services_.contains(p.service)) wanted.push_back(p);
    }
    if (wanted.empty()) return;
    points_queue_.push_back(std::move(wanted));
  }
  wake_.notify_all();
}

void AlarmEngine::final_before(int64_t end_s) {
  {
    std::lock_guard lock(mutex_);
    final_before_s_ = std::max(final_before_s_, end_s);
  }
  wake_.notify_all();
}

AlarmEngine::Figures AlarmEngine::figures() const {
  std::lock_guard lock(mutex_);
  return figures_;
}

void AlarmEngine::run(std::stop_token stop) {
  stop_ = stop;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, stop, [&] { return !points_queue_.empty() || final_before_s_ / 60 - 1 > evaluated_through_; });
    if (stop.stop_requested()) return;
    // Points first: a minute is evaluated only after its points arrived.
    std::vector<Amendment> amended;
    while (!points_queue_.empty()) {
      std::vector<MinutePoint> points = std::move(points_queue_.front());
      points_queue_.pop_front();
      for (const auto& p : points) {
        // Widened to what the rules read; a series no rule reads is not kept.
        SeriesKey key{p.service, p.attr, p.op};
        const auto wanted = spans_.find(key);
        if (wanted == spans_.end()) continue;
        const int64_t span = wanted->second;
        auto& s = series_[key].try_emplace(p.server_id, span).first->second;
        s.widen(span);
        const int64_t minute = p.minute / 60;
        // Late data for a minute judged already (a sender that was away or
        // lagged past the wait): the rules judged another value than the
        // store now serves. Told, not judged again (docs/rules.md).
        if (evaluated_through_ != 0 && minute <= evaluated_through_) {
          const std::optional<double> judged = s.at(minute);
          if (!judged || *judged != p.value) amended.push_back(Amendment{std::move(key), p.server_id, minute, judged, p.value});
        }
        s.put(minute, p.value);
      }
    }
    if (!amended.empty()) {
      figures_.amended_after_evaluation += amended.size();
      lock.unlock();
      record_amendments(amended);
      lock.lock();
      // Points may have come meanwhile, with the end of their minute: they
      // go in before that minute is judged.
      continue;
    }
    const int64_t last_final = final_before_s_ / 60 - 1;
    if (last_final <= evaluated_through_) continue;
    // After a restart, minutes a rule's stored state has not seen are caught up (the last hour at most).
    const int64_t from = std::max(evaluated_through_ + 1, last_final - kCatchUpMinutes);
    newest_final_ = last_final;
    for (int64_t minute = from; minute <= last_final && !stop.stop_requested(); ++minute) {
      // The registry's answers may take a while: the io thread must be able to queue meanwhile.
      lock.unlock();
      evaluate(minute);
      lock.lock();
      evaluated_through_ = minute;
    }
  }
}

void AlarmEngine::record_amendments(const std::vector<Amendment>& amended) {
  for (auto& [name, owned] : owned_) {
    const alarm::Rule& rule = owned.rule;
    for (const Amendment& a : amended) {
      if (a.series.service != rule.service || a.series.attr != rule.attr || a.series.op != rule.op) continue;
      if (rule.per_server ? a.server < 0 : a.server != -1) continue;
      const std::string detail =
          a.judged ? fmt::format("value {} judged, {} now: late data amended the minute after it was judged",
                                 number(*a.judged), number(a.now))
                   : fmt::format("no value judged, {} now: late data amended the minute after it was judged",
                                 number(a.now));
      notifier_.record(a.minute * 60, rule.name, a.server, "amended", detail);
      spdlog::warn("alarms: {}: minute {} of {} amended after it was judged: {}", rule.name, a.minute * 60,
                   series_name(a.server), detail);
      if (owned.rule.enabled && owned.version >= 0) correct_firing(owned, a);
    }
  }
}

// A firing caused only by a partial minute (data that came after the rules
// judged it) is taken back: people were paged on a value the store no longer
// serves. Only while that minute is the newest judged, so the episode has no
// later minute of its own; other amendments are told, not judged again.
void AlarmEngine::correct_firing(OwnedRule& owned, const Amendment& amended) {
  const alarm::Rule& rule = owned.rule;
  const auto alarm = owned.state.alarms.find(amended.server);
  if (alarm == owned.state.alarms.end()) return;
  alarm::AlarmState& a = alarm->second;
  if (a.state != alarm::State::kFiring || a.fired_at != amended.minute || owned.state.evaluated != amended.minute) return;
  const auto& by_server = series_[{rule.service, rule.attr, rule.op}];
  const auto series = by_server.find(amended.server);
  if (series == by_server.end() || alarm::holds(*rule.when, series->second, amended.minute)) return;
  const std::string why = fmt::format("correction: value {} judged, {} now; late data shows `{}` did not hold",
                                      number(amended.judged), number(amended.now), rule.when_text);
  a.state = alarm::State::kResolved;
  a.since = amended.minute;
  a.streak = 0;
  a.value = amended.now;
  notifier_.record(amended.minute * 60, rule.name, amended.server, "resolved", why);
  spdlog::warn("alarms: {} resolved for {} at minute {}: {}", rule.name,
               series_name(amended.server), amended.minute * 60, why);
  // Only those told of the firing are told it was wrong.
  if (a.notifications > 0) notify(owned, Notice{Notice::Kind::kResolved, amended.minute, {amended.server}}, why);
  write_state(owned);
  std::lock_guard lock(mutex_);
  ++figures_.corrected;  // once it is told and written
}

void AlarmEngine::evaluate(int64_t minute) {
  std::vector<std::string> names, gone_rules;
  std::map<std::string, boost::json::value> gained;  // services whose rules are new here, with their assignments
  bool reads_nodata = false;
  {
    std::lock_guard lock(mutex_);
    // Rules of services that moved away stop here (their state stays in the registry for the new owner).
    for (auto it = owned_.begin(); it != owned_.end();) {
      const auto rule = rules_.find(it->first);
      const bool still = rule != rules_.end() && wanted_services_.contains(rule->second.service);
      it = still ? std::next(it) : owned_.erase(it);
    }
    for (const auto& [name, rule] : rules_) {
      if (!wanted_services_.contains(rule.service)) continue;
      auto [it, fresh] = owned_.try_emplace(name);
      if (fresh && assignments_.count(rule.service)) gained.emplace(rule.service, assignments_.at(rule.service));
      it->second.rule = rule;  // a changed rule takes effect at the next minute
      it->second.rule_version = rule_versions_[name];
      names.push_back(name);
      reads_nodata = reads_nodata || (rule.when->uses_nodata() && !rule.service.starts_with("Monitor."));
    }
    for (const auto& [name, rule] : rules_) {
      if (rule.service == "Monitor.Registry" && rule.attr.ends_with(".Gone")) gone_rules.push_back(name);
    }
  }
  for (const auto& [service, assignment] : gained) read_moved_windows(service, assignment, minute);
  // A minute during which a service moved: every holder has a part of it.
  partial_minutes_.clear();
  {
    std::map<std::string, std::vector<std::string>> split;
    {
      std::lock_guard lock(mutex_);
      for (const auto& service : wanted_services_) {
        const auto a = assignments_.find(service);
        if (a == assignments_.end()) continue;
        auto holders = registry::judgers_holding(a->second, minute * 60, minute * 60 + 59);
        if (holders.size() > 1 || (holders.size() == 1 && holders[0] != self_)) split.emplace(service, std::move(holders));
      }
    }
    // One wait for all of them: a minute's alarms are late by kSplitMinuteWait at most.
    const auto deadline = std::chrono::steady_clock::now() + kSplitMinuteWait;
    for (const auto& [service, holders] : split) {
      if (std::string note = merge_split_minute(service, holders, minute, deadline); !note.empty()) {
        partial_minutes_[service] = note;
      }
    }
  }
  // The gone rules this judger evaluates go first, so a part found gone in
  // the same minute as the silence it causes already holds that silence's
  // notifications back.
  auto is_gone_rule = [&](const std::string& name) {
    return std::find(gone_rules.begin(), gone_rules.end(), name) != gone_rules.end();
  };
  std::stable_partition(names.begin(), names.end(), is_gone_rule);
  bool inhibition_read = false;
  const int64_t now_s = realtime_ns() / 1'000'000'000;
  uint64_t firing = 0, pending = 0;
  for (const auto& name : names) {
    if (!inhibition_read && !is_gone_rule(name)) {
      part_gone_ = reads_nodata && any_part_gone(gone_rules);
      inhibition_read = true;
    }
    OwnedRule& owned = owned_.at(name);
    if (owned.rule.enabled) evaluate_rule(owned, minute, now_s);
    for (const auto& [server, a] : owned.state.alarms) {
      firing += a.state == alarm::State::kFiring;
      pending += a.state == alarm::State::kPending;
    }
  }
  std::lock_guard lock(mutex_);
  figures_.rules = names.size();
  figures_.firing = firing;
  figures_.pending = pending;
}

bool AlarmEngine::read_state(OwnedRule& owned) {
  auto entry = registry_.get(alarm::kAlarmsKind, owned.rule.name);
  if (!entry) return false;
  if (!*entry) {
    owned.version = 0;
    return true;
  }
  alarm::RuleAlarms stored = alarm::alarms_from_value((*entry)->value);
  if (owned.version == -1) {
    owned.state = std::move(stored);
    if (owned.state.evaluated > 0) {
      spdlog::info("alarms: rule {}: state read from the registry, evaluated through minute {}", owned.rule.name,
                   owned.state.evaluated * 60);
    }
  } else {
    // Only acknowledgements come from elsewhere (monitorctl alarm ack).
    for (auto& [server, a] : owned.state.alarms) {
      const auto it = stored.alarms.find(server);
      if (it != stored.alarms.end() && it->second.fired_at == a.fired_at && it->second.acked_at != 0) {
        a.acked_at = it->second.acked_at;
        a.acked_by = it->second.acked_by;
      }
    }
  }
  owned.version = (*entry)->version;
  return true;
}

void AlarmEngine::write_state(OwnedRule& owned) {
  const std::string rules_kind(alarm::kRulesKind), alarms_kind(alarm::kAlarmsKind);
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Only while the rule stands as last seen: `rule rm` removes the rule and
    // its state in one commit, and a write racing it must not bring the state back.
    auto done = registry_.commit({{alarms_kind, owned.rule.name, owned.version},
                                  {rules_kind, owned.rule.name, owned.rule_version}},
                                 {{alarms_kind, owned.rule.name, alarm::alarms_value(owned.state)}});
    if (done && *done) {
      ++owned.version;
      return;
    }
    if (!done) break;
    auto rule_entry = registry_.get(rules_kind, owned.rule.name);
    if (!rule_entry) break;
    if (!*rule_entry) {
      spdlog::info("alarms: rule {} was removed; its state is not written again", owned.rule.name);
      owned.version = -1;
      return;
    }
    owned.rule_version = (*rule_entry)->version;  // enabled or replaced meanwhile: the watch brings the text
    read_state(owned);  // an ack came in meanwhile: keep it and write again
  }
  std::lock_guard lock(mutex_);
  ++figures_.state_write_failures;
  spdlog::warn("alarms: rule {}: could not write its state to the registry; kept here and written at the next minute",
               owned.rule.name);
  owned.version = -2;  // re-read before the next write
}

// A service that moved here has its recent minutes on the judger it left:
// without them a window (avg(5), count(3)) would start empty and a server
// that stopped just before the move would never be missed (nodata). They are
// read from that judger's query API while it is live; one that died keeps
// them until it returns, and the rules start from what this judger has.
void AlarmEngine::read_moved_windows(const std::string& service, const boost::json::value& assignment, int64_t minute) {
  std::vector<std::pair<SeriesKey, int64_t>> wanted;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, span] : spans_) {
      if (key.service == service) wanted.emplace_back(key, span);
    }
  }
  for (const auto& [key, span] : wanted) {
    const int64_t from_s = (minute - span) * 60, to_s = (minute + 1) * 60;
    for (const auto& judger : registry::judgers_holding(assignment, from_s)) {
      if (judger == self_) continue;
      const auto query = registry::judger_query(registry_, judger);
      if (!query || query->empty()) {
        spdlog::warn("alarms: {} moved here from judger {}, which is not live: its rules start without that judger's "
                     "minutes", service, judger);
        continue;
      }
      auto reply = query::JudgerClient(*query, std::chrono::seconds(5), size_t{64} << 20)
                       .points(query::SeriesRef{key.service, key.attr, alarm::rule_op_name(key.op)}, from_s, to_s);
      boost::system::error_code ec;
      const auto body = reply && reply->status == 200 ? boost::json::parse(reply->body, ec) : boost::json::value();
      alarm::History held;
      size_t skipped = 0;
      if (ec || !alarm::add_points_reply(body, held, skipped)) {
        spdlog::warn("alarms: reading the minutes of {} {} from judger {} (which it moved from) failed: {}", service,
                     key.attr, judger, reply ? fmt::format("HTTP {}", reply->status) : reply.error().message());
        continue;
      }
      if (skipped > 0) spdlog::warn("alarms: judger {} sent {} malformed row(s) of {} {}; skipped", judger, skipped, service, key.attr);
      size_t added = 0;
      auto& by_server = series_[key];
      for (const auto& [server, minutes] : held) {
        auto& s = by_server.try_emplace(server, span).first->second;
        for (const auto& [m, value] : minutes) {
          if (s.at(m)) continue;  // this judger's own minute stands
          s.put(m, value);
          ++added;
        }
      }
      spdlog::info("alarms: {} moved here: read {} minute value(s) of {} from judger {}", service, added, key.attr, judger);
    }
  }
}

// The rules read a split minute as `monitorctl query` does: the merge of
// every holder's cells (/api/cells, query::merge_cells), once each has the
// minute final. A holder that is not live (a dead judger's services move
// off it), or not final by `deadline`, is left out, and the minute is
// judged on what is known: the returned note says so.
std::string AlarmEngine::merge_split_minute(const std::string& service, const std::vector<std::string>& holders,
                                            int64_t minute, std::chrono::steady_clock::time_point deadline) {
  std::vector<SeriesKey> keys;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, span] : spans_) {
      if (key.service == service) keys.push_back(key);
    }
  }
  if (keys.empty()) return "";
  const int64_t from_s = minute * 60;
  std::vector<std::string> addresses, missing;
  for (const auto& judger : holders) {
    std::string address;
    for (bool first = true;; first = false) {
      if (!first) std::this_thread::sleep_for(std::chrono::milliseconds(500));
      if (stop_.stop_requested()) return "the judger stopped";
      const auto query = registry::judger_query(registry_, judger);
      if (!query || query->empty()) break;  // not live: nothing to wait for
      // Its part is final once that judger has stored every minute up to
      // this one's end (this judger's own is, by now).
      if (judger == self_) {
        address = *query;
        break;
      }
      auto reply = query::JudgerClient(*query, std::chrono::seconds(5)).health();
      boost::system::error_code ec;
      const auto body = reply && reply->status == 200 ? json::parse(reply->body, ec) : json::value();
      const auto* final_before = !ec && body.is_object() ? body.as_object().if_contains("final_before") : nullptr;
      if (final_before != nullptr && final_before->is_number() && final_before->to_number<int64_t>() >= from_s + 60) {
        address = *query;
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
    }
    if (address.empty() && judger == self_) {
      // Its own cells out of reach (the registry is): its own minute stands.
      return "judged on this judger's part only: its own address was not in the registry";
    }
    if (address.empty()) missing.push_back(judger);
    else addresses.push_back(address);
  }
  for (const auto& key : keys) {
    // Every holder's cells of the minute, by series (server or total).
    std::map<std::string, std::vector<json::value>> by_server;
    for (size_t h = 0; h < addresses.size(); ++h) {
      auto reply = query::JudgerClient(addresses[h], std::chrono::seconds(10), size_t{64} << 20)
                       .cells(query::SeriesRef{key.service, key.attr, alarm::rule_op_name(key.op)}, "all", from_s,
                              from_s + 60);
      boost::system::error_code ec;
      const auto body = reply && reply->status == 200 ? json::parse(reply->body, ec) : json::value();
      const auto* cells = !ec && body.is_object() ? body.as_object().if_contains("cells") : nullptr;
      if (cells == nullptr || !cells->is_array()) {
        missing.push_back(addresses[h]);
        continue;
      }
      for (const auto& cell : cells->as_array()) {
        const auto* server = cell.is_object() ? cell.as_object().if_contains("server") : nullptr;
        if (server == nullptr) continue;
        const std::string name = server->is_string() ? std::string(server->as_string()) : json::serialize(*server);
        auto& replies = by_server[name];
        replies.resize(addresses.size(), json::object{{"cells", json::array{}}});
        replies[h].as_object()["cells"].as_array().push_back(cell);
      }
    }
    const int64_t span = [&] {
      std::lock_guard lock(mutex_);
      const auto it = spans_.find(key);
      return it != spans_.end() ? it->second : int64_t{1};
    }();
    auto& series = series_[key];
    for (const auto& [name, replies] : by_server) {
      int64_t server = -1;
      if (name != "total") {
        const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), server);
        if (ec != std::errc{} || end != name.data() + name.size() || server < 0) continue;
      }
      std::string error;
      const auto merged = query::merge_cells(replies, alarm::rule_op_name(key.op), 60, error);
      if (!merged || merged->at("points").as_array().empty()) {
        spdlog::warn("alarms: merging minute {} of {} {}: {}", from_s, key.service, key.attr, error);
        continue;
      }
      const double value = merged->at("points").as_array().at(0).as_array().at(1).to_number<double>();
      series.try_emplace(server, span).first->second.put(minute, value);
    }
  }
  std::string note;
  if (!missing.empty()) {
    note = fmt::format("judged without the part held by {} (which {} moved from), not final within {} s", fmt::join(missing, ", "),
                       service, kSplitMinuteWait.count());
    spdlog::warn("alarms: minute {} of {}: {}", from_s, service, note);
  } else {
    spdlog::info("alarms: minute {} of {} moved during it: judged on the merge of {}", from_s, service, fmt::join(holders, " and "));
  }
  std::lock_guard lock(mutex_);
  ++figures_.split_minutes;
  if (!missing.empty()) ++figures_.split_minutes_partial;
  return note;
}

// Whichever judger evaluates the gone rules, their state is in the registry.
bool AlarmEngine::any_part_gone(const std::vector<std::string>& gone_rules) {
  for (const auto& name : gone_rules) {
    auto entry = registry_.get(alarm::kAlarmsKind, name);
    if (!entry || !*entry) continue;
    for (const auto& [server, a] : alarm::alarms_from_value((*entry)->value).alarms) {
      if (a.state == alarm::State::kFiring) return true;
    }
  }
  return false;
}

bool AlarmEngine::muted(const alarm::Rule& rule, int64_t server, int64_t at_s) const {
  for (const auto& s : silences_) {
    if (s.matches(rule, server, at_s)) return true;
  }
  // Inhibition: while a judger, proxy or agent is gone, the silence it causes
  // downstream is not news: no-data alarms of the services say nothing new
  // (the gone alarm does). The system's own rules still speak.
  if (part_gone_ && rule.when->uses_nodata() && !rule.service.starts_with("Monitor.")) return true;
  // And while a rule of the whole service says it stopped reporting, its
  // servers' no-data alarms say nothing new.
  if (server >= 0 && rule.when->uses_nodata()) {
    for (const auto& [name, other] : owned_) {
      if (other.rule.service != rule.service || other.rule.per_server || !other.rule.when->uses_nodata()) continue;
      const auto it = other.state.alarms.find(-1);
      if (it != other.state.alarms.end() && it->second.state == alarm::State::kFiring) return true;
    }
  }
  return false;
}

void AlarmEngine::evaluate_rule(OwnedRule& owned, int64_t minute, int64_t now_s) {
  const alarm::Rule& rule = owned.rule;
  if (owned.version < 0) {
    const bool first = owned.version == -1;  // -2: a failed write, state kept here
    if (!read_state(owned)) return;  // the registry is out of reach: evaluated when it answers
    // A rule new to the registry starts at the newest final minute, not an hour back.
    if (first && owned.state.evaluated == 0) owned.state.evaluated = newest_final_ - 1;
  } else if (std::any_of(owned.state.alarms.begin(), owned.state.alarms.end(),
                         [](const auto& a) { return a.second.state == alarm::State::kFiring && a.second.acked_at == 0; })) {
    read_state(owned);  // for acknowledgements
  }
  if (minute <= owned.state.evaluated) return;
  auto& by_server = series_[{rule.service, rule.attr, rule.op}];
  std::vector<int64_t> servers;
  std::set<int64_t> leaving;  // servers with an alarm that are no longer in the rule's group
  if (rule.per_server) {
    for (const auto& [server, s] : by_server) {
      if (server >= 0 && !s.empty() && !alarm::server_forgotten(s.newest(), minute)) servers.push_back(server);
    }
    for (const auto& [server, a] : owned.state.alarms) {
      if (a.state != alarm::State::kOk && !std::count(servers.begin(), servers.end(), server)) servers.push_back(server);
    }
    if (!rule.group.empty()) {
      registry::GroupMembers members;  // a group that is not there holds no server
      {
        std::lock_guard lock(mutex_);
        if (const auto it = members_.find(rule.group); it != members_.end()) members = it->second;
      }
      std::erase_if(servers, [&](int64_t server) { return !members.contains(server); });
      for (const auto& [server, a] : owned.state.alarms) {
        if (server >= 0 && !members.contains(server)) leaving.insert(server);
      }
    }
  } else {
    servers.push_back(-1);
  }
  const alarm::MinuteSeries empty;
  std::vector<alarm::Transition> transitions;
  for (const int64_t server : servers) {
    const auto it = by_server.find(server);
    const alarm::MinuteSeries& s = it != by_server.end() ? it->second : empty;
    if (auto t = alarm::step(rule, owned.state.alarms[server], server, minute, s)) transitions.push_back(*t);
  }
  for (const int64_t server : leaving) {
    if (auto t = alarm::leave_group(owned.state.alarms[server], server, minute)) transitions.push_back(*t);
  }
  owned.state.evaluated = minute;
  std::vector<Notice> notices;
  {
    std::lock_guard lock(mutex_);
    // Silences are matched at the minute's time when it is judged late (a
    // catch-up after a restart or a registry outage): a silence that covered
    // the minute still does, one added since does not. On time, at the wall
    // clock, so a silence added just after a minute ended still holds it.
    const int64_t silence_time = std::min(now_s, (minute + 1) * 60 + kOnTimeJudgement_s);
    notices = alarm::plan_notices(rule, owned.state.alarms, transitions, minute,
                                  [&](int64_t server) { return muted(rule, server, silence_time); });
    figures_.evaluations += servers.size();
    figures_.transitions += transitions.size();
    figures_.notices += notices.size();
  }
  for (const auto& t : transitions) {
    const std::string why =
        t.kind == alarm::EventKind::kFiring ? rule.when_text
        : t.kind == alarm::EventKind::kGone
            ? (leaving.contains(t.server)
                   ? fmt::format("the server left group {}", rule.group)
                   : fmt::format("no data for {} minutes: the server is forgotten", alarm::kForgetServerAfter))
            : std::string("recovered");
    const auto partial = partial_minutes_.find(rule.service);
    notifier_.record(t.minute * 60, rule.name, t.server, std::string(alarm::event_name(t.kind)),
                     partial == partial_minutes_.end()
                         ? fmt::format("value {} ({})", number(t.value), why)
                         : fmt::format("value {} ({}); partial: {}", number(t.value), why, partial->second));
    spdlog::info("alarms: {} {} for {} at minute {} (value {})", rule.name, alarm::event_name(t.kind),
                 series_name(t.server), t.minute * 60,
                 number(t.value));
  }
  // Queued before the state is written: a crash in between queues the same
  // keys again after the restart, which the outbox ignores.
  for (const auto& n : notices) notify(owned, n);
  // Alarms back to ok for a day, and servers no longer watched, are
  // forgotten: after the notices, which tell of a gone one with its state.
  for (auto it = owned.state.alarms.begin(); it != owned.state.alarms.end();) {
    const auto& a = it->second;
    const bool quiet = a.state == alarm::State::kOk || a.state == alarm::State::kResolved;
    const bool forgotten = alarm::server_forgotten(a.seen, minute) || minute - a.since > alarm::kForgetServerAfter ||
                           leaving.contains(it->first);
    it = quiet && forgotten && it->first >= 0 ? owned.state.alarms.erase(it) : std::next(it);
  }
  write_state(owned);
}

void AlarmEngine::notify(const OwnedRule& owned, const Notice& notice, const std::string& correction) {
  const alarm::Rule& rule = owned.rule;
  const auto& by_server = series_[{rule.service, rule.attr, rule.op}];
  alarm::MessageFacts facts{notice.kind, notice.minute, {}, correction, {}, dashboard_url_};
  if (const auto partial = partial_minutes_.find(rule.service); partial != partial_minutes_.end()) {
    facts.partial = partial->second;
  }
  for (const int64_t server : notice.servers) {
    alarm::MessageSeries& s = facts.series.emplace_back();
    s.server = server;
    const auto series = by_server.find(server);
    for (int64_t m = notice.minute - alarm::kMessageRecentMinutes + 1; m <= notice.minute; ++m) {
      s.recent.push_back(series != by_server.end() ? series->second.at(m) : std::nullopt);
    }
    if (const auto a = owned.state.alarms.find(server); a != owned.state.alarms.end()) {
      s.value = a->second.value;
      s.alarm = a->second;
    }
    if (server >= 0) {
      std::lock_guard lock(mutex_);
      if (const auto it = host_of_.find(server); it != host_of_.end()) s.host = it->second;
    }
  }
  const alarm::Message message = alarm::render_message(rule, facts);

  const std::string kind(alarm::notice_name(notice.kind));
  std::vector<alarm::Target> targets = rule.notify;
  if (notice.kind == Notice::Kind::kEscalation) targets = {*rule.escalate_to};
  for (const alarm::Target& t : targets) {
    // The key names the rule, the kind, the minute and the target: the same
    // evaluation gives the same key, on this judger or the service's next.
    const std::string target = t.text();
    const std::string key = fmt::format("{}-{}-{}-{:016x}", rule.name, kind, notice.minute * 60,
                                        hash_bytes(target.data(), target.size(), 0x6e6f74696679));
    Notification n{key, rule.name, target, message.subject, message.text, message.html, message.body};
    n.body["key"] = key;
    if (notifier_.enqueue(n)) {
      notifier_.record(notice.minute * 60, rule.name, -1, "notice_" + kind,
                       fmt::format("{} series to {}", notice.servers.size(), target));
    }
  }
}

}  // namespace monitor::judger
