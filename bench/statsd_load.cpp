// The load side of bench/statsd_ingest_bench.py, and its bare peer:
//
//   statsd_load blast PORT RATE SECONDS LINES_PER_DATAGRAM
//     sends statsd counter lines ("bench.load.c<k>:1|c", 100 names) to
//     127.0.0.1:PORT at RATE lines/s (0: as fast as it can) for SECONDS,
//     paced in 1 ms steps with sendmmsg; prints "sent LINES DATAGRAMS".
//   statsd_load sink PORT SECONDS
//     the bare UDP receive loop the agent is measured against: recvmmsg
//     batches of 64, counting the lines ('\n'-separated) and nothing more;
//     prints "received LINES DATAGRAMS" after SECONDS of silence or in all.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

int blast(int port, double rate, double seconds, int lines_per_datagram) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr = loopback(port);
  int sndbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  // 64 datagrams, each lines_per_datagram lines over 100 names.
  constexpr int kBatch = 64;
  std::vector<std::string> payloads(kBatch);
  int name = 0;
  for (auto& p : payloads) {
    for (int i = 0; i < lines_per_datagram; ++i) {
      p += "bench.load.c" + std::to_string(name++ % 100) + ":1|c\n";
    }
  }
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  for (int i = 0; i < kBatch; ++i) {
    iov[i] = iovec{payloads[i].data(), payloads[i].size()};
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &addr;
    msgs[i].msg_hdr.msg_namelen = sizeof addr;
  }
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  uint64_t datagrams = 0;
  while (true) {
    const auto now = Clock::now();
    if (now >= end) break;
    int n = kBatch;
    if (rate > 0) {
      // Datagrams due by now; the pace is kept in 1 ms steps.
      const double due = std::chrono::duration<double>(now - start).count() * rate / lines_per_datagram;
      if (static_cast<double>(datagrams) >= due) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      n = static_cast<int>(std::min<double>(kBatch, due - static_cast<double>(datagrams) + 1));
    }
    const int sent = sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (sent > 0) datagrams += static_cast<uint64_t>(sent);
  }
  std::printf("sent %llu %llu\n", static_cast<unsigned long long>(datagrams * lines_per_datagram),
              static_cast<unsigned long long>(datagrams));
  close(fd);
  return 0;
}

int sink(int port, double seconds) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr = loopback(port);
  int rcvbuf = 8 << 20;  // as the agent's socket_rcvbuf_bytes
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("bind");
    return 1;
  }
  timeval timeout{0, 200'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  constexpr size_t kBatch = 64, kBytes = 64 * 1024;
  std::vector<char> buffers(kBatch * kBytes);
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  for (size_t i = 0; i < kBatch; ++i) {
    iov[i] = iovec{buffers.data() + i * kBytes, kBytes};
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  std::puts("ready");
  std::fflush(stdout);
  uint64_t lines = 0, datagrams = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    const int n = recvmmsg(fd, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
    for (int i = 0; i < n; ++i) {
      const char* p = buffers.data() + static_cast<size_t>(i) * kBytes;
      const size_t len = msgs[i].msg_len;
      for (const char* q = p; (q = static_cast<const char*>(std::memchr(q, '\n', len - (q - p)))) != nullptr; ++q) {
        ++lines;
      }
      ++datagrams;
    }
  }
  std::printf("received %llu %llu\n", static_cast<unsigned long long>(lines),
              static_cast<unsigned long long>(datagrams));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::strcmp(argv[1], "blast") == 0) {
    return blast(std::atoi(argv[2]), std::atof(argv[3]), std::atof(argv[4]), std::atoi(argv[5]));
  }
  if (argc == 4 && std::strcmp(argv[1], "sink") == 0) return sink(std::atoi(argv[2]), std::atof(argv[3]));
  std::fprintf(stderr, "usage: statsd_load blast PORT RATE SECONDS LINES_PER_DATAGRAM | sink PORT SECONDS\n");
  return 2;
}
