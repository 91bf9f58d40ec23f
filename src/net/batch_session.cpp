#include "net/batch_session.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "net/endpoint.hpp"
#include "net/spawn.hpp"

namespace monitor::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

BatchSession::BatchSession(std::shared_ptr<FrameConnection> connection, std::string peer)
    : connection_(std::move(connection)), peer_(std::move(peer)), room_(connection_->socket().get_executor()) {}

void BatchSession::ack(uint64_t sender_id, uint64_t sequence) {
  std::string out;
  wire::encode(out, wire::Ack{sender_id, sequence});
  connection_->send(std::move(out));
  room_.cancel();
}

void BatchSession::close(std::string reason) {
  if (close_reason_.empty()) close_reason_ = std::move(reason);
  connection_->close();
  room_.cancel();
}

BatchListener::BatchListener(tcp::acceptor& acceptor, Options options, PolicyFactory make_policy)
    : acceptor_(acceptor), options_(options), make_policy_(std::move(make_policy)) {}

void BatchListener::start() { net::spawn(acceptor_.get_executor(), accept_loop(), "the batch listener"); }

void BatchListener::stop() {
  stopping_ = true;
  for (const auto& session : sessions_) session->close("stopping");
}

void BatchListener::refuse(tcp::socket& socket) {
  // Each connection holds buffers and a session: a peer opening them without
  // end must not exhaust the daemon's memory or descriptors.
  ++counters_.connections_refused;
  boost::system::error_code ignored;
  const auto remote = socket.remote_endpoint(ignored);
  socket.close(ignored);
  uint64_t suppressed = 0;
  if (refusal_log_.allow(realtime_ns(), suppressed)) {
    spdlog::warn("refused a batch connection from {}: {} are open, max_connections ({} refused so far)",
                 net::format_endpoint(remote), sessions_.size(), counters_.connections_refused);
  }
}

asio::awaitable<void> BatchListener::accept_loop() {
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(kNoThrow);
    if (ec) {
      if (stopping_ || !acceptor_.is_open()) co_return;
      spdlog::warn("accept: {}", ec.message());
      continue;
    }
    if (sessions_.size() >= options_.max_connections) {
      refuse(socket);
      continue;
    }
    ++counters_.connections;
    // An ACK is a small frame: held back until the last one is acknowledged
    // (Nagle), it waited out the sender's delayed ACK, 40 ms.
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const std::string peer = net::format_endpoint(socket.remote_endpoint(ignored));
    auto connection = std::make_shared<FrameConnection>(std::move(socket), FrameConnection::Limits{});
    auto session = std::make_shared<BatchSession>(connection, peer);
    session->policy_ = make_policy_(*session);
    sessions_.insert(session);
    net::spawn(acceptor_.get_executor(), FrameConnection::write_loop(connection, 10s), "a connection's writer");
    net::spawn(acceptor_.get_executor(), run(session), "a batch session");
  }
}

asio::awaitable<void> BatchListener::run(std::shared_ptr<BatchSession> session) {
  FrameConnection& connection = *session->connection_;
  std::string reason = "peer closed";
  if (options_.tls) {
    reason = co_await connection.start_tls(options_.tls->current(), true, options_.handshake_timeout);
    if (!reason.empty()) {
      ++counters_.tls_failures;
    } else if (reason = identity_refusal(*connection.peer_identity(), nullptr); !reason.empty()) {
      ++counters_.identity_refused;
      connection.close();
    }
    if (!reason.empty()) log_refusal(session->peer_, reason);
    if (reason.empty()) reason = "peer closed";
  }
  while (connection.open()) {
    if (!session->policy_->has_room()) {
      // Back-pressure: not reading lets TCP push back on the sender.
      session->room_.expires_after(1s);
      co_await session->room_.async_wait(kNoThrow);
      continue;
    }
    ReadResult read = co_await connection.read_frame(options_.idle_timeout);
    if (!read.frame()) {
      if (read.kind == ReadResult::Kind::kBadFrame) ++counters_.bad_frames;
      reason = read.failure("idle timeout");
      break;
    }
    if (const wire::WireError error = handle(*session, read); error != wire::WireError::kOk) {
      ++counters_.bad_frames;
      reason = std::string(wire::wire_error_name(error));
      break;
    }
  }
  if (!session->close_reason_.empty()) reason = session->close_reason_;
  connection.close();
  spdlog::info("{}: connection closed ({})", session->peer_, reason);
  session->policy_->on_closed(reason);
  sessions_.erase(session);
}

void BatchListener::log_refusal(const std::string& peer, const std::string& reason) {
  uint64_t suppressed = 0;
  if (refusal_log_.allow(realtime_ns(), suppressed)) {
    spdlog::warn("{}: {} ({} TLS failures, {} identities refused so far; {} such lines held back)", peer, reason,
                 counters_.tls_failures, counters_.identity_refused, suppressed);
  }
}

std::string BatchListener::identity_refusal(const PeerIdentity& identity, const wire::Hello* hello) const {
  if (std::find(options_.peers.begin(), options_.peers.end(), identity.role) == options_.peers.end()) {
    return fmt::format("refused: the certificate of {} is not of a part that sends here", identity.text());
  }
  if (hello == nullptr) return {};
  // What the certificate names is what the peer is: its role, and an agent's
  // sender id or a proxy's name, so it cannot speak as another sender.
  const bool same = identity.role == hello->role &&
                    (identity.role == wire::Role::kAgent ? agent_sender_id(identity) == hello->sender_id
                                                         : identity.name == hello->sender_name);
  if (same) return {};
  return fmt::format("refused: the certificate of {} may not speak as {} {} ({})", identity.text(),
                     wire::role_name(hello->role), hello->sender_id, hello->sender_name);
}

wire::WireError BatchListener::handle(BatchSession& session, const ReadResult& read) {
  wire::WireError error = wire::WireError::kOk;
  switch (read.type) {
    case wire::FrameType::kHello: {
      wire::Hello hello;
      error = wire::decode(read.payload, hello);
      if (error != wire::WireError::kOk) break;
      if (const auto& identity = session.connection_->peer_identity()) {
        if (std::string refusal = identity_refusal(*identity, &hello); !refusal.empty()) {
          ++counters_.identity_refused;
          log_refusal(session.peer_, refusal);
          session.close(std::move(refusal));
          break;
        }
      }
      session.hello_ = hello;
      const wire::HelloAck ack = session.policy_->on_hello(hello);
      std::string out;
      wire::encode(out, ack);
      session.send(std::move(out));
      spdlog::info("{}: {} {} ({}) connected, skip up to batch {}", session.peer_, wire::role_name(hello.role),
                   hello.sender_id, hello.sender_name, ack.last_sequence);
      break;
    }
    case wire::FrameType::kDict: {
      std::vector<wire::DictEntry> entries;
      error = session.dictionary_.define(read.payload, entries);
      if (error == wire::WireError::kOk) session.policy_->on_names(entries);
      break;
    }
    case wire::FrameType::kBatch: {
      if (read.payload.size() > options_.max_batch_payload) {
        // A proxy renumbers for the next hop; past this it might not fit a
        // frame. Senders cut their batches at kBatchPayloadBudget, far below.
        error = wire::WireError::kTooLarge;
        break;
      }
      wire::Batch batch;
      error = session.dictionary_.decode_batch(read.payload, batch);
      if (error != wire::WireError::kOk) break;
      // A batch before HELLO, or an agent's batch for another sender: only a
      // proxy relays other senders' batches.
      const auto& hello = session.hello_;
      if (!hello || (hello->role == wire::Role::kAgent && batch.sender_id != hello->sender_id)) {
        error = wire::WireError::kBadPayload;
        break;
      }
      session.policy_->on_batch(std::move(batch));
      break;
    }
    case wire::FrameType::kWatermark: {
      wire::Watermark watermark;
      error = wire::decode(read.payload, watermark);
      if (error != wire::WireError::kOk) break;
      // Only the connection's own peer speaks for it.
      if (!session.hello_ || watermark.sender_id != session.hello_->sender_id) {
        error = wire::WireError::kBadPayload;
        break;
      }
      session.policy_->on_watermark(watermark.complete_before);
      break;
    }
    case wire::FrameType::kHeartbeat: {
      wire::Heartbeat heartbeat;
      error = wire::decode(read.payload, heartbeat);
      if (error != wire::WireError::kOk) break;
      // Answered, so a sender can tell a live receiver from a hung one.
      std::string out;
      wire::encode(out, wire::Heartbeat{options_.own_id, realtime_ns(), session.policy_->heartbeat_members()});
      session.send(std::move(out));
      break;
    }
    case wire::FrameType::kClose: {
      wire::Close close;
      (void)wire::decode(read.payload, close);
      session.close("peer said: " + close.reason);
      break;
    }
    default:
      error = wire::WireError::kUnknownType;  // a sender has no business sending the others
      break;
  }
  return error;
}

}  // namespace monitor::net
