#include "alarm/replay.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace monitor::alarm {

bool add_points_reply(const boost::json::value& reply, History& out, size_t& skipped) {
  const auto* obj = reply.if_object();
  const auto* servers = obj != nullptr ? obj->if_contains("servers") : nullptr;
  if (servers == nullptr || !servers->is_object()) return false;
  for (const auto& [key, rows] : servers->as_object()) {
    int64_t server = -1;
    if (key != "total") {
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), server);
      if (ec != std::errc{} || end != key.data() + key.size() || server < 0) {
        ++skipped;
        continue;
      }
    }
    if (!rows.is_array()) {
      ++skipped;
      continue;
    }
    auto& minutes = out[server];
    for (const auto& row : rows.as_array()) {
      const auto* pair = row.if_array();
      if (pair == nullptr || pair->size() != 2 || !pair->at(0).is_int64() || !pair->at(1).is_number()) {
        ++skipped;
        continue;
      }
      minutes.emplace(pair->at(0).as_int64() / 60, pair->at(1).to_number<double>());
    }
  }
  return true;
}

ReplayResult replay(const Rule& rule, const History& history, int64_t from, int64_t to) {
  ReplayResult result;
  const int64_t span = rule.span();
  std::map<int64_t, MinuteSeries> series;
  std::map<int64_t, int64_t> last_seen;  // per server, for watching and forgetting
  std::map<int64_t, AlarmState> alarms;
  // Each series' minutes from the first that the first evaluation reads.
  std::map<int64_t, std::map<int64_t, double>::const_iterator> next;
  for (const auto& [server, minutes] : history) {
    if (rule.per_server != (server >= 0)) continue;
    series.emplace(server, MinuteSeries(span + 1));
    next[server] = minutes.lower_bound(from - span);
  }
  if (!rule.per_server) {
    series.try_emplace(-1, MinuteSeries(span + 1));
    last_seen[-1] = from;  // the total is always watched
  }
  for (int64_t minute = from; minute <= to; ++minute) {
    for (auto& [server, it] : next) {
      const auto& minutes = history.at(server);
      for (; it != minutes.end() && it->first <= minute; ++it) {
        series.at(server).put(it->first, it->second);
        if (rule.per_server) last_seen[server] = it->first;
      }
    }
    std::vector<Transition> transitions;
    for (const auto& [server, seen] : last_seen) {
      if (auto t = step(rule, alarms[server], server, minute, series.at(server))) transitions.push_back(*t);
    }
    auto notices = plan_notices(rule, alarms, transitions, minute, [](int64_t) { return false; });
    // Forgotten after the minute that said so (gone), as the engine does.
    for (auto it = last_seen.begin(); it != last_seen.end();) {
      if (rule.per_server && server_forgotten(it->second, minute)) {
        alarms.erase(it->first);
        it = last_seen.erase(it);
      } else {
        ++it;
      }
    }
    result.transitions.insert(result.transitions.end(), transitions.begin(), transitions.end());
    result.notices.insert(result.notices.end(), notices.begin(), notices.end());
    ++result.minutes;
  }
  return result;
}

std::vector<TestOutcome> run_tests(const RuleFile& file) {
  std::vector<TestOutcome> out;
  for (const RuleTest& test : file.tests) {
    TestOutcome outcome{test.name, test.line, {}};
    const Rule& rule = *std::find_if(file.rules.begin(), file.rules.end(), [&](const Rule& r) { return r.name == test.rule; });
    History history;
    int64_t last = 1;
    for (const auto& s : test.series) {
      auto& minutes = history[s.server];
      for (size_t i = 0; i < s.values.size(); ++i) {
        const int64_t minute = s.first_minute + static_cast<int64_t>(i);
        if (s.values[i]) minutes[minute] = *s.values[i];
        last = std::max(last, minute);
      }
    }
    const ReplayResult r = replay(rule, history, 1, last);
    auto text = [](std::string_view event, int64_t minute, int64_t server) {
      return server < 0 ? fmt::format("{} minute={} total", event, minute)
                        : fmt::format("{} minute={} server={}", event, minute, server);
    };
    std::vector<std::string> got, want;
    for (const auto& t : r.transitions) got.push_back(text(event_name(t.kind), t.minute, t.server));
    for (const auto& e : test.expects) want.push_back(text(e.event, e.minute, rule.per_server ? e.server : -1));
    for (const auto& w : want) {
      if (std::find(got.begin(), got.end(), w) == got.end()) outcome.problems.push_back("expected " + w + ", did not happen");
    }
    for (const auto& g : got) {
      if (std::find(want.begin(), want.end(), g) == want.end()) outcome.problems.push_back("unexpected " + g);
    }
    out.push_back(std::move(outcome));
  }
  return out;
}

}  // namespace monitor::alarm
