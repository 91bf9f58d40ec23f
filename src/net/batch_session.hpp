// The one receiver of the batch protocol (docs/protocol.md), for the judger
// and both kinds of proxy: a listener that accepts up to a bound of
// connections, and per connection a session that reads HELLO, DICT, BATCH,
// WATERMARK, HEARTBEAT and CLOSE frames with a deadline on every read, checks
// each against the protocol (a batch before HELLO, an agent speaking for
// another sender, a frame too large) and hands what passes to the daemon's
// SessionPolicy: the judger dedups and stores, a proxy routes and spools.
// A policy acknowledges a batch (BatchSession::ack) only once it is kept.
//
// Runs on one io_context; nothing here is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/log_throttle.hpp"
#include "net/frame_connection.hpp"
#include "net/tls.hpp"
#include "wire/dictionary.hpp"
#include "wire/messages.hpp"

namespace monitor::net {

class BatchSession;

/// A daemon's handling of one session's frames. Created per connection.
class SessionPolicy {
 public:
  virtual ~SessionPolicy() = default;
  /// The peer said who it is: what the HELLO_ACK answers (this receiver, and
  /// the sequence up to which the sender may skip its own spooled batches).
  virtual wire::HelloAck on_hello(const wire::Hello& hello) = 0;
  /// Names the peer defined; the session's dictionary already holds them.
  virtual void on_names(const std::vector<wire::DictEntry>& /*entries*/) {}
  /// A batch that passed the protocol's checks, its records named by the
  /// session's dictionary. Acknowledge it with BatchSession::ack() once kept,
  /// now or later, in the order batches came; or close the session.
  virtual void on_batch(wire::Batch batch) = 0;
  /// The peer's own watermark: every second before it came ahead of it.
  virtual void on_watermark(int64_t /*complete_before*/) {}
  /// The members a heartbeat reply carries (a Bonnie's list for Clydes).
  virtual std::vector<std::string> heartbeat_members() { return {}; }
  /// False while the policy holds as much unacknowledged as it may: the
  /// session stops reading (TCP pushes back on the sender) until make_room().
  virtual bool has_room() const { return true; }
  /// The session ended; `reason` is logged by the session.
  virtual void on_closed(std::string_view /*reason*/) {}
};

class BatchSession : public std::enable_shared_from_this<BatchSession> {
 public:
  BatchSession(std::shared_ptr<FrameConnection> connection, std::string peer);
  BatchSession(const BatchSession&) = delete;
  BatchSession& operator=(const BatchSession&) = delete;

  const std::string& peer() const noexcept { return peer_; }
  const std::optional<wire::Hello>& hello() const noexcept { return hello_; }
  const wire::ReceiveDictionary& dictionary() const noexcept { return dictionary_; }
  SessionPolicy& policy() noexcept { return *policy_; }
  bool open() const noexcept { return connection_->open(); }

  /// Acknowledges a batch: the sender may forget it.
  void ack(uint64_t sender_id, uint64_t sequence);
  /// Queues encoded frames; false when the connection is closing or its
  /// queue is full (the peer does not read).
  bool send(std::string frames) { return connection_->send(std::move(frames)); }
  /// Ends the session; `reason` is what its log line says.
  void close(std::string reason);
  /// The policy has room again: reading resumes.
  void make_room() { room_.cancel(); }

 private:
  friend class BatchListener;
  std::shared_ptr<FrameConnection> connection_;
  std::string peer_;
  std::unique_ptr<SessionPolicy> policy_;
  std::optional<wire::Hello> hello_;
  wire::ReceiveDictionary dictionary_;
  boost::asio::steady_timer room_;  // cancelled when the policy has room again
  std::string close_reason_;
};

/// Counters of a listener; monotonic but `live`.
struct ReceiverCounters {
  uint64_t connections = 0;
  uint64_t connections_refused = 0;  // at max_connections
  uint64_t bad_frames = 0;           // frames that failed the protocol's checks; each closed its session
  uint64_t tls_failures = 0;         // handshakes that failed or timed out (no certificate of the CA, not TLS)
  uint64_t identity_refused = 0;     // a certificate whose role may not connect here, or a HELLO it does not name
};

/// Accepts batch connections on an acceptor the daemon bound, at most
/// `max_connections` at once, and runs a session for each.
class BatchListener {
 public:
  struct Options {
    uint64_t own_id = 0;  // in heartbeat replies
    size_t max_connections = 1024;
    std::chrono::milliseconds idle_timeout{60'000};  // no frame within it closes the session
    size_t max_batch_payload = wire::kMaxPayload;   // a proxy refuses batches it could not relay
    // TLS: each peer shows a certificate of the deployment's CA whose role is
    // among `peers`, and speaks only as the sender its certificate names.
    // Null: plain TCP, each peer as what its HELLO says.
    std::shared_ptr<TlsContext> tls;
    std::vector<wire::Role> peers;
    std::chrono::milliseconds handshake_timeout{10'000};
  };
  using PolicyFactory = std::function<std::unique_ptr<SessionPolicy>(BatchSession&)>;

  BatchListener(boost::asio::ip::tcp::acceptor& acceptor, Options options, PolicyFactory make_policy);

  /// Starts accepting on the acceptor's io_context.
  void start();
  /// Closes every session (the acceptor is the daemon's to close).
  void stop();

  const std::set<std::shared_ptr<BatchSession>>& sessions() const noexcept { return sessions_; }
  const ReceiverCounters& counters() const noexcept { return counters_; }

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> run(std::shared_ptr<BatchSession> session);
  // One frame: kOk, or why the session must close.
  wire::WireError handle(BatchSession& session, const ReadResult& read);
  void refuse(boost::asio::ip::tcp::socket& socket);
  void log_refusal(const std::string& peer, const std::string& reason);
  // Why a TLS peer may not connect here or say this HELLO; empty if it may.
  std::string identity_refusal(const PeerIdentity& identity, const wire::Hello* hello) const;

  boost::asio::ip::tcp::acceptor& acceptor_;
  const Options options_;
  PolicyFactory make_policy_;
  std::set<std::shared_ptr<BatchSession>> sessions_;
  ReceiverCounters counters_;
  LogThrottle refusal_log_;
  bool stopping_ = false;
};

}  // namespace monitor::net
