// Alarm figures of issue 9: evaluating 10 000 rules x 100 series at a
// minute's end, and replaying one rule over 7 days of 100 servers (what
// `monitorctl rule test` does with the minutes it read). Each beside a peer
// measured in the same run: the same values read from a flat array.
#include <chrono>
#include <cstdio>
#include <map>
#include <vector>

#include "alarm/evaluator.hpp"
#include "alarm/replay.hpp"
#include "alarm/rule.hpp"

using namespace monitor::alarm;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Rule rule_of(const char* when) {
  auto parsed = parse_rule_file(std::string("rule Bench.Rule.X\n  service Bench.Svc\n  attr Bench.Attr\n  op SUM\n  when ") + when +
                                "\n");
  if (parsed.error) {
    std::fprintf(stderr, "%s\n", parsed.error->text().c_str());
    std::exit(1);
  }
  return parsed.file.rules[0];
}

}  // namespace

int main() {
  constexpr int kRules = 10'000, kServers = 100;
  const int64_t now = 30'000'000;
  const Rule rule = rule_of("avg(5) > 900 and value > 950 or nodata(3)");
  // Every rule reads its own 100 series of 6 minutes.
  std::vector<std::vector<MinuteSeries>> series(kRules, std::vector<MinuteSeries>(kServers, MinuteSeries(rule.span() + 1)));
  std::vector<double> flat;
  flat.reserve(static_cast<size_t>(kRules) * kServers * 6);
  uint64_t x = 88172645463325252ull;
  for (auto& per_rule : series) {
    for (auto& s : per_rule) {
      for (int64_t m = now - 5; m <= now; ++m) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const double v = static_cast<double>(x % 1000);
        s.put(m, v);
        flat.push_back(v);
      }
    }
  }
  std::vector<std::map<int64_t, AlarmState>> alarms(kRules);
  auto t0 = Clock::now();
  size_t transitions = 0, notices = 0;
  for (int r = 0; r < kRules; ++r) {
    std::vector<Transition> t;
    for (int s = 0; s < kServers; ++s) {
      if (auto tr = step(rule, alarms[r][s], s, now, series[r][s])) t.push_back(*tr);
    }
    transitions += t.size();
    notices += plan_notices(rule, alarms[r], t, now, [](int64_t) { return false; }).size();
  }
  const double eval_s = seconds_since(t0);
  t0 = Clock::now();
  double sum = 0;
  for (double v : flat) sum += v;
  const double flat_s = seconds_since(t0);
  std::printf("evaluate %d rules x %d series (%s): %.3f s of one core (goal <= 1 s); %zu firing, %zu notices\n", kRules,
              kServers, rule.when_text.c_str(), eval_s, transitions, notices);
  std::printf("  peer: summing the same %zu values from a flat array: %.4f s (ratio %.0fx; sum %g)\n", flat.size(), flat_s,
              eval_s / flat_s, sum);

  // 7 days of minutes of 100 servers, one rule.
  const Rule day_rule = rule_of("avg(5) > 990 or pdiff(1d) > 500");
  History history;
  const int64_t days = 7 * 1440;
  for (int s = 0; s < kServers; ++s) {
    auto& m = history[s];
    for (int64_t i = 0; i < days; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      m.emplace_hint(m.end(), now - days + i, static_cast<double>(x % 1000));
    }
  }
  t0 = Clock::now();
  const ReplayResult r = replay(day_rule, history, now - days + 1, now);
  const double replay_s = seconds_since(t0);
  t0 = Clock::now();
  double sum2 = 0;
  for (const auto& [server, minutes] : history) {
    for (const auto& [m, v] : minutes) sum2 += v;
  }
  const double walk_s = seconds_since(t0);
  std::printf("rule test on history: 7 days x %d servers (%s): %.3f s (goal <= 2 s); %zu transitions, %zu notices\n",
              kServers, day_rule.when_text.c_str(), replay_s, r.transitions.size(), r.notices.size());
  std::printf("  peer: walking the same %lld minutes once: %.4f s (ratio %.0fx; sum %g)\n",
              static_cast<long long>(days) * kServers, walk_s, replay_s / walk_s, sum2);
  return 0;
}
