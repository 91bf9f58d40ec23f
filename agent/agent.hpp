#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "agent/agent_config.hpp"
#include "agent/aggregator.hpp"
#include "agent/json_lines_sink.hpp"
#include "agent/line_parser.hpp"
#include "agent/log_throttle.hpp"
#include "agent/name_registry.hpp"
#include "agent/socket_receiver.hpp"
#include "common/clock.hpp"
#include "ring/name_table.hpp"
#include "ring/ring_reader.hpp"

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
  uint64_t bad_lines_total() const noexcept;
};

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

  const AgentCounters& counters() const noexcept { return counters_; }

 private:
  void on_slot(const ring::Slot& slot);
  void on_datagram(std::string_view bytes, bool truncated);
  void on_line(std::string_view line);
  uint32_t resolve_ring_id(uint32_t ring_id);
  void count(Aggregator::AddResult result);
  void every_second(int64_t now_ns);
  void report_self(int64_t now_ns);
  size_t poll_once();

  AgentConfig config_;
  std::optional<ring::RingReader> reader_;
  std::optional<ring::NameTable> ring_names_;
  std::vector<uint32_t> ring_ids_;  // ring name id -> registry id (0: not resolved yet)
  std::optional<SocketReceiver> socket_;
  LineParser parser_;
  NameRegistry names_;
  TscClock tsc_;
  std::unique_ptr<Aggregator> aggregator_;
  std::unique_ptr<JsonLinesSink> sink_;
  AgentCounters counters_;
  AgentCounters reported_;  // counters_ as of the last self report
  int64_t now_s_ = 0;
  LogThrottle bad_line_log_;
  LogThrottle bad_slot_log_;
  LogThrottle late_log_;
};

}  // namespace monitor::agent
