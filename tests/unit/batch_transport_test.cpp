// The batch protocol's one sender (net/batch_sender) against its one receiver
// (net/batch_session), over loopback: the window, a receiver that dies
// mid-window, frames cut at every byte boundary in both directions, and TLS
// with the identities certificates give (certificates from scripts/pki.sh).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <catch2/catch.hpp>

#include "net/batch_sender.hpp"
#include "net/batch_session.hpp"
#include "net/tls.hpp"
#include "support/temp_names.hpp"
#include "support/test_pki.hpp"
#include "wire/frame.hpp"
#include "wire/spool_record.hpp"

using namespace std::chrono_literals;
using monitor::test::TempDir;
namespace asio = boost::asio;
namespace net = monitor::net;
namespace wire = monitor::wire;
using asio::ip::tcp;

namespace {

constexpr uint64_t kSender = 77;

// What the receiving side saw, across its sessions.
struct Received {
  std::vector<uint64_t> sequences;  // every batch handed to a policy, in order
  std::vector<int64_t> watermarks;
  size_t sessions = 0;
  size_t most_unacked = 0;  // the largest window the policy saw
  std::vector<std::string> members;  // what heartbeat replies carry
};

// Acknowledges a batch once `hold` batches are waiting, all at once (a
// stop-and-wait sender never gets there); closes its session after
// `close_after` batches (0: never), acknowledging none of the last ones.
class TestPolicy final : public net::SessionPolicy {
 public:
  TestPolicy(net::BatchSession& session, Received& received, size_t hold, size_t close_after)
      : session_(session), received_(received), hold_(hold), close_after_(close_after) {
    ++received_.sessions;
  }
  wire::HelloAck on_hello(const wire::Hello&) override { return wire::HelloAck{1, wire::Role::kJudger, "test", 0}; }
  void on_batch(wire::Batch batch) override {
    received_.sequences.push_back(batch.sequence);
    held_.push_back(batch);
    ++seen_;
    received_.most_unacked = std::max(received_.most_unacked, held_.size());
    if (close_after_ != 0 && seen_ >= close_after_) {
      session_.close("the test kills it mid-window");
      return;
    }
    if (held_.size() < hold_) return;
    for (const auto& b : held_) session_.ack(b.sender_id, b.sequence);
    held_.clear();
  }
  void on_watermark(int64_t complete_before) override { received_.watermarks.push_back(complete_before); }
  std::vector<std::string> heartbeat_members() override { return received_.members; }

 private:
  net::BatchSession& session_;
  Received& received_;
  const size_t hold_;
  const size_t close_after_;
  size_t seen_ = 0;
  std::vector<wire::Batch> held_;
};

std::string spool_record(uint64_t sequence, int64_t second) {
  wire::Batch batch{kSender, sequence, {}};
  wire::BatchRecord record;
  record.second = second;
  record.name_id = 1;
  record.server_id = static_cast<int64_t>(sequence % 5);
  record.ops = 1;
  record.stats.add(static_cast<int64_t>(sequence), 1);
  batch.records.push_back(record);
  return wire::encode_spool_record({wire::DictEntry{1, "Test.Transport", "Attr.A"}}, batch);
}

template <class Predicate>
bool run_until(asio::io_context& io, Predicate done, std::chrono::milliseconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_for(5ms);
  }
  return true;
}

net::BatchListener::Options plain_receiving() {
  net::BatchListener::Options options;
  options.own_id = 1;
  options.max_connections = 16;
  options.idle_timeout = 5s;
  return options;
}

struct Receiver {
  Receiver(asio::io_context& io, std::function<size_t()> close_after, size_t hold,
           net::BatchListener::Options options = plain_receiving())
      : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        listener(acceptor, std::move(options),
                 [this, close_after, hold](net::BatchSession& session) {
                   return std::make_unique<TestPolicy>(session, received, hold, close_after());
                 }) {
    listener.start();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()); }
  Received received;
  tcp::acceptor acceptor;
  net::BatchListener listener;
};

std::unique_ptr<net::BatchSender> open_sender(asio::io_context& io, const TempDir& dir, std::string address,
                                              net::BatchSender::Options options = {}) {
  options.name = "test sender";
  options.spool_dir = dir.path() + "/spool";
  if (options.hello.sender_id == 0) options.hello = wire::Hello{kSender, wire::Role::kAgent, "test-agent"};
  options.first_backoff = 1ms;
  options.max_backoff = 5ms;
  options.seconds_in_order = true;
  auto sender = net::BatchSender::open(io, std::move(options), [address](bool) { return address; });
  REQUIRE(sender.has_value());
  return std::move(*sender);
}

}  // namespace

// Issue 22: the agent's forwarder was stop-and-wait, one batch per round trip.
TEST_CASE("issue 22: the sender keeps a window of spooled batches in flight, each acknowledged and popped once",
          "[net][transport][issue22]") {
  asio::io_context io;
  TempDir dir;
  Receiver receiver(io, [] { return size_t{0}; }, 8);  // acknowledges only when 8 are waiting
  auto sender = open_sender(io, dir, receiver.address());
  for (uint64_t s = 1; s <= 64; ++s) REQUIRE(sender->spool(spool_record(s, 1'800'000'000 + static_cast<int64_t>(s))));
  sender->start();
  sender->announce(1'800'000'100);
  REQUIRE(run_until(io, [&] { return sender->spooled() == 0; }, 10s));
  CHECK(receiver.received.most_unacked == 8);
  REQUIRE(receiver.received.sequences.size() == 64);
  for (uint64_t s = 1; s <= 64; ++s) CHECK(receiver.received.sequences[s - 1] == s);
  CHECK(sender->counters().parts_sent == 64);
  // Told once the spool ahead of it was on the wire, never ahead of a batch it covers.
  REQUIRE(run_until(io, [&] { return !receiver.received.watermarks.empty() &&
                                     receiver.received.watermarks.back() == 1'800'000'100; }, 5s));
  sender->stop();
}

TEST_CASE("issue 22: a receiver that dies mid-window loses nothing: the sender sends what it had not acknowledged",
          "[net][transport][issue22][failure]") {
  asio::io_context io;
  TempDir dir;
  size_t sessions = 0;
  // The first two sessions die after 5 and 9 batches (acknowledging in pairs), later ones live.
  Receiver receiver(io, [&] { ++sessions; return sessions == 1 ? size_t{5} : sessions == 2 ? size_t{9} : size_t{0}; }, 2);
  auto sender = open_sender(io, dir, receiver.address());
  for (uint64_t s = 1; s <= 40; ++s) REQUIRE(sender->spool(spool_record(s, 1'800'000'000)));
  sender->start();
  REQUIRE(run_until(io, [&] { return sender->spooled() == 0 && sender->unacked() == 0; }, 10s));
  CHECK(receiver.received.sessions >= 3);
  const std::set<uint64_t> got(receiver.received.sequences.begin(), receiver.received.sequences.end());
  CHECK(got.size() == 40);
  CHECK(*got.begin() == 1);
  CHECK(*got.rbegin() == 40);
  // Acknowledged ones are never sent again: at most what each dead session held back.
  CHECK(receiver.received.sequences.size() <= 40 + 5 + 9);
  CHECK(sender->counters().parts_sent == 40);
  sender->stop();
}

TEST_CASE("issue 22: frames cut at every byte boundary never crash the session, and a whole stream is served after",
          "[net][transport][issue22][failure]") {
  asio::io_context io;
  Receiver receiver(io, [] { return size_t{0}; }, 1);
  std::string stream;
  wire::encode(stream, wire::Hello{kSender, wire::Role::kAgent, "cut"});
  wire::encode(stream, std::vector<wire::DictEntry>{{1, "Test.Transport", "Attr.A"}});
  wire::Batch batch{kSender, 1, {}};
  wire::BatchRecord record;
  record.second = 1'800'000'000;
  record.name_id = 1;
  record.ops = 1;
  record.stats.add(5, 1);
  batch.records.push_back(record);
  REQUIRE(wire::encode(stream, batch) == wire::WireError::kOk);
  const size_t batch_end = stream.size();
  wire::encode(stream, wire::Watermark{kSender, 1'800'000'001});
  const uint16_t port = receiver.acceptor.local_endpoint().port();

  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    tcp::socket client(io);
    client.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    // The prefix a byte at a time: every boundary inside every frame.
    for (size_t i = 0; i < cut; ++i) {
      asio::write(client, asio::buffer(stream.data() + i, 1));
      io.restart();
      io.poll();
    }
    // A FIN, not a close: closing with the HELLO_ACK unread would reset the
    // connection, and a reset discards what the session had not read yet.
    client.shutdown(tcp::socket::shutdown_send);
    REQUIRE(run_until(io, [&] { return receiver.listener.sessions().empty(); }, 5s));
    client.close();
  }
  // No cut was a bad frame: a peer that goes away mid-frame is a closed peer.
  CHECK(receiver.listener.counters().bad_frames == 0);
  CHECK(receiver.listener.counters().connections == stream.size() + 1);
  // The batch was handed on by exactly the connections that sent all of it.
  CHECK(receiver.received.sequences.size() == stream.size() + 1 - batch_end);

  // And the listener still serves a sender whole.
  TempDir dir;
  auto sender = open_sender(io, dir, "127.0.0.1:" + std::to_string(port));
  REQUIRE(sender->spool(spool_record(9, 1'800'000'000)));
  sender->start();
  REQUIRE(run_until(io, [&] { return sender->spooled() == 0; }, 5s));
  sender->stop();
}

TEST_CASE("issue 22: replies cut at every byte boundary never crash the sender, which resends until one is whole",
          "[net][transport][issue22][failure]") {
  std::string replies;
  wire::encode(replies, wire::HelloAck{1, wire::Role::kJudger, "cutter", 0});
  const size_t hello_ack_size = replies.size();
  wire::encode(replies, wire::Ack{kSender, 1});
  // A receiver on a thread of its own: for the n-th connection it reads the
  // HELLO, answers the first n bytes of HELLO_ACK + ACK, and hangs up.
  int listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listen_fd, 4) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::atomic<size_t> served{0};
  std::atomic<bool> batch_seen_whole{false};
  std::thread cutter([&] {
    for (size_t cut = 0; cut <= replies.size(); ++cut) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      wire::FrameDecoder decoder;
      // Reads until a frame of `type` came; false if the sender hung up first.
      const auto read_until = [&](wire::FrameType type) {
        char buffer[4096];
        while (true) {
          wire::Frame frame{};
          while (decoder.next(frame) == wire::FrameDecoder::Status::kFrame) {
            if (frame.type == type) return true;
          }
          const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
          if (n <= 0) return false;
          decoder.feed(std::string_view(buffer, static_cast<size_t>(n)));
        }
      };
      if (read_until(wire::FrameType::kHello)) {
        (void)::send(fd, replies.data(), std::min(cut, hello_ack_size), MSG_NOSIGNAL);
        // A whole HELLO_ACK: the batch follows, then the rest of the cut.
        if (cut >= hello_ack_size && read_until(wire::FrameType::kBatch)) {
          if (cut == replies.size()) batch_seen_whole = true;
          (void)::send(fd, replies.data() + hello_ack_size, cut - hello_ack_size, MSG_NOSIGNAL);
        }
      }
      ::close(fd);
      ++served;
    }
  });
  asio::io_context io;
  TempDir dir;
  auto sender = open_sender(io, dir, "127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  REQUIRE(sender->spool(spool_record(1, 1'800'000'000)));
  sender->start();
  const bool delivered = run_until(io, [&] { return sender->spooled() == 0; }, 20s);
  sender->stop();
  ::shutdown(listen_fd, SHUT_RDWR);
  ::close(listen_fd);
  cutter.join();
  CHECK(delivered);
  CHECK(served == replies.size() + 1);  // every cut was met, and the sender came back after each
  CHECK(batch_seen_whole);
  CHECK(sender->counters().parts_sent == 1);
}

namespace {

// A deployment's CA and certificates, made by the script operators use.
class Pki : public monitor::test::TestPki {
 public:
  // The TLS context of a part with the identity `role`:`name`.
  std::shared_ptr<net::TlsContext> issue(const std::string& role, const std::string& name) {
    return std::make_shared<net::TlsContext>(TestPki::issue(role, name));
  }
};

net::BatchListener::Options tls_receiving(std::shared_ptr<net::TlsContext> tls, std::vector<wire::Role> peers) {
  auto options = plain_receiving();
  options.tls = std::move(tls);
  options.peers = std::move(peers);
  options.handshake_timeout = 2s;
  return options;
}

net::BatchSender::Options tls_sending(std::shared_ptr<net::TlsContext> tls, std::vector<wire::Role> next_hops,
                                      wire::Hello hello = wire::Hello{kSender, wire::Role::kAgent, "test-agent"}) {
  net::BatchSender::Options options;
  options.tls = std::move(tls);
  options.next_hops = std::move(next_hops);
  options.hello = std::move(hello);
  options.connect_timeout = 2s;
  return options;
}

}  // namespace

TEST_CASE("issue 23: over TLS an agent's batches arrive, each end holding a certificate of the deployment's CA",
          "[net][transport][tls][issue23]") {
  Pki pki;
  asio::io_context io;
  TempDir dir;
  Receiver receiver(io, [] { return size_t{0}; }, 1, tls_receiving(pki.issue("bonnie", "b1"), {wire::Role::kAgent}));
  auto sender = open_sender(io, dir, receiver.address(),
                            tls_sending(pki.issue("agent", std::to_string(kSender)), {wire::Role::kBonnie}));
  for (uint64_t s = 1; s <= 20; ++s) REQUIRE(sender->spool(spool_record(s, 1'800'000'000 + static_cast<int64_t>(s))));
  sender->start();
  REQUIRE(run_until(io, [&] { return sender->spooled() == 0; }, 10s));
  CHECK(receiver.received.sequences.size() == 20);
  CHECK(receiver.listener.counters().tls_failures == 0);
  CHECK(receiver.listener.counters().identity_refused == 0);
  REQUIRE(receiver.listener.sessions().size() == 1);
  sender->stop();
}

// Found by deploy/run-local.sh: frames that came in the segment of the
// client's last handshake flight were fed to the session but never read, and
// the peer's HELLO went unanswered until its timeout.
TEST_CASE("issue 23: a HELLO sent with the TLS client's Finished, in one segment, is answered",
          "[net][transport][tls][issue23][failure]") {
  Pki pki;
  asio::io_context io;
  Receiver receiver(io, [] { return size_t{0}; }, 1, tls_receiving(pki.issue("bonnie", "b1"), {wire::Role::kAgent}));
  auto client_tls = pki.issue("agent", std::to_string(kSender));
  tcp::socket client(io);
  client.connect(receiver.acceptor.local_endpoint());
  net::TlsSession session(*client_tls->current(), false);
  std::string hello;
  wire::encode(hello, wire::Hello{kSender, wire::Role::kAgent, "one-segment"});
  std::array<char, 16384> buffer{};
  std::atomic<bool> answered{false};
  std::atomic<bool> sealed{true};
  std::thread peer([&] {
    while (true) {
      const auto step = session.handshake();
      std::string out;
      session.take_output(out);
      if (step == net::TlsSession::Step::kDone) {
        sealed = session.seal(hello, out);  // Finished and HELLO in one write
      }
      boost::system::error_code ec;
      asio::write(client, asio::buffer(out), ec);
      if (step == net::TlsSession::Step::kFailed || ec) return;
      // Reads until a HELLO_ACK once connected, or the next flight before.
      const size_t n = client.read_some(asio::buffer(buffer), ec);
      if (ec) return;
      session.feed(buffer.data(), n);
      if (step != net::TlsSession::Step::kDone) continue;
      std::string plain(16384, '\0');
      const auto got = session.read(plain.data(), plain.size());
      answered = got > 0;
      return;
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!answered && std::chrono::steady_clock::now() < deadline && peer.joinable()) {
    io.restart();
    io.run_for(10ms);
    if (answered) break;
  }
  client.shutdown(tcp::socket::shutdown_both);
  io.restart();
  io.run_for(50ms);
  peer.join();
  CHECK(sealed);
  CHECK(answered);
}

TEST_CASE("issue 23: a certificate is held to what it names: an agent cannot speak as another sender",
          "[net][transport][tls][issue23][failure]") {
  Pki pki;
  asio::io_context io;
  TempDir dir;
  Receiver receiver(io, [] { return size_t{0}; }, 1, tls_receiving(pki.issue("judger", "j1"), {wire::Role::kAgent}));
  // Agent 78's certificate, saying HELLO as sender 77 (to inject under its id
  // or claim its sequence numbers).
  auto sender = open_sender(io, dir, receiver.address(),
                            tls_sending(pki.issue("agent", "78"), {wire::Role::kJudger}));
  REQUIRE(sender->spool(spool_record(1, 1'800'000'000)));
  sender->start();
  REQUIRE(run_until(io, [&] { return receiver.listener.counters().identity_refused >= 3; }, 10s));
  CHECK(receiver.received.sequences.empty());
  CHECK(sender->spooled() == 1);
  CHECK(sender->counters().connects == 0);
  sender->stop();

  SECTION("nor as a proxy relaying others' batches") {
    TempDir dir2;
    auto relay = open_sender(io, dir2, receiver.address(),
                             tls_sending(pki.issue("agent", "79"), {wire::Role::kJudger},
                                         wire::Hello{79, wire::Role::kBonnie, "b1"}));
    REQUIRE(relay->spool(spool_record(1, 1'800'000'000)));
    const uint64_t refused = receiver.listener.counters().identity_refused;
    relay->start();
    REQUIRE(run_until(io, [&] { return receiver.listener.counters().identity_refused >= refused + 2; }, 10s));
    CHECK(receiver.received.sequences.empty());
    relay->stop();
  }
  SECTION("and a part whose role does not send here is refused at the handshake") {
    TempDir dir2;
    auto other = open_sender(io, dir2, receiver.address(),
                             tls_sending(pki.issue("clyde", "c1"), {wire::Role::kJudger},
                                         wire::Hello{5, wire::Role::kClyde, "c1"}));
    REQUIRE(other->spool(spool_record(1, 1'800'000'000)));
    const uint64_t refused = receiver.listener.counters().identity_refused;
    other->start();
    REQUIRE(run_until(io, [&] { return receiver.listener.counters().identity_refused >= refused + 2; }, 10s));
    CHECK(receiver.received.sequences.empty());
    other->stop();
  }
}

TEST_CASE("issue 23: a peer without a certificate of the deployment's CA gets no link, either way round",
          "[net][transport][tls][issue23][failure]") {
  Pki pki, stranger;
  asio::io_context io;
  TempDir dir;
  Receiver receiver(io, [] { return size_t{0}; }, 1, tls_receiving(pki.issue("bonnie", "b1"), {wire::Role::kAgent}));
  SECTION("a certificate of another CA") {
    auto sender = open_sender(io, dir, receiver.address(),
                              tls_sending(stranger.issue("agent", std::to_string(kSender)), {wire::Role::kBonnie}));
    REQUIRE(sender->spool(spool_record(1, 1'800'000'000)));
    sender->start();
    REQUIRE(run_until(io, [&] { return receiver.listener.counters().tls_failures >= 2 &&
                                       sender->counters().tls_refused >= 2; }, 10s));
    CHECK(receiver.received.sequences.empty());
    sender->stop();
  }
  SECTION("plain TCP to a TLS receiver") {
    auto sender = open_sender(io, dir, receiver.address());
    REQUIRE(sender->spool(spool_record(1, 1'800'000'000)));
    sender->start();
    REQUIRE(run_until(io, [&] { return receiver.listener.counters().tls_failures >= 2; }, 10s));
    CHECK(receiver.received.sequences.empty());
    CHECK(sender->counters().connects == 0);
    sender->stop();
  }
  SECTION("a next hop of a role the sender does not send to") {
    Receiver judger(io, [] { return size_t{0}; }, 1, tls_receiving(pki.issue("judger", "j1"), {wire::Role::kAgent}));
    auto sender = open_sender(io, dir, judger.address(),
                              tls_sending(pki.issue("agent", std::to_string(kSender)), {wire::Role::kBonnie}));
    REQUIRE(sender->spool(spool_record(1, 1'800'000'000)));
    sender->start();
    REQUIRE(run_until(io, [&] { return sender->counters().tls_refused >= 2; }, 10s));
    CHECK(judger.received.sequences.empty());
    CHECK(sender->spooled() == 1);
    sender->stop();
  }
}

TEST_CASE("issue 23: only a Bonnie's heartbeat reply may rewrite a sender's member list",
          "[net][transport][tls][issue23][failure]") {
  Pki pki;
  auto clyde = pki.issue("clyde", "c1");
  const auto offer = [&](const std::string& role) {
    asio::io_context io;  // its own: a stopped sender's coroutines end with it
    Receiver receiver(io, [] { return size_t{0}; }, 1,
                      tls_receiving(pki.issue(role, "r-" + role), {wire::Role::kClyde}));
    receiver.received.members = {"127.0.0.1:1", "127.0.0.1:2"};
    auto options = tls_sending(clyde, {wire::Role::kBonnie, wire::Role::kJudger}, wire::Hello{5, wire::Role::kClyde, "c1"});
    options.heartbeat_interval = 10ms;
    TempDir spool;
    auto sender = open_sender(io, spool, receiver.address(), std::move(options));
    std::vector<std::string> taken;
    sender->on_members([&](const std::vector<std::string>& members) { taken = members; });
    sender->start();
    REQUIRE(run_until(io, [&] { return !taken.empty() || sender->counters().members_refused >= 3; }, 10s));
    sender->stop();
    return taken;
  };
  CHECK(offer("bonnie") == std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2"});
  CHECK(offer("judger").empty());
}

TEST_CASE("issue 23: TLS files reload: a bad file keeps the loaded ones, a renewed certificate takes over",
          "[net][tls][issue23]") {
  Pki pki;
  auto tls = pki.issue("bonnie", "b1");
  const auto before = tls->current();
  const net::TlsFiles files = pki.files("bonnie", "b1");
  { std::ofstream(files.key, std::ios::trunc) << "not a key\n"; }
  CHECK_THAT(tls->reload(), Catch::Contains(files.key));
  CHECK(tls->current() == before);
  CHECK(tls->own_identity().text() == "bonnie:b1");
  // Renewed at the same paths (a new key and certificate): new connections use it.
  Pki::run("issue " + files.ca.substr(0, files.ca.rfind('/')) + " bonnie b1");
  CHECK(tls->reload().empty());
  CHECK(tls->current() != before);
  // And a certificate naming no part is refused at start.
  CHECK_THROWS_WITH(net::make_tls(files, wire::Role::kJudger), Catch::Contains("not of a judger"));
  CHECK(net::parse_identity("agent:12")->role == wire::Role::kAgent);
  CHECK_FALSE(net::parse_identity("root:x"));
  CHECK_FALSE(net::parse_identity("bonnie:"));
  CHECK_FALSE(net::agent_sender_id(*net::parse_identity("agent:12x")));
}
