// The agent's way to the next hop: cuts seconds into sequenced batches, spools them and sends them with the batch
// sender.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>

#include "agent/aggregate_record.hpp"
#include "agent/name_registry.hpp"
#include "registry/live_registration.hpp"
#include "registry/registry.hpp"
#include "wire/messages.hpp"
#include "net/batch_sender.hpp"
#include "net/tls.hpp"

namespace monitor::agent {

/// Counters of the forwarder, read at one moment; monotonic.
struct ForwardCounters {
  uint64_t batches_spooled = 0;
  uint64_t batches_sent = 0;      // acknowledged by the receiver
  uint64_t batches_skipped = 0;   // the receiver had them already
  uint64_t spool_failures = 0;    // a batch that could not be spooled (full disk)
  uint64_t spool_corrupt = 0;     // spool records that did not parse, dropped
  uint64_t too_large = 0;         // batches a receiver could not take, dropped (a bug; logged)
  uint64_t connect_failures = 0;
};

/// Sends each finished second to the next hop as batches of at most
/// kBatchPayloadBudget bytes, each under its own sequence, at least once:
/// to a fixed address, or to a proxy of the agent's data centre picked at
/// random from the registry's live `proxies`, another one after a failure.
/// every batch goes to the on-disk spool first and leaves it only when the
/// receiver acknowledges it, so batches outlive a receiver that is down and an
/// agent that restarts. As an AggregateSink it is fed by the agent's thread;
/// the one batch sender (net/batch_sender.hpp) does the network I/O on a
/// thread of its own, a window of spooled batches in flight.
class Forwarder final : public AggregateSink {
 public:
  struct Options {
    std::string address;   // host:port of the next hop; empty: a live proxy of `dc` from the registry
    std::string registry;  // registry address, used when `address` is empty
    std::string dc;
    std::string spool_dir;
    uint64_t spool_max_bytes = 256ull << 20;
    uint64_t sender_id = 0;
    std::string sender_name;
    int64_t server_id = 0;  // this host's, in its registry entry (monitorctl host list)
    std::shared_ptr<net::TlsContext> tls;  // null: plain TCP
  };

  /// Opens the spool (throws std::runtime_error naming the problem) and starts
  /// the sender thread.
  Forwarder(Options options, const NameRegistry& names);
  ~Forwarder() override;

  void write(const AggregateRecord& record) override;
  void end_second(int64_t second) override;
  /// Every second before `second` is written out (spooled, or had nothing):
  /// announced to the next hop as a watermark once the spool ahead of it is sent.
  void complete_before(int64_t second);

  /// Gives the sender up to `drain` to empty the spool, then stops it;
  /// unsent batches stay in the spool for the next start.
  void stop(std::chrono::milliseconds drain = std::chrono::milliseconds(0));

  ForwardCounters counters() const;

  /// The sequence the first batch of `second` gets if it is written out next.
  uint64_t first_sequence_for(int64_t second) const;
  /// Second `second`, when written out next, starts at `first` again, not at
  /// next_sequence(): it is one a killed agent had begun to write out, and
  /// its batches, cut the same way, reuse the sequences they had, so a
  /// receiver drops those it already has as duplicates. After it, sequences
  /// go on above every one ever handed out.
  void reuse_sequences_for(int64_t second, uint64_t first);
  /// Batches waiting in the spool, and batches the full spool dropped.
  uint64_t spooled() const { return sender_->spooled(); }
  /// Whether the registry answered the agent's last refresh; nullopt without a registry.
  std::optional<bool> registry_reachable() const {
    return registration_ ? std::optional<bool>(registration_->reachable()) : std::nullopt;
  }
  uint64_t spool_dropped() const { return sender_->spool_dropped(); }

 private:
  // The address of a live proxy of the agent's data centre (not the one that
  // just failed while there is another), or the fixed one. Blocks on the
  // registry: runs on the sender's thread between connections.
  std::string next_address(bool last_failed);

  const Options options_;
  const NameRegistry& names_;
  std::unique_ptr<registry::Registry> registry_;  // thread-safe: the sender thread and the registration use it
  std::unique_ptr<registry::LiveRegistration> registration_;  // agents/<host>-<sender>, with the registry
  std::string last_address_;  // the sender's thread only
  // What the entry says of the host (monitorctl host list): its name and addresses at the start.
  std::string host_name_;
  std::vector<std::string> host_ips_;
  static std::vector<std::string> host_addresses();
  boost::json::object registration_value() const;
  // Cutting's own counts; the sender's are in sender_->counters().
  std::atomic<uint64_t> batches_spooled_{0};
  std::atomic<uint64_t> spool_failures_{0};
  std::atomic<uint64_t> too_large_{0};

  // Cuts the collected second into batches under kBatchPayloadBudget and
  // spools each under the next sequence. Agent thread.
  void spool_second(int64_t second);
  // Persists the sequence the next batch gets, before that batch is spooled.
  bool save_next_sequence(uint64_t next);

  // The second being collected (agent thread only); name_id is the registry's.
  std::vector<wire::BatchRecord> records_;
  std::vector<uint32_t> local_ids_;  // registry id -> id inside the batch being cut, 0 = none yet
  std::string scratch_;              // a record's encoding, to measure it

  mutable std::mutex mutex_;  // guards the sequences below
  // Dense: +1 per batch, kept in <spool_dir>/next-sequence across restarts.
  uint64_t next_sequence_ = 1;
  uint64_t saved_next_ = 0;    // the highest next-sequence persisted: never lowered
  uint64_t reuse_from_ = 0;    // nonzero: second reuse_second_ starts here (reuse_sequences_for)
  int64_t reuse_second_ = 0;

  boost::asio::io_context io_;
  std::unique_ptr<net::BatchSender> sender_;
  std::thread thread_;  // runs io_
  std::atomic<bool> stopped_{false};
};

/// A stable sender id for this host and ring: a hash of both.
uint64_t default_sender_id(const std::string& ring_name);

}  // namespace monitor::agent
