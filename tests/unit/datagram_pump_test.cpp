// The agent's receive thread: every datagram sent comes out of drain(), once,
// in order, and a stopping pump hands over what is still in the socket.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/datagram_pump.hpp"
#include "support/child_process.hpp"

using monitor::agent::DatagramPump;
using monitor::agent::SocketReceiver;
using namespace std::chrono_literals;

namespace {

// A UDP receiver on a free loopback port, and a socket that sends to it.
struct Loopback {
  Loopback() {
    for (int port = 20000 + static_cast<int>(getpid() % 20000);; ++port) {
      auto bound = SocketReceiver::bind_udp("127.0.0.1:" + std::to_string(port), 8 << 20);
      if (bound) {
        receiver.emplace(std::move(*bound));
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        break;
      }
    }
    sender = socket(AF_INET, SOCK_DGRAM, 0);
  }
  ~Loopback() { close(sender); }
  void send(const std::string& payload) const {
    REQUIRE(sendto(sender, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) ==
            static_cast<ssize_t>(payload.size()));
  }
  std::optional<SocketReceiver> receiver;
  sockaddr_in addr{};
  int sender = -1;
};

}  // namespace

TEST_CASE("a datagram pump hands over every datagram once and in order, and the rest when it stops",
          "[pump][concurrency]") {
  Loopback loop;
  DatagramPump pump(std::move(*loop.receiver), 2);  // two batches: the thread must wait for the drainer
  std::vector<std::string> got;
  auto on = [&](std::string_view bytes, bool truncated, int64_t received_ns) {
    CHECK_FALSE(truncated);
    CHECK(received_ns > 0);
    got.emplace_back(bytes);
  };
  constexpr int kDatagrams = 20000;
  for (int i = 0; i < kDatagrams / 2; ++i) loop.send("line " + std::to_string(i));
  REQUIRE(monitor::test::wait_until(
      [&] {
        pollfd pfd{pump.fd(), POLLIN, 0};
        ::poll(&pfd, 1, 50);
        pump.drain(on);
        return got.size() == kDatagrams / 2;
      },
      20s));
  for (int i = kDatagrams / 2; i < kDatagrams; ++i) loop.send("line " + std::to_string(i));
  pump.stop_and_drain(on);
  REQUIRE(got.size() == kDatagrams);
  for (int i = 0; i < kDatagrams; ++i) REQUIRE(got[static_cast<size_t>(i)] == "line " + std::to_string(i));
}
