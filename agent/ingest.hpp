// Turns ring slots and socket lines into reports for the aggregator, counting what it refuses.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <cstdint>
#include <string_view>
#include <vector>

#include "agent/aggregator.hpp"
#include "agent/line_parser.hpp"
#include "common/log_throttle.hpp"
#include "agent/name_registry.hpp"
#include "common/clock.hpp"
#include "ring/name_table.hpp"
#include "ring/ring_layout.hpp"

namespace monitor::agent {

/// Counters behind the Monitor.Agent health metrics; monotonic.
struct AgentCounters {
  uint64_t ring_reports = 0;
  uint64_t socket_lines = 0;
  uint64_t socket_datagrams = 0;
  uint64_t ring_dropped = 0;     // lane full, or no lane free, in writer processes
  uint64_t ring_abandoned = 0;   // slots left half-written by dead writers
  uint64_t ring_names_full = 0;
  uint64_t bad_slots = 0;        // unknown name id or empty op mask in a slot
  std::array<uint64_t, static_cast<size_t>(LineError::kCount_)> bad_lines{};
  uint64_t truncated_datagrams = 0;
  uint64_t late = 0;
  uint64_t future = 0;
  uint64_t series_over_limit = 0;  // new series refused: their service had series_per_service in that second
  uint64_t ring_retired = 0;     // rings given up because their header was rewritten
  uint64_t writer_rebinds = 0;   // writer processes that moved to a recreated ring
  uint64_t recovered = 0;        // reports a killed agent had drained, read back from its journal
  uint64_t recovery_lost = 0;    // reports a killed agent had drained and could not journal (full), at most
  uint64_t statsd_events = 0;         // DogStatsD events: counted, not reports
  uint64_t statsd_service_checks = 0;  // DogStatsD service checks: counted, not reports
  uint64_t sets_over_limit = 0;   // set members dropped: kMaxSetMembers distinct members open already
  uint64_t gauges_over_limit = 0;  // gauge deltas dropped: kMaxGauges gauges remembered already
  uint64_t bad_lines_total() const noexcept;
  /// Adds what an Ingest of a retired ring counted: its slots, rejects and window drops.
  void add_ring_counts(const AgentCounters& other) noexcept {
    ring_reports += other.ring_reports;
    bad_slots += other.bad_slots;
    late += other.late;
    future += other.future;
    series_over_limit += other.series_over_limit;
  }
};

/// When the report in `slot` happened, in ns since the epoch: the SDK's TSC
/// stamp converted, or the ns it wrote.
inline int64_t slot_time_ns(const ring::Slot& slot, const TscClock& tsc) noexcept {
  return slot.time_is_tsc() ? tsc.to_ns(slot.time_value()) : static_cast<int64_t>(slot.time_value());
}

/// Turns ring slots and socket datagrams into aggregator input: resolves
/// names, converts timestamps, parses lines, counts and logs (rate-limited)
/// everything it rejects. Not thread-safe: the agent's one thread.
class Ingest {
 public:
  /// `ring_names` may be null when there is no ring (benchmarks of the socket path).
  Ingest(Aggregator& aggregator, NameRegistry& names, const ring::NameTable* ring_names,
         int64_t default_server_id, const StatsdOptions& statsd = {});

  /// Bounds on what statsd lines make the agent remember: a gauge's last
  /// value (for "+3|g"), and a set's members in its open seconds.
  static constexpr size_t kMaxGauges = 1 << 20;
  static constexpr size_t kMaxSetMembers = 1 << 21;

  /// Reads ring slots' names from `ring_names` from now on (a new ring): the
  /// ids learnt from the old one are forgotten.
  void set_ring_names(const ring::NameTable* ring_names);

  /// The wall-clock second that bounds "future" reports; set once per loop.
  void set_now(int64_t now_s) noexcept { now_s_ = now_s; }

  void on_slot(const ring::Slot& slot, const TscClock& tsc) {
    const uint32_t ops = slot.ops();
    const uint32_t ring_id = slot.name_id();
    const int64_t time_ns = slot_time_ns(slot, tsc);
    uint32_t id = ring_id < ring_ids_.size() ? ring_ids_[ring_id] : 0;
    if (id == 0) id = resolve_ring_id(ring_id);
    if (id == 0 || ops == 0) {
      reject_slot(slot);
      return;
    }
    ++counters_.ring_reports;
    pending_[pending_count_++] = Aggregator::Input{id, ops, slot.server_id, slot.value, time_ns};
    if (pending_count_ == Aggregator::kMaxBatch) flush();
  }

  /// Hands the ring reports gathered by on_slot() to the aggregator. Call
  /// after each drain, and always before the aggregator flushes a second.
  void flush() {
    if (pending_count_ == 0) return;
    const Aggregator::Rejected rejected = aggregator_.add_batch(pending_.data(), pending_count_, now_s_);
    pending_count_ = 0;
    if (rejected.late + rejected.future + rejected.over_limit != 0) count_outside_window(rejected);
  }

  /// `received_ns` stamps lines that carry no time of their own: one clock
  /// read per datagram, not per line.
  void on_datagram(std::string_view bytes, bool truncated, int64_t received_ns);

  /// Lines that did not come through a socket (a plugin's output): as a
  /// datagram's, without counting a datagram.
  void on_lines(std::string_view lines, int64_t received_ns) {
    for_each_line(lines, [&](std::string_view line, size_t readable) { on_line(line, readable, received_ns); });
    flush_held_zero();
  }

  AgentCounters& counters() noexcept { return counters_; }
  const AgentCounters& counters() const noexcept { return counters_; }

 private:
  void on_line(std::string_view line, size_t readable, int64_t received_ns);
  // The value a gauge line sets, or nullopt when a delta finds no room to be remembered.
  std::optional<int64_t> gauge_value(uint32_t id, int64_t server_id, int64_t value, bool delta);
  void add_gauge(uint32_t id, int64_t server_id, int64_t value, bool delta, uint32_t ops, int64_t time_ns);
  // Adds the held "0|g" as what it is: a gauge set to 0.
  void flush_held_zero();
  // True the first time the member is seen in its series and second.
  bool first_in_second(uint32_t id, const ParsedLine& line, int64_t time_ns);
  uint32_t resolve_ring_id(uint32_t ring_id);
  void reject_slot(const ring::Slot& slot);
  void count(Aggregator::AddResult result) {
    if (result == Aggregator::AddResult::kLate) count_outside_window({1, 0});
    if (result == Aggregator::AddResult::kFuture) count_outside_window({0, 1});
    if (result == Aggregator::AddResult::kOverLimit) count_outside_window({0, 0, 1, last_name_});
  }
  void count_outside_window(Aggregator::Rejected rejected);

  Aggregator& aggregator_;
  NameRegistry& names_;
  const ring::NameTable* ring_names_;
  std::vector<uint32_t> ring_ids_;  // ring name id -> registry id (0: not resolved yet)
  LineParser parser_;
  ParsedLine parsed_;
  std::array<Aggregator::Input, Aggregator::kMaxBatch> pending_;
  size_t pending_count_ = 0;
  AgentCounters counters_;
  int64_t now_s_ = 0;
  LogThrottle bad_line_log_;
  LogThrottle bad_slot_log_;
  LogThrottle window_log_;
  LogThrottle names_full_log_;
  uint32_t last_name_ = 0;  // the name of the report add() was last given
  std::vector<bool> warned_services_;  // services told about once that they are over the series limit
  struct SeriesKey {
    uint32_t name_id;
    int64_t server_id;
    bool operator==(const SeriesKey&) const = default;
  };
  struct SeriesKeyHash {
    size_t operator()(const SeriesKey& k) const noexcept;
  };
  std::unordered_map<SeriesKey, int64_t, SeriesKeyHash> gauges_;
  // A gauge set to 0, held for one line: with a negative delta of the same
  // series after it, in the same datagram, the two are one value
  // (docs/socket.md). Deltas exist only under statsd's gauge rule, so under
  // DogStatsD's the next line always lets it go as a 0.
  struct HeldZero {
    uint32_t id;
    int64_t server_id;
    uint32_t ops;
    int64_t time_ns;
  };
  std::optional<HeldZero> held_zero_;
  std::map<int64_t, std::unordered_set<uint64_t>> set_members_;  // by second: members' keys seen
  size_t set_member_count_ = 0;
  LogThrottle limit_log_;
};

}  // namespace monitor::agent
