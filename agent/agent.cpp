#include "agent/agent.hpp"

#include <grp.h>
#include <poll.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/process_info.hpp"
#include "monitor/monitor.hpp"
#include "net/tls_settings.hpp"
#include "ring/ring_errc.hpp"

namespace monitor::agent {
namespace {

volatile sig_atomic_t g_stop = 0;

extern "C" void on_stop_signal(int) { g_stop = 1; }

constexpr std::string_view kSelfService = "Monitor.Agent";

ring::ShmSegment open_ring(const AgentConfig& config, bool recreate) {
  const std::string name = config.ring_name();
  const ring::Geometry geometry{config.ring_lanes, config.ring_shared_lanes, config.ring_slots_per_lane,
                                config.ring_name_capacity};
  if (recreate) {
    if (auto ec = ring::ShmSegment::unlink(name)) throw std::runtime_error(ring::describe(ec, "unlink ring " + name));
    spdlog::warn("removed ring {}; writers bound to it move to the new one within about a second", name);
  }
  auto segment = ring::ShmSegment::open_or_create(name, geometry, 500);
  if (!segment && segment.error() == ring::RingErrc::kNotReady) {
    // Its creator died before finishing it: nobody can be using it.
    spdlog::warn("ring {} was never finished by its creator; recreating it", name);
    ring::ShmSegment::unlink(name);
    segment = ring::ShmSegment::open_or_create(name, geometry, 500);
  }
  if (!segment) {
    std::string hint;
    if (segment.error() == ring::RingErrc::kVersionMismatch || segment.error() == ring::RingErrc::kBadGeometry ||
        segment.error() == ring::RingErrc::kBadMagic) {
      hint = " (stop the programs writing to it and start the agent with --recreate-ring)";
    }
    throw std::runtime_error(ring::describe(segment.error(), "open ring " + name) + hint);
  }
  const auto& h = segment->header();
  spdlog::info("{} ring {}: {} lanes ({} shared) x {} slots, {} names, {:.1f} MiB",
               segment->created() ? "created" : "attached to", name, h.lane_count, h.shared_lane_count,
               h.slots_per_lane, h.name_capacity, static_cast<double>(h.segment_size) / (1 << 20));
  if (!segment->created() && h.reader_pid != 0 && static_cast<pid_t>(h.reader_pid) != getpid() &&
      process_exists(static_cast<pid_t>(h.reader_pid))) {
    throw std::runtime_error(fmt::format("ring {} already has a live reader (pid {}): one agent per ring", name,
                                         h.reader_pid));
  }
  return std::move(*segment);
}

// The group given the ring and the socket: the configured one, else "monitor"
// when it exists, else none (-1: they keep the agent's own group).
gid_t resolve_group(const std::string& configured) {
  const std::string name = configured.empty() ? "monitor" : configured;
  std::vector<char> buffer(16384);
  group entry {};
  group* found = nullptr;
  getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (found != nullptr) return found->gr_gid;
  if (!configured.empty()) throw std::runtime_error(fmt::format("group {} does not exist", configured));
  return static_cast<gid_t>(-1);
}

std::string group_name(gid_t gid) {
  const group* g = getgrgid(gid);
  return g != nullptr ? g->gr_name : std::to_string(gid);
}

// With TLS the certificate says which sender this agent is (receivers hold
// it to that); a configured sender_id must agree with it.
uint64_t tls_sender_id(const net::TlsContext& tls, uint64_t configured) {
  const net::PeerIdentity own = tls.own_identity();
  const auto id = net::agent_sender_id(own);
  if (!id) throw std::runtime_error(fmt::format("TLS certificate of {}: an agent's name must be its sender id", own.text()));
  if (configured != 0 && configured != *id) {
    throw std::runtime_error(fmt::format("sender_id {} is not the {} of the TLS certificate ({})", configured, *id,
                                         own.text()));
  }
  return *id;
}

}  // namespace

void apply_ring_access(const ring::ShmSegment& segment, gid_t group, const std::string& name) {
  // Only the owner (or root) may change these; a ring an earlier writer made
  // keeps what it has, and the log says so.
  const bool grouped = group == static_cast<gid_t>(-1) || fchown(segment.fd(), static_cast<uid_t>(-1), group) == 0;
  const bool moded = fchmod(segment.fd(), 0660) == 0;
  struct stat st {};
  fstat(segment.fd(), &st);
  if (!grouped || !moded) {
    spdlog::warn("ring {}: could not set group {} and mode 0660 (owner uid {}); it stays mode {:04o} group {}", name,
                 group_name(group), st.st_uid, st.st_mode & 07777, group_name(st.st_gid));
  }
  spdlog::info("ring {}: mode {:04o}, owner uid {}, group {}: processes of other users and groups get "
               "MONITOR_ERR_UNAVAILABLE from the SDK",
               name, st.st_mode & 07777, st.st_uid, group_name(st.st_gid));
}

void Agent::request_stop() noexcept { g_stop = 1; }

void Agent::install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

ring::RingReader Agent::open_reader(bool recreate) const {
  const std::string name = config_.ring_name();
  ring::ShmSegment segment = open_ring(config_, recreate);
  apply_ring_access(segment, ring_group_, name);
  auto reader = ring::RingReader::open(std::move(segment));
  if (!reader) throw std::runtime_error(ring::describe(reader.error(), "read ring " + name));
  return std::move(*reader);
}

Agent::Agent(AgentConfig config)
    : config_(std::move(config)), names_(config_.max_names, config_.max_line_names), tsc_(20) {
  config_.validate();
  health_.expose(&metrics_);
  if (!config_.metrics_listen.empty()) {
    metrics_server_ = std::make_unique<net::MetricsServer>(config_.metrics_listen, [this] { return metrics_.text(); });
    spdlog::info("metrics: GET /metrics on {}", metrics_server_->address());
  }
  ring_group_ = resolve_group(config_.group);
  reader_.emplace(open_reader(config_.recreate_ring));
  ring_names_.emplace(reader_->segment());
  if (config_.effective_journal() != "none") {
    recovered_ = RecoveryJournal::read(config_.effective_journal());
    // Interned before anything else, so they get the ids they had: a second
    // written out again then cuts into the same batches.
    for (const auto& [service, attr] : recovered_->names) names_.intern(service, attr);
  }

  if (!config_.socket.empty()) {
    auto socket = SocketReceiver::bind(config_.socket, config_.socket_rcvbuf_bytes, ring_group_);
    if (!socket) throw std::runtime_error(ring::describe(socket.error(), "bind socket " + config_.socket));
    socket_ = std::make_unique<DatagramPump>(std::move(*socket));
    spdlog::info("listening for lines on {}", config_.socket);
  }
  if (!config_.udp.empty() && config_.udp != "none") {
    auto udp = SocketReceiver::bind_udp(config_.udp, config_.socket_rcvbuf_bytes);
    if (udp) {
      udp_ = std::make_unique<DatagramPump>(std::move(*udp));
      spdlog::info("listening for lines on UDP {} (statsd and native)", config_.udp);
    } else if (config_.udp == AgentConfig::kDefaultUdp && udp.error() == std::errc::address_in_use) {
      // Another statsd daemon (or agent) has the well-known port: the agent
      // still serves the ring and its sockets.
      spdlog::warn("UDP {} is taken by another process: no statsd over UDP (set udp to another address, or none)",
                   config_.udp);
    } else {
      throw std::runtime_error(ring::describe(udp.error(), "bind UDP " + config_.udp));
    }
  }
  if (const std::string path = config_.effective_statsd_socket(); path != "none") {
    auto stream = StreamReceiver::bind(path, ring_group_, config_.statsd_max_connections);
    if (stream) {
      statsd_stream_.emplace(std::move(*stream));
      spdlog::info("listening for statsd lines on stream socket {} (at most {} clients)", path,
                   config_.statsd_max_connections);
    } else if (config_.statsd_socket.empty() && stream.error() == std::errc::address_in_use) {
      // Another agent beside this one serves the default path: not a reason to stop.
      spdlog::warn("statsd stream socket {} is served by another process: no statsd stream socket (set "
                   "statsd_socket to another path, or none)", path);
    } else {
      throw std::runtime_error(ring::describe(stream.error(), "bind statsd stream socket " + path));
    }
  }
  const std::string output = config_.effective_output();
  if (output != "none") {
    sink_ = std::make_unique<JsonLinesSink>(output, names_);
    output_ = sink_.get();
  }
  if (!config_.forward.empty() || !config_.registry.empty()) {
    auto tls = net::make_tls(net::tls_files(config_), wire::Role::kAgent);
    const uint64_t sender_id = tls ? tls_sender_id(*tls, config_.sender_id)
                               : config_.sender_id != 0 ? config_.sender_id
                                                        : default_sender_id(config_.ring_name());
    forwarder_ = std::make_unique<Forwarder>(
        Forwarder::Options{config_.forward, config_.registry, config_.dc, config_.spool_dir, config_.spool_max_bytes,
                           sender_id, fmt::format("agent {}", config_.ring_name()), config_.server_id, tls},
        names_);
    if (sink_) {
      tee_ = std::make_unique<TeeSink>(*sink_, *forwarder_);
      output_ = tee_.get();
    } else {
      output_ = forwarder_.get();
    }
    spdlog::info("forwarding to {} as sender {}, spool {}",
                 config_.forward.empty() ? fmt::format("a proxy of {} from {}", config_.dc, config_.registry)
                                         : config_.forward,
                 sender_id, config_.spool_dir);
  }
  if (output_ == nullptr) throw std::runtime_error("output is none and nothing to forward to: every aggregate would be lost");
  now_s_ = realtime_ns() / 1'000'000'000;
  // Reports a previous agent left in the ring are not late because this one
  // started after them: the first watermark is held as after a stall.
  const int64_t first_watermark = flushable_second(now_s_);
  if (first_watermark < now_s_ - config_.late_window_s - 1) {
    spdlog::info("the ring holds reports from {} s ago: seconds from then on stay open until they are drained",
                 now_s_ - first_watermark - 1);
  }
  int64_t watermark = first_watermark;
  if (recovered_) {
    // What a killed agent had not written out is aggregated again: open.
    for (const auto& input : recovered_->inputs) {
      watermark = std::min(watermark, second_of_ns(input.time_ns) - 1);
    }
  }
  aggregator_ = std::make_unique<Aggregator>(Aggregator::Options{config_.late_window_s, config_.future_window_s},
                                             watermark + config_.late_window_s + 1, kMaxHeldSeconds);
  if (config_.series_per_service != 0) aggregator_->set_series_limit(config_.series_per_service, &names_.service_of_names());
  ingest_ = std::make_unique<Ingest>(*aggregator_, names_, &*ring_names_, config_.server_id, config_.statsd);
  if (recovered_) recover_and_start_journal(watermark);
  if (config_.host.enabled) {
    host_ = std::make_unique<HostCollector>(config_.host);
    spdlog::info("host metrics: every {} ms as {} server {} (--no-host-metrics turns them off)",
                 config_.host.interval_ms, config_.host.service, config_.server_id);
  }
  if (!config_.checks.empty()) {
    checks_ = std::make_unique<CheckRunner>(config_.checks);
    spdlog::info("checks: {} configured, reported as {} Check.<name>.*", config_.checks.size(), config_.host.service);
  }
  if (config_.plugins.dir != "none") {
    PluginOptions options = config_.plugins;
    options.service = config_.host.service;
    plugins_ = std::make_unique<PluginRunner>(std::move(options), config_.server_id, config_.statsd);
  }
  spdlog::info("late window {} s, future window {} s; TSC {:.0f} MHz; output {}", config_.late_window_s,
               config_.future_window_s, tsc_.ticks_per_second() / 1e6, output);
}

Agent::~Agent() = default;

void Agent::recover_and_start_journal(int64_t watermark) {
  const std::string path = config_.effective_journal();
  RecoveredJournal old = std::move(*recovered_);
  recovered_.reset();
  if (!old.problem.empty()) {
    spdlog::error("journal {} of an earlier agent: {}; what it had drained and not written out is lost", path,
                  old.problem);
  }
  const ring::ShmSegment& segment = reader_->segment();
  const RingIdentity ring{static_cast<uint64_t>(segment.device()), static_cast<uint64_t>(segment.inode())};
  try {
    journal_ = std::make_unique<RecoveryJournal>(
        path, RecoveryJournal::Options{config_.journal_max_bytes, 64ull << 20}, ring, segment.geometry().lane_count,
        watermark);
  } catch (const std::exception& e) {
    spdlog::error("{}; running without a crash journal: a SIGKILL would lose the open seconds", e.what());
  }
  if (journal_) {
    for (uint32_t id = 1; id <= names_.size(); ++id) journal_->add_name(names_.service(id), names_.attr(id));
    names_.on_new_name([this](std::string_view service, std::string_view attr) { journal_->add_name(service, attr); });
    aggregator_->set_journal(journal_.get());
    journaling_ = std::make_unique<JournalingSink>(*output_, *journal_, forwarder_.get());
    output_ = journaling_.get();
  }

  AgentCounters& counters = ingest_->counters();
  uint64_t no_room = 0;
  int64_t first = INT64_MAX, last = INT64_MIN;
  for (const Aggregator::Input& input : old.inputs) {
    // Ids were interned in the journal's order at start: they are the same.
    if (aggregator_->add_recovered(input)) {
      ++counters.recovered;
      first = std::min(first, second_of_ns(input.time_ns));
      last = std::max(last, second_of_ns(input.time_ns));
    } else {
      ++no_room;
    }
  }
  // Positions in another ring object (recreated since) mean nothing here.
  std::vector<ring::LanePosition> lanes;
  if (old.ring == ring) {
    for (uint32_t lane = 0; lane < old.lane_tails.size(); ++lane) {
      if (old.lane_tails[lane] != 0) lanes.push_back(ring::LanePosition{lane, old.lane_tails[lane]});
    }
  }
  if (old.unfinished_flush && forwarder_) {
    forwarder_->reuse_sequences_for(old.unfinished_flush->first, old.unfinished_flush->second);
  }
  if (journal_) {
    // The new journal holds all the old one did before it replaces it.
    journal_->commit(lanes);
    if (old.unfinished_flush) journal_->begin_flush(old.unfinished_flush->first, old.unfinished_flush->second);
    journal_->publish();
  } else if (old.found) {
    ::unlink(path.c_str());  // replayed now: read again by a next agent it would count twice
  }
  uint32_t lanes_moved = 0;
  for (const ring::LanePosition& lane : lanes) lanes_moved += reader_->skip_to(lane.lane, lane.tail) ? 1 : 0;

  const bool lost_unjournaled = old.unjournaled != 0 && old.unjournaled_max_second > old.flushed_second;
  counters.recovery_lost = no_room + old.corrupt + (lost_unjournaled ? old.unjournaled : 0);
  if (counters.recovered != 0 || lanes_moved != 0 || old.unfinished_flush) {
    spdlog::warn("recovered {} reports of seconds {}..{} that a killed agent had drained and not written out; "
                 "{} ring lanes moved past what it had read{}",
                 counters.recovered, first, last, lanes_moved,
                 old.unfinished_flush ? fmt::format("; second {} is written out again from batch sequence {}",
                                                    old.unfinished_flush->first, old.unfinished_flush->second)
                                      : "");
  }
  if (counters.recovery_lost != 0) {
    spdlog::error("{} reports the killed agent had drained are lost: {} did not fit its journal (full), {} did not "
                  "check out, {} found no open second (counted as Recovery.Lost)",
                  counters.recovery_lost, lost_unjournaled ? old.unjournaled : 0, old.corrupt, no_room);
  }
  spdlog::info("crash journal {} ({} MiB at most)", path, config_.journal_max_bytes >> 20);
}

int64_t Agent::flushable_second(int64_t now_s) const {
  const int64_t due = now_s - config_.late_window_s - 1;
  if (aggregator_ && due <= aggregator_->watermark()) return due;  // nothing to write out yet
  // The watermark follows the clock, but never past a report still waiting in
  // the ring: after a stall (SIGSTOP, an overloaded host, a slow restart) the
  // ring holds seconds the clock has left behind, and they are not late.
  auto slot_ns = [this](const ring::Slot& slot) { return slot_time_ns(slot, tsc_); };
  int64_t oldest = reader_->oldest_pending_ns(slot_ns);
  if (retired_) oldest = std::min(oldest, retired_->reader.oldest_pending_ns(slot_ns));
  if (oldest == INT64_MAX) return due;
  const int64_t oldest_second = second_of_ns(oldest);
  // A report far in the past (a back-fill with monitor_at) is late anyway:
  // the watermark is held at most kMaxHeldSeconds behind the clock.
  if (oldest_second < now_s - kMaxHeldSeconds) return due;
  return std::min(due, oldest_second - 1);
}

void Agent::flush_due(int64_t up_to_second, bool keep_draining) {
  if (up_to_second <= aggregator_->watermark()) return;
  commit_journal();  // every report of a second is journaled before its write-out begins
  const int64_t start = monotonic_ns();
  // Keep draining while a large second is written out: a stall of tens of
  // milliseconds is enough for a busy writer to fill its lane. Not at the
  // final flush: reports drained then would belong to seconds already
  // written out (late, lost); left in the ring, the next agent reads them.
  // The clock goes on meanwhile: a write-out of seconds (300 000 series
  // under load) left the ingest's "now" behind, so reports drained after
  // future_window_s were dropped as ahead of the window.
  if (keep_draining) {
    aggregator_->flush_until(up_to_second, *output_, [this] {
      set_clock(realtime_ns() / 1'000'000'000);
      poll_once();
    });
  } else {
    aggregator_->flush_until(up_to_second, *output_, {});
  }
  if (journal_) journal_->end_flush(up_to_second);  // seconds without reports are written out too
  if (forwarder_) forwarder_->complete_before(up_to_second + 1);
  const int64_t took_ms = (monotonic_ns() - start) / 1'000'000;
  last_flush_ms_ = std::max(last_flush_ms_, took_ms);
  if (took_ms >= 500) spdlog::warn("writing out second {} took {} ms", up_to_second, took_ms);
}

void Agent::set_clock(int64_t now_s) {
  now_s_ = now_s;
  ingest_->set_now(now_s);
  if (retired_) retired_->ingest->set_now(now_s);  // its ring is drained for seconds more
}

size_t Agent::poll_once() {
  Ingest& ingest = *ingest_;
  // The slots read are journaled before the writers get them back.
  size_t work = reader_->drain([&](const ring::Slot& slot) { ingest.on_slot(slot, tsc_); },
                               [&](std::span<const ring::LanePosition> lanes) {
                                 ingest.flush();
                                 commit_journal(lanes);
                               });
  ring_work_ = work;
  if (retired_) {
    // No next agent reads a retired ring: its positions are not journaled.
    Ingest& old = *retired_->ingest;
    work += retired_->reader.drain([&](const ring::Slot& slot) { old.on_slot(slot, tsc_); },
                                   [&](std::span<const ring::LanePosition>) {
                                     old.flush();
                                     commit_journal();
                                   });
  }
  for (DatagramPump* pump : {socket_.get(), udp_.get()}) {
    if (pump == nullptr) continue;
    work += pump->drain([&](std::string_view bytes, bool truncated, int64_t received_ns) {
      ingest.on_datagram(bytes, truncated, received_ns);
    });
    commit_journal();
  }
  if (statsd_stream_) {
    const int64_t received_ns = realtime_ns();
    const uint64_t refused_before = statsd_stream_->refused();
    work += statsd_stream_->receive(received_ns,
                                    [&](std::string_view lines) { ingest.on_datagram(lines, false, received_ns); });
    if (statsd_stream_->refused() != refused_before) {
      uint64_t suppressed = 0;
      if (stream_refused_log_.allow(realtime_ns(), suppressed)) {
        spdlog::warn("statsd stream socket: refused a client, {} connected already ({} refused so far, "
                     "Statsd.StreamRefused)", statsd_stream_->connections(), statsd_stream_->refused());
      }
    }
    commit_journal();
  }
  return work;
}

const health::HealthTable<Agent>& Agent::health_table() {
  using A = Agent;
  static const health::HealthTable<A> table = [] {
    health::HealthTable<A> t;
    auto ingest = [](auto field) {
      return [field](const A& a) -> uint64_t { return a.ingest_->counters().*field; };
    };
    t.counter("Reports.Ring", "", "", ingest(&AgentCounters::ring_reports))
        .counter("Reports.Socket", "", "", ingest(&AgentCounters::socket_lines))
        .counter("Ring.Dropped", "", "", ingest(&AgentCounters::ring_dropped))
        .counter("Ring.Abandoned", "", "", ingest(&AgentCounters::ring_abandoned))
        .counter("Ring.NamesFull", "", "", ingest(&AgentCounters::ring_names_full))
        .counter("Ring.BadSlots", "", "", ingest(&AgentCounters::bad_slots))
        .counter("Ring.Retired", "", "", ingest(&AgentCounters::ring_retired))
        .counter("Ring.WriterRebinds", "", "", ingest(&AgentCounters::writer_rebinds))
        .counter("Socket.BadLines", "", "", [](const A& a) { return a.ingest_->counters().bad_lines_total(); });
    // The same lines by reason (docs/socket.md), so a mapping gap shows as Lines.NoService.
    struct Reason {
      LineError error;
      monitor::Name attr;
    };
    static constexpr Reason kReasons[] = {
        {LineError::kTooLong, "Lines.TooLong"},     {LineError::kBadFormat, "Lines.BadFormat"},
        {LineError::kBadName, "Lines.BadName"},     {LineError::kBadNumber, "Lines.BadNumber"},
        {LineError::kBadType, "Lines.BadType"},     {LineError::kNoService, "Lines.NoService"}};
    for (const auto& [reason, attr] : kReasons) {
      const auto i = static_cast<size_t>(reason);
      t.counter(attr, "", "", [i](const A& a) { return a.ingest_->counters().bad_lines[i]; });
    }
    t.counter("Statsd.Events", "", "", ingest(&AgentCounters::statsd_events))
        .counter("Statsd.ServiceChecks", "", "", ingest(&AgentCounters::statsd_service_checks))
        .counter("Statsd.SetsOverLimit", "", "", ingest(&AgentCounters::sets_over_limit))
        .counter("Statsd.GaugesOverLimit", "", "", ingest(&AgentCounters::gauges_over_limit))
        .counter("Statsd.StreamRefused", "", "",
                 [](const A& a) { return a.statsd_stream_ ? a.statsd_stream_->refused() : uint64_t{0}; })
        .counter("Statsd.StreamIdleClosed", "", "",
                 [](const A& a) { return a.statsd_stream_ ? a.statsd_stream_->idle_closed() : uint64_t{0}; })
        .counter("Time.Late", "", "", ingest(&AgentCounters::late))
        .counter("Time.Future", "", "", ingest(&AgentCounters::future))
        .counter("Series.OverLimit", "", "", ingest(&AgentCounters::series_over_limit))
        .counter("Names.Refused", "", "", [](const A& a) { return a.names_.refused(); })
        .counter("Recovery.Reports", "", "", ingest(&AgentCounters::recovered))
        .counter("Recovery.Lost", "", "", ingest(&AgentCounters::recovery_lost))
        .gauge("Series.Live", "", "", [](const A& a) { return static_cast<int64_t>(a.aggregator_->live_cells()); })
        .gauge("Flush.Millis", "", "", [](const A& a) { return a.last_flush_ms_; })
        .resident_memory();

    t.when([](const A& a) { return a.journal_ != nullptr; })
        .gauge("Journal.Bytes", "", "", [](const A& a) { return static_cast<int64_t>(a.journal_->live_bytes()); })
        .counter("Journal.Unprotected", "", "", [](const A& a) { return a.journal_->unjournaled(); });

    t.when([](const A& a) { return a.sink_ != nullptr; })
        .gauge("Sink.RecordsFailed", "", "", [](const A& a) { return static_cast<int64_t>(a.sink_->records_failed()); });

    auto forward = [](auto field) {
      return [field](const A& a) -> uint64_t { return a.forwarder_->counters().*field; };
    };
    t.when([](const A& a) { return a.forwarder_ != nullptr; })
        .counter("Forward.Sent", "", "", forward(&ForwardCounters::batches_sent))
        .counter("Forward.ConnectFailures", "", "", forward(&ForwardCounters::connect_failures))
        // Seconds not written to the spool (full disk): lost, and counted here.
        .counter("Forward.SpoolFailures", "", "", forward(&ForwardCounters::spool_failures))
        // Batches the receiver said it already had (HELLO_ACK): not sent again.
        .counter("Forward.Skipped", "", "", forward(&ForwardCounters::batches_skipped))
        // Batches the full spool dropped, or that did not parse when read back.
        .counter("Forward.Dropped", "", "",
                 [](const A& a) { return a.forwarder_->spool_dropped() + a.forwarder_->counters().spool_corrupt; })
        .gauge("Forward.Waiting", "", "", [](const A& a) { return static_cast<int64_t>(a.forwarder_->spooled()); });
    t.when([](const A& a) { return a.forwarder_ != nullptr && a.forwarder_->registry_reachable().has_value(); })
        .gauge("Registry.Reachable", "", "", [](const A& a) { return *a.forwarder_->registry_reachable() ? 1 : 0; });

    t.when([](const A& a) { return a.host_ != nullptr; })
        .counter("HostMetrics.Rounds", "", "", [](const A& a) { return a.host_->counters().rounds.load(); })
        .counter("HostMetrics.RoundsDropped", "", "", [](const A& a) { return a.host_->rounds_dropped(); })
        .counter("HostMetrics.ReadErrors", "", "", [](const A& a) { return a.host_->counters().read_errors.load(); })
        .counter("HostMetrics.StatvfsTimedOut", "", "",
                 [](const A& a) { return a.host_->counters().statvfs_timed_out.load(); })
        .counter("HostMetrics.DevicesSkipped", "", "",
                 [](const A& a) { return a.host_->counters().devices_skipped.load(); })
        .counter("HostMetrics.CounterResets", "", "",
                 [](const A& a) { return a.host_->counters().counter_resets.load(); })
        .gauge("HostMetrics.CollectMicros", "", "", [](const A& a) { return a.host_->counters().collect_us.load(); });

    auto plugin = [](auto field) {
      return [field](const A& a) -> uint64_t { return (a.plugins_->counters().*field).load(); };
    };
    t.when([](const A& a) { return a.plugins_ != nullptr; })
        .counter("Plugins.Runs", "", "", plugin(&PluginCounters::runs))
        .counter("Plugins.Failed", "", "", plugin(&PluginCounters::failed))
        .counter("Plugins.TimedOut", "", "", plugin(&PluginCounters::timed_out))
        .counter("Plugins.Flooded", "", "", plugin(&PluginCounters::flooded))
        .counter("Plugins.BadLines", "", "", plugin(&PluginCounters::bad_lines))
        .counter("Plugins.Lines", "", "", plugin(&PluginCounters::lines))
        .counter("Plugins.Refused", "", "", plugin(&PluginCounters::refused))
        // Runs not started, and finished runs the loop did not take in time: their lines are lost.
        .counter("Plugins.Skipped", "", "",
                 [](const A& a) { return a.plugins_->counters().skipped.load() + a.plugins_->runs_dropped(); })
        .gauge("Plugins.Running", "", "", [](const A& a) { return a.plugins_->counters().running.load(); });

    t.when([](const A& a) { return a.checks_ != nullptr; })
        .counter("Checks.Runs", "", "", [](const A& a) { return a.checks_->runs(); })
        .counter("Checks.Down", "", "", [](const A& a) { return a.checks_->failed(); })
        .counter("Checks.Dropped", "", "", [](const A& a) { return a.checks_->rounds_dropped(); });
    return t;
  }();
  return table;
}

std::vector<std::string> Agent::health_attrs() { return health_table().attrs(); }

// Every figure goes to /metrics; to the agent's own aggregates (Monitor.Agent)
// unless switched off: the agent is what drains the ring, so it adds them itself.
bool Agent::add_self_report(monitor::Name attr, int64_t value, int32_t ops) {
  if (!config_.self_metrics) return true;
  const uint32_t id = names_.intern(kSelfService, attr.view());
  if (id == 0) return false;  // the name table is full (and says so)
  aggregator_->add(id, config_.server_id, value, static_cast<uint32_t>(ops), self_report_ns_, now_s_);
  return true;
}

void Agent::report_self(int64_t now_ns) {
  self_report_ns_ = now_ns;
  health_table().report(*this, health_);
  last_flush_ms_ = 0;  // Flush.Millis: the longest flush since the last report
  commit_journal();
}

void Agent::replace_ring_if_tampered(int64_t now_ns) {
  if (reader_->segment().header_intact() || retired_) return;
  const std::string name = config_.ring_name();
  AgentCounters& counters = ingest_->counters();
  ++counters.ring_retired;
  spdlog::error("ring {}: its header no longer says what was validated at start (another process of the ring's "
                "group rewrote it); retiring it and creating a new one ({} so far). Writers move to the new ring "
                "within about a second; the old one is drained for 5 s more",
                name, counters.ring_retired);
  reader_->segment().retire();
  std::optional<ring::RingReader> fresh;
  try {
    fresh.emplace(open_reader(true));
  } catch (const std::exception& e) {
    spdlog::error("{}; still draining the old ring", e.what());
    return;
  }
  ingest_->flush();
  // A moved reader keeps its mapping, so a name table made before the move stays good.
  const ring::NameTable old_names(reader_->segment());
  retired_.emplace(RetiredRing{std::move(*reader_), old_names, nullptr, now_ns + 5'000'000'000});
  retired_->ingest = std::make_unique<Ingest>(*aggregator_, names_, &retired_->names, config_.server_id);
  retired_->ingest->set_now(now_s_);
  reader_.emplace(std::move(*fresh));
  ring_names_.emplace(reader_->segment());
  ingest_->set_ring_names(&*ring_names_);
  rebinds_seen_ = 0;
}

void Agent::end_retired_ring(int64_t now_ns) {
  if (!retired_ || now_ns < retired_->drain_until_ns) return;
  auto keep = [&](std::span<const ring::LanePosition>) {
    retired_->ingest->flush();
    commit_journal();
  };
  while (retired_->reader.drain([&](const ring::Slot& slot) { retired_->ingest->on_slot(slot, tsc_); }, keep) != 0) {
  }
  const AgentCounters& old = retired_->ingest->counters();
  ingest_->counters().add_ring_counts(old);
  spdlog::info("stopped draining the retired ring: {} reports read from it, {} bad slots", old.ring_reports,
               old.bad_slots);
  retired_.reset();
}

void Agent::every_second(int64_t now_ns) {
  tsc_.recalibrate();
  if (statsd_stream_) {
    // A forgotten client's slot is free again (clients reconnect when they next send).
    if (statsd_stream_->close_idle(now_ns, config_.statsd_idle_timeout_s * 1'000'000'000,
                                   [&](std::string_view line) { ingest_->on_datagram(line, false, now_ns); }) > 0) {
      commit_journal();
    }
  }
  replace_ring_if_tampered(now_ns);
  end_retired_ring(now_ns);
  const ring::SweepResult sweep = reader_->sweep(now_ns);
  AgentCounters& counters = ingest_->counters();
  counters.ring_dropped += sweep.new_drops + sweep.new_no_lane_drops;
  counters.ring_abandoned += sweep.abandoned_slots;
  counters.ring_names_full += sweep.new_names_full;
  const uint64_t rebinds = ring::atomic_field(reader_->segment().header().writer_rebinds).load(std::memory_order_relaxed);
  if (rebinds != rebinds_seen_) {
    spdlog::info("{} writer processes moved to this ring from a retired or removed one", rebinds - rebinds_seen_);
    counters.writer_rebinds += rebinds - rebinds_seen_;
    rebinds_seen_ = rebinds;
  }
  if (sweep.lanes_reclaimed != 0) {
    spdlog::info("freed {} ring lanes of exited writers ({} half-written slots skipped)", sweep.lanes_reclaimed,
                 sweep.abandoned_slots);
  }
  if (sweep.new_drops + sweep.new_no_lane_drops != 0) {
    std::string by_writer;
    for (size_t i = 0; i < sweep.drops_by_writer.size() && i < 5; ++i) {
      by_writer += fmt::format("{}pid {}: {}", i == 0 ? "" : ", ", sweep.drops_by_writer[i].pid,
                               sweep.drops_by_writer[i].drops);
    }
    spdlog::warn("writers dropped {} reports in the last second, ring lanes full ({} total){}{}{}",
                 sweep.new_drops + sweep.new_no_lane_drops, counters.ring_dropped,
                 by_writer.empty() ? "" : "; ", by_writer,
                 sweep.new_no_lane_drops != 0 ? fmt::format("; {} found no free lane", sweep.new_no_lane_drops) : "");
  }
  if (sweep.new_names_full != 0) {
    spdlog::warn("writers failed to intern {} names: name table full ({} entries)", sweep.new_names_full,
                 ring_names_->capacity());
  }
  add_host_rounds();
  report_self(now_ns);
}

void Agent::add_host_rounds() {
  host_rounds_.clear();
  if (host_) host_->take(host_rounds_);
  if (checks_) checks_->take(host_rounds_);
  for (const HostRound& round : host_rounds_) add_host_round(round);
  if (!plugins_) return;
  plugin_runs_.clear();
  plugins_->take(plugin_runs_);
  for (const PluginRun& run : plugin_runs_) {
    // Lines without a time of their own happened when the plugin ran.
    ingest_->on_lines(run.lines, run.ended_ns);
    add_host_round(PluginRunner::health_round(run));
  }
}

void Agent::add_host_round(const HostRound& round) {
  for (const HostSample& sample : round.samples) {
    // 0: the name table is full; intern() counts the report in Names.Refused.
    const uint32_t id = names_.intern(config_.host.service, sample.attr);
    if (id == 0) continue;
    aggregator_->add(id, config_.server_id, sample.value, sample.ops, round.time_ns, now_s_);
  }
}

int Agent::run() {
  int64_t next_second_ns = 0;
  int ring_idle_rounds = 0;
  while (g_stop == 0) {
    const int64_t now_ns = realtime_ns();
    set_clock(now_ns / 1'000'000'000);
    const size_t work = poll_once();
    // Also after the clock stepped back: waiting the step out, the TSC would
    // keep its old anchor and every report would look ahead of the window.
    if (real_time_due(now_ns, next_second_ns, 1'000'000'000)) {
      every_second(now_ns);
      next_second_ns = (now_s_ + 1) * 1'000'000'000;
    }
    flush_due(flushable_second(now_s_));
    ring_idle_rounds = ring_work_ != 0 ? 0 : ring_idle_rounds + 1;
    if (work != 0) continue;
    // Nothing waiting: sleep, briefly at first so a burst finds the lanes
    // emptied quickly, longer once the ring is quiet, but never so long that
    // one writer's burst could fill a lane meanwhile (8192 slots at 40 M/s is
    // 200 us). Socket data wakes us at once, so socket work alone does not
    // shorten the sleep: each short one is a timer and a wake-up, which cost
    // a busy statsd stream a fifth of its CPU.
    const long sleep_ns = ring_idle_rounds < 100 ? 50'000 : 200'000;
    timespec timeout{0, sleep_ns};
    pollfd pfds[3] = {{socket_ ? socket_->fd() : -1, POLLIN, 0},
                      {udp_ ? udp_->fd() : -1, POLLIN, 0},
                      {statsd_stream_ ? statsd_stream_->fd() : -1, POLLIN, 0}};
    ppoll(pfds, 3, &timeout, nullptr);
  }

  spdlog::info("stopping: draining and flushing the last seconds");
  while (poll_once() != 0) {
  }
  for (DatagramPump* pump : {socket_.get(), udp_.get()}) {
    if (pump == nullptr) continue;
    ingest_->set_now(realtime_ns() / 1'000'000'000);
    pump->stop_and_drain([&](std::string_view bytes, bool truncated, int64_t received_ns) {
      ingest_->on_datagram(bytes, truncated, received_ns);
    });
    commit_journal();
  }
  every_second(realtime_ns());
  const int64_t now_s = realtime_ns() / 1'000'000'000;
  // Every open second, also those ahead of a clock that stepped back: the
  // journal is removed below, so a second left open here would be lost.
  flush_due(std::max(now_s + config_.future_window_s, aggregator_->newest_open_second()), false);
  if (forwarder_) {
    forwarder_->stop(std::chrono::seconds(2));  // the last seconds, if the next hop answers
    spdlog::info("forwarder: {} batches sent, {} waiting in the spool", forwarder_->counters().batches_sent,
                 forwarder_->spooled());
  }
  // Every second is written out and every slot read released: nothing for a
  // next agent to recover.
  if (journal_) journal_->remove();
  const AgentCounters& c = ingest_->counters();
  spdlog::info("stopped: {} ring reports, {} socket lines, {} bad lines, {} ring drops, {} abandoned slots, "
               "{} late, {} future, {} records written, {} records failed",
               c.ring_reports, c.socket_lines, c.bad_lines_total(), c.ring_dropped,
               c.ring_abandoned, c.late, c.future, sink_ ? sink_->records_written() : 0,
               sink_ ? sink_->records_failed() : 0);
  return 0;
}

}  // namespace monitor::agent
