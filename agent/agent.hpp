// The per-host agent: one thread draining the ring, the sockets and the plugins into per-second aggregates, written
// out to its sinks.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent_config.hpp"
#include "agent/aggregator.hpp"
#include "agent/forwarder.hpp"
#include "agent/host_checks.hpp"
#include "agent/host_metrics.hpp"
#include "agent/plugin_runner.hpp"
#include "agent/tee_sink.hpp"
#include "agent/ingest.hpp"
#include "agent/recovery_journal.hpp"
#include "agent/journaling_sink.hpp"
#include "agent/json_lines_sink.hpp"
#include "agent/name_registry.hpp"
#include "agent/datagram_pump.hpp"
#include "agent/socket_receiver.hpp"
#include "agent/stream_receiver.hpp"
#include "common/log_throttle.hpp"
#include "common/clock.hpp"
#include "health/health_table.hpp"
#include "health/metrics.hpp"
#include "net/http_server.hpp"
#include "ring/name_table.hpp"
#include "ring/ring_reader.hpp"

namespace monitor::agent {

/// Gives ring `name` mode 0660 and `group` (-1: leave its group) where this
/// process may, and logs who can write it.
void apply_ring_access(const ring::ShmSegment& segment, gid_t group, const std::string& name);

/// The per-host agent: drains the ring and the socket into the aggregator and
/// writes finished seconds to the sink. One thread runs everything: the agent
/// is bound by aggregation, which does not share well, and a single owner keeps
/// the aggregator lock-free. Not thread-safe; run() until stop is requested.
class Agent {
 public:
  /// Opens the ring (creating it if absent), binds the socket and opens the
  /// output. Throws std::runtime_error with a one-line reason on failure.
  explicit Agent(AgentConfig config);
  ~Agent();

  /// Runs until request_stop() (or SIGTERM/SIGINT via install_signal_handlers),
  /// then drains what is left, flushes every open second and returns 0.
  int run();

  /// Async-signal-safe.
  static void request_stop() noexcept;
  static void install_signal_handlers();

  const AgentCounters& counters() const noexcept { return ingest_->counters(); }

  /// The attrs of Monitor.Agent it reports (its health table's).
  static std::vector<std::string> health_attrs();

 private:
  void every_second(int64_t now_ns);
  void report_self(int64_t now_ns);
  static const health::HealthTable<Agent>& health_table();
  bool add_self_report(monitor::Name attr, int64_t value, int32_t ops);
  // The host collector's, the checks' and the plugins' figures since the last call, into the aggregator.
  void add_host_rounds();
  void add_host_round(const HostRound& round);
  void set_clock(int64_t now_s);  // the ingests' "now": the ring's, the retired ring's, the sockets'
  size_t poll_once();  // how many slots and datagrams it took in
  size_t ring_work_ = 0;  // of which ring slots, at the last poll_once()
  void flush_due(int64_t up_to_second, bool keep_draining = true);
  // The last second that may be written out now: late window behind the
  // clock, and before the oldest report still in the ring.
  int64_t flushable_second(int64_t now_s) const;
  // How far the watermark may stay behind the clock for reports still in the
  // ring (a stall of the agent); the aggregator keeps that many more seconds open.
  static constexpr int64_t kMaxHeldSeconds = 60;
  // Opens (or, with `recreate`, removes and makes anew) the ring, gives it
  // its mode and group, and reads it. Throws std::runtime_error with a reason.
  ring::RingReader open_reader(bool recreate) const;
  void replace_ring_if_tampered(int64_t now_ns);
  // Reads what a killed agent left in the journal, aggregates it again, starts
  // this agent's journal and moves the ring past what the killed one had read.
  void recover_and_start_journal(int64_t first_watermark);
  void commit_journal(std::span<const ring::LanePosition> lanes = {}) {
    if (journal_) journal_->commit(lanes);
  }
  void end_retired_ring(int64_t now_ns);

  // A ring given up because its header was rewritten: drained for a few more
  // seconds through its own name table, while writers move to the new ring.
  struct RetiredRing {
    ring::RingReader reader;
    ring::NameTable names;
    std::unique_ptr<Ingest> ingest;
    int64_t drain_until_ns;
  };

  AgentConfig config_;
  std::optional<ring::RingReader> reader_;
  std::optional<ring::NameTable> ring_names_;
  std::optional<RetiredRing> retired_;
  uint64_t rebinds_seen_ = 0;  // the current ring's writer_rebinds at the last sweep
  gid_t ring_group_ = static_cast<gid_t>(-1);  // group given the ring and socket; -1: leave as created
  std::unique_ptr<DatagramPump> socket_;
  std::unique_ptr<DatagramPump> udp_;
  std::optional<StreamReceiver> statsd_stream_;
  LogThrottle stream_refused_log_;
  NameRegistry names_;
  TscClock tsc_;
  std::unique_ptr<Aggregator> aggregator_;
  std::unique_ptr<Ingest> ingest_;
  std::unique_ptr<JsonLinesSink> sink_;
  std::unique_ptr<Forwarder> forwarder_;  // null unless forwarding
  std::unique_ptr<TeeSink> tee_;
  std::unique_ptr<RecoveryJournal> journal_;  // null: no journal
  std::unique_ptr<JournalingSink> journaling_;
  std::optional<RecoveredJournal> recovered_;  // read at start, before the aggregator exists
  AggregateSink* output_ = nullptr;        // sink_, or tee_ of sink_ and forwarder_; behind journaling_
  std::unique_ptr<HostCollector> host_;  // null: --no-host-metrics
  std::vector<HostRound> host_rounds_;   // reused by add_host_rounds()
  std::unique_ptr<CheckRunner> checks_;    // null: no checks configured
  std::unique_ptr<PluginRunner> plugins_;  // null: plugin dir "none"
  std::vector<PluginRun> plugin_runs_;     // reused by add_host_rounds()
  int64_t now_s_ = 0;
  int64_t last_flush_ms_ = 0;  // longest flush since the last self report
  int64_t self_report_ns_ = 0;  // the time of the self report under way
  health::Metrics metrics_{"agent"};
  health::HealthReporter health_{
      [this](monitor::Name attr, int64_t value, int32_t ops) { return add_self_report(attr, value, ops); }};
  std::unique_ptr<net::MetricsServer> metrics_server_;  // last: stopped before what it reads
};

}  // namespace monitor::agent
