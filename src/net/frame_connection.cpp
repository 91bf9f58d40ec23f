#include "net/frame_connection.hpp"

#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace monitor::net {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kTlsRecordBytes = 16 * 1024;

FrameConnection::FrameConnection(asio::ip::tcp::socket socket, Limits limits)
    : socket_(std::move(socket)), limits_(limits), wake_writer_(socket_.get_executor()) {
  wake_writer_.expires_at(asio::steady_timer::time_point::max());
}

FrameConnection::~FrameConnection() = default;

asio::awaitable<bool> FrameConnection::flush_tls(asio::steady_timer& deadline) {
  std::string out;
  tls_->take_output(out);
  if (out.empty()) co_return true;
  auto outcome = co_await (asio::async_write(socket_, asio::buffer(out), kNoThrow) || deadline.async_wait(kNoThrow));
  co_return outcome.index() == 0 && !std::get<0>(std::get<0>(outcome));
}

asio::awaitable<std::string> FrameConnection::start_tls(std::shared_ptr<asio::ssl::context> context, bool accepting,
                                                        std::chrono::milliseconds timeout) {
  tls_context_ = std::move(context);
  tls_ = std::make_unique<TlsSession>(*tls_context_, accepting);
  asio::steady_timer deadline(socket_.get_executor());
  deadline.expires_after(timeout);
  std::array<char, 16 * 1024> buffer;
  std::string failure;
  while (failure.empty()) {
    const TlsSession::Step step = tls_->handshake();
    // Whatever the step, what it produced goes out: flights, or the alert
    // that tells the peer why.
    const bool flushed = co_await flush_tls(deadline);
    if (step == TlsSession::Step::kDone) break;
    if (step == TlsSession::Step::kFailed) {
      failure = "TLS handshake: " + tls_->error();
    } else if (!flushed) {
      failure = "TLS handshake: the peer did not take our bytes in time";
    } else {
      auto outcome = co_await (socket_.async_read_some(asio::buffer(buffer), kNoThrow) || deadline.async_wait(kNoThrow));
      if (outcome.index() == 1) {
        failure = "no TLS handshake in time";
      } else if (const auto [ec, n] = std::get<0>(outcome); ec) {
        failure = "TLS handshake: " + (ec == asio::error::eof ? std::string("the peer closed") : ec.message());
      } else {
        tls_->feed(buffer.data(), n);
      }
    }
  }
  if (failure.empty()) {
    peer_identity_ = tls_->peer_identity();
    if (!peer_identity_) failure = "the peer's certificate names no <role>:<name>";
  }
  // The peer's first frames may have come with its last handshake flight (a
  // client's HELLO in the segment of its Finished): fed already, so no socket
  // read would bring them again.
  if (failure.empty() && !decrypt_into_decoder(buffer.data(), buffer.size())) failure = "TLS: " + tls_->error();
  if (!failure.empty()) close();
  co_return failure;
}

bool FrameConnection::decrypt_into_decoder(char* scratch, size_t size) {
  ptrdiff_t plain = 0;
  while ((plain = tls_->read(scratch, size)) > 0) decoder_.feed(std::string_view(scratch, static_cast<size_t>(plain)));
  return plain == 0;
}

asio::awaitable<ReadResult> FrameConnection::read_frame(std::chrono::milliseconds timeout) {
  ReadResult result;
  asio::steady_timer deadline(socket_.get_executor());
  deadline.expires_after(timeout);
  std::array<char, 64 * 1024> buffer;
  while (true) {
    wire::Frame frame{};
    const auto status = decoder_.next(frame);
    if (status == wire::FrameDecoder::Status::kFrame) {
      ++frames_read_;
      result.kind = ReadResult::Kind::kFrame;
      result.type = frame.type;
      result.payload.assign(frame.payload);
      co_return result;
    }
    if (status == wire::FrameDecoder::Status::kError) {
      result.kind = ReadResult::Kind::kBadFrame;
      result.wire_error = decoder_.error();
      co_return result;
    }
    if (closed_) {
      result.kind = ReadResult::Kind::kClosed;
      result.error = asio::error::operation_aborted;
      co_return result;
    }
    // Whichever finishes first: bytes from the peer or the deadline.
    auto outcome = co_await (socket_.async_read_some(asio::buffer(buffer), kNoThrow) ||
                             deadline.async_wait(kNoThrow));
    if (outcome.index() == 1) {
      result.kind = ReadResult::Kind::kTimeout;
      co_return result;
    }
    const auto [ec, n] = std::get<0>(outcome);
    if (ec) {
      result.kind = ReadResult::Kind::kClosed;
      result.error = ec;
      co_return result;
    }
    if (!tls_) {
      decoder_.feed(std::string_view(buffer.data(), n));
      continue;
    }
    // Decrypted in place of the ciphertext: all of one read's records at once.
    tls_->feed(buffer.data(), n);
    const bool readable = decrypt_into_decoder(buffer.data(), buffer.size());
    if (tls_->output_pending()) wake_writer_.cancel();  // the session has something to answer
    if (!readable) {
      result.kind = ReadResult::Kind::kClosed;
      result.error = asio::error::connection_aborted;
      co_return result;
    }
  }
}

bool FrameConnection::send(std::string frames) {
  if (closed_ || queued_bytes_ + frames.size() > limits_.max_queued_bytes) {
    ++refused_sends_;
    return false;
  }
  queued_bytes_ += frames.size();
  queue_.push_back(std::move(frames));
  wake_writer_.cancel();
  return true;
}

asio::awaitable<void> FrameConnection::write_loop(std::shared_ptr<FrameConnection> self,
                                                  std::chrono::milliseconds timeout) {
  FrameConnection& c = *self;
  asio::steady_timer deadline(c.socket_.get_executor());
  while (!c.closed_) {
    if (c.queue_.empty() && !(c.tls_ && c.tls_->output_pending())) {
      co_await c.wake_writer_.async_wait(kNoThrow);  // cancelled by send(), close() or the TLS session
      continue;
    }
    // Write everything queued in one go: TCP hops must batch. With TLS, small
    // parts (ACKs, heartbeats) share records; a large one is sealed straight
    // from the queue, saving a copy.
    std::string batch, small;
    size_t plain_bytes = 0;
    bool sealed = true;
    while (!c.queue_.empty()) {
      const std::string& part = c.queue_.front();
      plain_bytes += part.size();
      if (!c.tls_) {
        batch += part;
      } else if (part.size() < kTlsRecordBytes) {
        small += part;
      } else {
        sealed = sealed && c.tls_->seal(small, batch) && c.tls_->seal(part, batch);
        small.clear();
      }
      c.queue_.pop_front();
    }
    if (c.tls_) sealed = sealed && c.tls_->seal(small, batch);  // and what the session owes the peer
    if (!sealed) {
      c.queued_bytes_ -= std::min(c.queued_bytes_, plain_bytes);
      c.close();
      co_return;
    }
    deadline.expires_after(timeout);
    auto outcome = co_await (asio::async_write(c.socket_, asio::buffer(batch), kNoThrow) ||
                             deadline.async_wait(kNoThrow));
    c.queued_bytes_ -= std::min(c.queued_bytes_, plain_bytes);
    if (outcome.index() == 1 || std::get<0>(std::get<0>(outcome))) {
      c.close();  // a peer that does not take our bytes in time is treated as gone
      co_return;
    }
  }
}

void FrameConnection::close() {
  if (closed_) return;
  closed_ = true;
  // No TLS close_notify: frames delimit themselves, and a peer that stopped
  // reading would make it wait.
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  wake_writer_.cancel();
}

}  // namespace monitor::net
