// One peer's framed TCP connection (docs/protocol.md) on Asio coroutines: a
// reader with a deadline on every read and a writer fed by a bounded queue.
#pragma once

#include <chrono>
#include <memory>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "net/tls.hpp"
#include "wire/frame.hpp"

namespace monitor::net {

/// What read_frame() got.
struct ReadResult {
  enum class Kind { kFrame, kTimeout, kClosed, kBadFrame };
  Kind kind = Kind::kClosed;
  wire::FrameType type{};
  std::string payload;
  wire::WireError wire_error = wire::WireError::kOk;  // for kBadFrame
  boost::system::error_code error;                   // for kClosed

  bool frame() const noexcept { return kind == Kind::kFrame; }
  /// Why there is no frame, for a log line: `timeout_reason`, "peer closed",
  /// or the name of the check the frame failed.
  std::string failure(std::string_view timeout_reason) const {
    switch (kind) {
      case Kind::kTimeout: return std::string(timeout_reason);
      case Kind::kBadFrame: return std::string(wire::wire_error_name(wire_error));
      default: return "peer closed";
    }
  }
};

/// Not thread-safe: use it from coroutines of one io_context (a session's
/// reader and its write_loop()). Destroying it closes the socket.
class FrameConnection {
 public:
  struct Limits {
    size_t max_queued_bytes = 16u << 20;  // send() refuses beyond this
  };

  FrameConnection(boost::asio::ip::tcp::socket socket, Limits limits);
  ~FrameConnection();

  /// Makes this a TLS connection before any frame: the handshake, as the
  /// accepting or the connecting side, within `timeout`, each side verifying
  /// the other's certificate against the deployment's CA. Returns "" and
  /// knows the peer's identity, or the reason (and closes).
  boost::asio::awaitable<std::string> start_tls(std::shared_ptr<boost::asio::ssl::context> context, bool accepting,
                                                std::chrono::milliseconds timeout);
  /// Who the peer's certificate says it is; nothing on a plain connection.
  const std::optional<PeerIdentity>& peer_identity() const noexcept { return peer_identity_; }

  /// The next frame, or why there is none: no complete frame within
  /// `timeout`, the peer closed or reset the connection, or a frame failed its
  /// checks (the caller logs the reason and closes).
  boost::asio::awaitable<ReadResult> read_frame(std::chrono::milliseconds timeout);

  /// Queues encoded frames for write_loop(). False, counted, when the queue
  /// would exceed max_queued_bytes (the peer is not reading) or after close().
  bool send(std::string frames);

  /// Writes queued frames of `self` until close(); each write must finish
  /// within `timeout` or the connection is closed. Run it with co_spawn. It
  /// holds `self`: it resumes once more after close(), when its owners may
  /// have let the connection go.
  static boost::asio::awaitable<void> write_loop(std::shared_ptr<FrameConnection> self,
                                                 std::chrono::milliseconds timeout);

  /// Closes the socket; pending reads and writes end. Idempotent.
  void close();

  bool open() const noexcept { return !closed_; }
  size_t queued_bytes() const noexcept { return queued_bytes_; }
  uint64_t refused_sends() const noexcept { return refused_sends_; }
  uint64_t frames_read() const noexcept { return frames_read_; }
  boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }

 private:
  // Feeds the decoder all the plaintext `tls_` has, through `scratch`; false
  // when the TLS stream failed or the peer closed it.
  bool decrypt_into_decoder(char* scratch, size_t size);
  // Sends what `tls_` has to say outside of write_loop (the handshake).
  boost::asio::awaitable<bool> flush_tls(boost::asio::steady_timer& deadline);

  boost::asio::ip::tcp::socket socket_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // outlives tls_
  std::unique_ptr<TlsSession> tls_;                         // after start_tls()
  std::optional<PeerIdentity> peer_identity_;
  const Limits limits_;
  wire::FrameDecoder decoder_;
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  boost::asio::steady_timer wake_writer_;  // cancelled to wake write_loop()
  bool closed_ = false;
  uint64_t refused_sends_ = 0;
  uint64_t frames_read_ = 0;
};

}  // namespace monitor::net
