#include "net/frame_connection.hpp"

#include <array>
#include <tuple>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace monitor::net {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

FrameConnection::FrameConnection(asio::ip::tcp::socket socket, Limits limits)
    : socket_(std::move(socket)), limits_(limits), wake_writer_(socket_.get_executor()) {
  wake_writer_.expires_at(asio::steady_timer::time_point::max());
}

FrameConnection::~FrameConnection() = default;

asio::awaitable<std::string> FrameConnection::start_tls(std::shared_ptr<asio::ssl::context> context, bool accepting,
                                                        std::chrono::milliseconds timeout) {
  tls_context_ = std::move(context);
  tls_ = std::make_unique<TlsStream>(socket_, *tls_context_);
  asio::steady_timer deadline(socket_.get_executor());
  deadline.expires_after(timeout);
  const auto side = accepting ? asio::ssl::stream_base::server : asio::ssl::stream_base::client;
  auto outcome = co_await (tls_->async_handshake(side, kNoThrow) || deadline.async_wait(kNoThrow));
  std::string failure;
  if (outcome.index() == 1) {
    failure = "no TLS handshake in time";
  } else if (const auto [ec] = std::get<0>(outcome); ec) {
    failure = "TLS handshake: " + ec.message();
  } else {
    X509* certificate = SSL_get1_peer_certificate(tls_->native_handle());
    peer_identity_ = certificate_identity(certificate);
    X509_free(certificate);
    if (!peer_identity_) failure = "the peer's certificate names no <role>:<name>";
  }
  if (!failure.empty()) close();
  co_return failure;
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
    std::variant<std::tuple<boost::system::error_code, size_t>, std::tuple<boost::system::error_code>> outcome;
    if (tls_) {
      outcome = co_await (tls_->async_read_some(asio::buffer(buffer), kNoThrow) || deadline.async_wait(kNoThrow));
    } else {
      outcome = co_await (socket_.async_read_some(asio::buffer(buffer), kNoThrow) || deadline.async_wait(kNoThrow));
    }
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
    decoder_.feed(std::string_view(buffer.data(), n));
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
    if (c.queue_.empty()) {
      co_await c.wake_writer_.async_wait(kNoThrow);  // cancelled by send() or close()
      continue;
    }
    // Write everything queued in one go: TCP hops must batch.
    std::string batch;
    while (!c.queue_.empty()) {
      batch += c.queue_.front();
      c.queue_.pop_front();
    }
    deadline.expires_after(timeout);
    std::variant<std::tuple<boost::system::error_code, size_t>, std::tuple<boost::system::error_code>> outcome;
    if (c.tls_) {
      outcome = co_await (asio::async_write(*c.tls_, asio::buffer(batch), kNoThrow) || deadline.async_wait(kNoThrow));
    } else {
      outcome = co_await (asio::async_write(c.socket_, asio::buffer(batch), kNoThrow) || deadline.async_wait(kNoThrow));
    }
    c.queued_bytes_ -= std::min(c.queued_bytes_, batch.size());
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
