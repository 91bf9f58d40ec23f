// The one sender of the batch protocol (docs/protocol.md): an agent's
// forwarder and every proxy's link to its next hop. At least once: a part
// handed to submit() is acknowledged by the next hop or written to this
// sender's on-disk spool before its `done` runs; a part written with spool()
// leaves the spool only once acknowledged. A next hop that is down costs disk,
// not data.
//
// Parts go out as a window: live parts (connected, spool empty) are sent at
// once; spooled parts are read ahead from the spool, many in flight, and
// popped oldest first as ACKs arrive. Past `max_unacked_bytes` in flight,
// submitted parts go to the spool, which keeps their order. A next hop that
// does not answer a heartbeat within the timeout, or that breaks the protocol,
// is dropped; what it had not acknowledged goes back to the spool and the next
// address is tried after a back-off that doubles up to `max_backoff`.
//
// Runs on one io_context: call everything but spool(), spooled() and
// spool_dropped() (any thread) from its thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include "common/log_throttle.hpp"
#include "net/frame_connection.hpp"
#include "net/tls.hpp"
#include "wire/messages.hpp"
#include "wire/spool.hpp"
#include "wire/spool_record.hpp"

namespace monitor::net {

/// Monotonic; atomics so a daemon's health thread may read them.
struct SenderCounters {
  std::atomic<uint64_t> parts_sent{0};     // acknowledged by the next hop
  std::atomic<uint64_t> parts_skipped{0};  // spooled parts the next hop said it had (HELLO_ACK)
  std::atomic<uint64_t> parts_spooled{0};  // submitted parts that went to the spool
  std::atomic<uint64_t> records_sent{0};   // in acknowledged live parts
  std::atomic<uint64_t> spool_failures{0}; // a submitted part that could not be spooled either
  std::atomic<uint64_t> spool_corrupt{0};  // spooled parts that did not parse, dropped
  std::atomic<uint64_t> parts_too_large{0};  // parts whose frame would pass kMaxPayload
  std::atomic<uint64_t> connects{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> heartbeat_timeouts{0};
  std::atomic<uint64_t> bad_frames{0};
  std::atomic<uint64_t> tls_refused{0};       // next hops whose handshake failed or whose certificate is of another role
  std::atomic<uint64_t> members_refused{0};   // member lists in heartbeats from a next hop that is not a Bonnie
};

class BatchSender {
 public:
  struct Options {
    std::string name;  // for logs
    std::string next_hop_noun = "it";              // "spooling until <it> answers"
    std::string no_address = "no address known";  // why there is none to try
    std::filesystem::path spool_dir;
    uint64_t spool_max_bytes = 256ull << 20;
    wire::Hello hello;  // who this sender is
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds heartbeat_interval{1000};
    std::chrono::milliseconds heartbeat_timeout{5000};
    std::chrono::milliseconds first_backoff{500};
    std::chrono::milliseconds max_backoff{2000};
    size_t max_unacked_bytes = 8u << 20;  // beyond this, parts wait in the spool
    // The spool holds one sender's seconds in order (an agent's): before a
    // spooled part, a watermark tells the next hop every second before the
    // part's oldest is delivered, so a replay after an outage finishes
    // minutes as it catches up. Not so for a proxy, whose spool interleaves
    // many senders.
    bool seconds_in_order = false;
    // TLS: the next hop shows a certificate of the deployment's CA whose role
    // is among `next_hops`; only a Bonnie's heartbeat may carry a member list.
    // Null: plain TCP.
    std::shared_ptr<TlsContext> tls;
    std::vector<wire::Role> next_hops;
  };
  /// The address to connect to next ("" while there is none). `last_failed`
  /// says the previous one failed or died, so a list can move on. May block
  /// (a registry read): it runs on the sender's thread between connections.
  using AddressSource = std::function<std::string(bool last_failed)>;
  /// Runs once per submitted part: true when the part was acknowledged
  /// downstream or is on disk, false when it is neither (it must not be
  /// acknowledged upstream: its sender keeps it and sends it again).
  using Done = std::function<void(bool kept)>;
  using MembersHandler = std::function<void(const std::vector<std::string>&)>;

  /// Opens the spool; an error names the reason. Idle until start().
  [[nodiscard]] static boost::system::result<std::unique_ptr<BatchSender>> open(boost::asio::io_context& io,
                                                                                Options options,
                                                                                AddressSource next_address);
  ~BatchSender();
  BatchSender(const BatchSender&) = delete;
  BatchSender& operator=(const BatchSender&) = delete;

  /// Connects and keeps connecting until stop().
  void start();
  void stop();

  /// This sender's id for a name, the id submitted parts' records must use.
  uint32_t name_id(std::string_view service, std::string_view attr);

  /// Delivers a part (records named by name_id()), at least once; `done(true)`
  /// runs once it is acknowledged or spooled, `done(false)` if it could be
  /// neither (a full spool disk while the next hop is down).
  void submit(wire::Batch part, Done done);

  /// Appends an encoded spool record (wire::encode_spool_record: a part with
  /// its own names) to the spool, to be sent in turn. Any thread; returns once
  /// it is on disk, or the error.
  [[nodiscard]] boost::system::result<void> spool(std::string_view record);

  /// Tells the next hop that every second before `complete_before` is among
  /// the parts submitted or spooled so far: at once when every one of them is
  /// on the wire, otherwise once the spool ahead of it is.
  void announce(int64_t complete_before);

  /// Hands the spooled parts over, oldest first, to `take`, for a next hop
  /// that is gone for good (a judger removed from the registry): stops the
  /// sender, then for each part calls take(part, finished); the part leaves
  /// this spool only once finished(true) says it is kept elsewhere, so a
  /// crash in between sends it again rather than losing it. finished(false)
  /// stops the hand-over (the part stays). Runs on the event loop.
  using Finished = std::function<void(bool kept)>;
  using Take = std::function<void(wire::SpoolRecord part, Finished finished)>;
  void hand_over(Take take);
  bool handing_over() const noexcept { return handing_over_; }

  /// Called with the member list of each heartbeat reply.
  void on_members(MembersHandler handler) { on_members_ = std::move(handler); }

  const std::string& name() const noexcept { return options_.name; }
  bool connected() const noexcept { return connection_ != nullptr; }
  const std::string& address() const noexcept { return address_; }
  /// Parts in the spool (sent or not, not yet acknowledged). Any thread.
  uint64_t spooled() const;
  uint64_t spool_dropped() const;
  size_t unacked() const noexcept { return in_flight_.size(); }
  const SenderCounters& counters() const noexcept { return counters_; }

 private:
  struct InFlight {
    uint64_t sender_id;
    uint64_t sequence;
    size_t bytes;
    Done done;                                // live parts only
    std::optional<wire::Batch> part;          // live parts only
    std::optional<wire::Spool::Entry> entry;  // spooled parts only (body cleared)
    bool sent = true;  // false: settled without sending (corrupt, or the next hop had it), popped in turn
  };

  BatchSender(boost::asio::io_context& io, Options options, AddressSource next_address,
              std::unique_ptr<wire::Spool> spool);
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<std::shared_ptr<FrameConnection>> connect(const std::string& address);
  boost::asio::awaitable<void> heartbeat_loop(std::shared_ptr<FrameConnection> connection);
  boost::asio::awaitable<void> read_loop(std::shared_ptr<FrameConnection> connection);
  // Sends now; on success an entry is in flight, holding a live part (non-null
  // `done`, moved in) or the spool entry it came from.
  bool send(wire::Batch& part, Done* done, std::optional<wire::Spool::Entry> entry);
  bool spool_part(const wire::Batch& part);  // false: not on disk, logged and counted
  // Sends spooled parts while the window has room; then a pending watermark.
  void pump();
  bool acknowledged(const wire::Ack& ack);  // false: not the ACK owed next
  void send_watermark(int64_t complete_before);
  void lost();
  void hand_over_next(std::shared_ptr<Take> take);

  boost::asio::io_context& io_;
  const Options options_;
  AddressSource next_address_;
  MembersHandler on_members_;

  mutable std::mutex spool_mutex_;  // spool() comes from another thread
  std::unique_ptr<wire::Spool> spool_;
  bool spool_sent_ = false;  // every spooled part is on the wire of this connection (none to read ahead)

  // Names: ids stable for the sender's life; which were defined on this connection.
  std::vector<std::pair<std::string, std::string>> names_;  // id - 1 -> names
  std::unordered_map<std::string, uint32_t> ids_;
  std::string key_;
  std::vector<bool> defined_;
  std::vector<uint32_t> link_ids_;  // a spooled part's name ids -> this sender's (pump's scratch)

  std::shared_ptr<FrameConnection> connection_;
  std::string address_;
  uint64_t skip_through_ = 0;  // the next hop has this sender's own batches up to here (HELLO_ACK)
  std::deque<InFlight> in_flight_;
  size_t unacked_bytes_ = 0;
  int64_t complete_before_ = 0;  // announce()d
  int64_t announced_ = 0;        // what this connection was told
  boost::asio::steady_timer retry_;
  bool stopping_ = false;
  bool handing_over_ = false;
  SenderCounters counters_;
  LogThrottle refusal_log_{30'000'000'000};  // a next hop refused on every retry is said every 30 s
};

}  // namespace monitor::net
