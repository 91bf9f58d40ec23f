// The judger's alarm evaluation: rules of its services judged as each minute becomes final.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "alarm/evaluator.hpp"
#include "alarm/records.hpp"
#include "alarm/rule.hpp"
#include "registry/groups.hpp"
#include "registry/registry.hpp"
#include "judger/minute_reader.hpp"
#include "judger/notifier.hpp"

namespace monitor::judger {

/// Evaluates the rules of the services this judger owns as each minute
/// becomes final (docs/rules.md, "Evaluation"): one thread of its own, fed
/// by the judger's io thread, so a slow registry or a large rule set never
/// holds ingest. Alarm states live in the registry (alarms/<rule>), where a
/// restarted judger or a service's new owner finds them; notifications go
/// through the Notifier's durable outbox under keys derived from the state,
/// so a replayed minute queues nothing twice.
class AlarmEngine {
 public:
  struct Figures {
    uint64_t rules = 0, firing = 0, pending = 0, evaluations = 0, transitions = 0, notices = 0;
    uint64_t state_write_failures = 0, bad_rules = 0;
    uint64_t split_minutes = 0;          // minutes during which a service moved, judged on every holder's cells
    uint64_t split_minutes_partial = 0;  // of those, judged without a holder that did not have it final in time
    uint64_t amended_after_evaluation = 0;  // series minutes whose value changed after the rules judged them
    uint64_t corrected = 0;  // firings that the amended value of their minute does not bear out: resolved as corrections
  };

  /// `dashboard_url` (may be empty): where each message links to its series' chart.
  AlarmEngine(registry::Registry& registry, std::string self, Notifier& notifier, std::string dashboard_url = "");
  ~AlarmEngine();

  /// The rules of owned services as the registry has them now (blocking: call
  /// before the io thread starts, then the watch keeps them).
  void load_rules();
  /// The (service, attr, op) series the owned rules read, and how many minutes back.
  std::vector<std::tuple<std::string, std::string, uint32_t, int64_t>> wanted_series() const;

  /// From the io thread: the points of a minute just stored (any service).
  void minute_stored(const std::vector<MinutePoint>& points);
  /// From the io thread: every minute before `end_s` (Unix seconds) is final.
  void final_before(int64_t end_s);

  Figures figures() const;

 private:
  struct SeriesKey {
    std::string service, attr;
    uint32_t op;
    auto operator<=>(const SeriesKey&) const = default;
  };
  struct OwnedRule {
    alarm::Rule rule;
    alarm::RuleAlarms state;
    int64_t version = -1;  // of alarms/<rule> in the registry; -1: not read yet
    int64_t rule_version = 0;  // of rules/<rule> as last seen: the state is written only while it stands
  };
  // A series' minute whose value changed after the rules judged it.
  struct Amendment {
    SeriesKey series;
    int64_t server;
    int64_t minute;  // index
    std::optional<double> judged;
    double now;
  };
  void run(std::stop_token stop);
  // In each owned rule's history that reads the series: the value judged and
  // the value now; a firing the amended value does not bear out is resolved.
  void record_amendments(const std::vector<Amendment>& amended);
  void correct_firing(OwnedRule& owned, const Amendment& amended);
  void on_change(const std::string& kind, const std::vector<registry::Entry>& entries);
  void evaluate(int64_t minute);
  void evaluate_rule(OwnedRule& owned, int64_t minute, int64_t now_s);
  bool read_state(OwnedRule& owned);
  void write_state(OwnedRule& owned);
  /// `correction`: why a resolution takes back a firing (empty for a notice judged as usual).
  void notify(const OwnedRule& owned, const alarm::Notice& notice, const std::string& correction = {});
  bool muted(const alarm::Rule& rule, int64_t server, int64_t at_s) const;
  bool any_part_gone(const std::vector<std::string>& gone_rules);
  void read_moved_windows(const std::string& service, const boost::json::value& assignment, int64_t minute);
  std::string merge_split_minute(const std::string& service, const std::vector<std::string>& holders, int64_t minute,
                                 std::chrono::steady_clock::time_point deadline);

  registry::Registry& registry_;
  const std::string self_;
  Notifier& notifier_;
  std::string dashboard_url_;  // without a trailing '/'; empty: messages carry no link

  mutable std::mutex mutex_;  // everything below
  std::condition_variable_any wake_;  // woken at once by the stop token
  std::deque<std::vector<MinutePoint>> points_queue_;
  int64_t final_before_s_ = 0;
  std::map<std::string, alarm::Rule> rules_;            // every rule in the registry, by name
  std::map<std::string, int64_t> rule_versions_;        // their entries' versions
  std::map<std::string, boost::json::value> assignments_;  // service -> its assignment: its judger, and those it left
  std::vector<alarm::Silence> silences_;
  std::vector<registry::Entry> groups_, hosts_;  // as last read: what members_ is made of
  std::map<std::string, registry::GroupMembers> members_;  // group -> its servers now
  std::map<int64_t, std::string> host_of_;  // server id -> the host recorded with it, for messages
  std::set<std::string> wanted_services_;
  std::map<SeriesKey, int64_t> spans_;  // minutes kept of each series the owned rules read
  Figures figures_;

  // The engine thread's own.
  std::stop_token stop_;  // its stop, for the steps that wait on other judgers
  std::map<std::string, OwnedRule> owned_;  // rules evaluated here, by name
  std::map<SeriesKey, std::map<int64_t, alarm::MinuteSeries>> series_;
  int64_t evaluated_through_ = 0;  // minute index
  int64_t newest_final_ = 0;       // minute index
  bool part_gone_ = false;         // a Monitor.Registry.*Gone alarm fires (read at each minute)
  // Services whose minute being evaluated was judged without a holder's part: why.
  std::map<std::string, std::string> partial_minutes_;
  std::unique_ptr<registry::Watch> watch_;
  std::jthread thread_;
};

}  // namespace monitor::judger
