#include <chrono>
#include <memory>
#include <optional>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <catch2/catch.hpp>

#include "net/frame_connection.hpp"
#include "wire/messages.hpp"

using namespace std::chrono_literals;
using monitor::net::FrameConnection;
using monitor::net::ReadResult;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// A connected pair of sockets on loopback.
struct Pair {
  asio::io_context io;
  std::shared_ptr<FrameConnection> server;
  std::shared_ptr<FrameConnection> client;

  explicit Pair(FrameConnection::Limits limits = {}) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket client_socket(io);
    client_socket.connect(acceptor.local_endpoint());
    // Not make_shared: a weak_ptr would keep such an object's memory (only
    // its destructor runs), hiding a use after destruction from ASan.
    server.reset(new FrameConnection(acceptor.accept(), limits));
    client.reset(new FrameConnection(std::move(client_socket), limits));
  }
  template <class F>
  void run(F&& coroutine) {
    asio::co_spawn(io, std::forward<F>(coroutine), asio::detached);
    io.run_for(10s);
  }
};

std::string ack_frame(uint64_t sequence) {
  std::string out;
  monitor::wire::encode(out, monitor::wire::Ack{1, sequence});
  return out;
}

}  // namespace

TEST_CASE("frames written by one side are read in order by the other", "[net]") {
  Pair pair;
  int read = 0;
  pair.run([&]() -> asio::awaitable<void> {
    asio::co_spawn(pair.io, FrameConnection::write_loop(pair.client, 2s), asio::detached);
    for (uint64_t i = 1; i <= 1000; ++i) REQUIRE(pair.client->send(ack_frame(i)));
    for (uint64_t i = 1; i <= 1000; ++i) {
      ReadResult r = co_await pair.server->read_frame(5s);
      REQUIRE(r.kind == ReadResult::Kind::kFrame);
      monitor::wire::Ack ack;
      REQUIRE(monitor::wire::decode(r.payload, ack) == monitor::wire::WireError::kOk);
      REQUIRE(ack.sequence == i);
      ++read;
    }
    pair.client->close();
  });
  CHECK(read == 1000);
  CHECK(pair.server->frames_read() == 1000);
}

TEST_CASE("a bad frame is reported with its reason", "[net][failure]") {
  Pair pair;
  std::optional<ReadResult> got;
  pair.run([&]() -> asio::awaitable<void> {
    std::string corrupt = ack_frame(1);
    corrupt.back() ^= 1;
    co_await asio::async_write(pair.client->socket(), asio::buffer(corrupt), asio::use_awaitable);
    got = co_await pair.server->read_frame(5s);
  });
  REQUIRE(got);
  CHECK(got->kind == ReadResult::Kind::kBadFrame);
  CHECK(got->wire_error == monitor::wire::WireError::kBadChecksum);
}

TEST_CASE("a silent peer times out and a vanished one is seen as closed", "[net][failure]") {
  Pair pair;
  std::optional<ReadResult> silent, vanished;
  pair.run([&]() -> asio::awaitable<void> {
    silent = co_await pair.server->read_frame(100ms);
    pair.client.reset();  // the peer's process is gone
    vanished = co_await pair.server->read_frame(5s);
  });
  REQUIRE(silent);
  CHECK(silent->kind == ReadResult::Kind::kTimeout);
  REQUIRE(vanished);
  CHECK(vanished->kind == ReadResult::Kind::kClosed);
}

TEST_CASE("a peer that stops reading fills the bounded queue, then the write deadline closes it", "[net][failure]") {
  Pair pair(FrameConnection::Limits{1 << 20});
  pair.run([&]() -> asio::awaitable<void> {
    asio::co_spawn(pair.io, FrameConnection::write_loop(pair.client, 300ms), asio::detached);
    const std::string frame(64 * 1024, 'x');  // bytes need not be frames for this: the server never reads
    int accepted = 0;
    for (int i = 0; i < 400 && pair.client->send(frame); ++i) {
      ++accepted;
      asio::steady_timer pause(pair.io, 1ms);
      co_await pause.async_wait(asio::use_awaitable);
    }
    CHECK(accepted < 400);
    CHECK(pair.client->refused_sends() >= 1);
    asio::steady_timer wait(pair.io, 1s);
    co_await wait.async_wait(asio::use_awaitable);
    CHECK_FALSE(pair.client->open());  // the writer gave up on the peer
    CHECK_FALSE(pair.client->send("more"));
  });
}

TEST_CASE("issue 7: a connection its owners let go right after close() outlives its write loop, which then ends",
          "[net][issue7][failure]") {
  Pair pair;
  const std::weak_ptr<FrameConnection> weak = pair.client;
  pair.run([&]() -> asio::awaitable<void> {
    asio::co_spawn(pair.io, FrameConnection::write_loop(pair.client, 2s), asio::detached);
    co_await asio::post(pair.io, asio::use_awaitable);  // the loop now waits for frames
    pair.client->close();
    pair.client.reset();  // as a session does when it ends: the loop resumes after this
  });
  CHECK(weak.expired());  // the loop ended and let it go (ASan: no use after free)
}
