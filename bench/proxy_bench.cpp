// Bonnie forwarding on one core: a real `monitor-proxy --role bonnie` process
// (one thread) receives batches from a client, checks every record against the
// registry's services and attrs, re-encodes them for the judger that owns the
// service and acknowledges each batch once that judger did. The judger here is
// a sink that only answers (HELLO_ACK, ACK, heartbeats). Beside it: the same
// batch bytes pushed into a loopback TCP sink that only reads and discards,
// the limit of one TCP hop on this machine.
//
//   proxy_bench [seconds per run, default 3] [runs, default 3]
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "bench/ratio_reporter.hpp"
#include "common/registry/registry.hpp"
#include "wire/byte_io.hpp"
#include "wire/frame.hpp"
#include "wire/messages.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
namespace wire = monitor::wire;

constexpr int kNames = 100;            // attrs of one service
constexpr int kServers = 10;
constexpr int kRecordsPerBatch = 1000;  // an agent's second of 1 000 series
constexpr int kWindow = 64;             // batches in flight from the client

int listen_any(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
    throw std::runtime_error("bind");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

int connect_to(int port, std::chrono::seconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (true) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    ::close(fd);
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("connect");
    std::this_thread::sleep_for(50ms);
  }
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// A TCP server on its own thread: discards everything, or plays a judger that
// stores nothing and acknowledges every batch.
class Sink {
 public:
  enum class Mode { kDiscard, kJudger };
  explicit Sink(Mode mode) : mode_(mode), listen_fd_(listen_any(port_)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~Sink() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    if (conn_fd_ >= 0) ::shutdown(conn_fd_, SHUT_RDWR);
    thread_.join();
  }
  int port() const { return port_; }
  uint64_t bytes() const { return bytes_.load(); }

 private:
  void serve() {
    std::vector<char> buffer(1 << 20);
    while (!stop_) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      conn_fd_ = fd;
      wire::FrameDecoder decoder;
      std::string out;
      while (true) {
        const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n <= 0) break;
        bytes_ += static_cast<uint64_t>(n);
        if (mode_ == Mode::kDiscard) continue;
        decoder.feed(std::string_view(buffer.data(), static_cast<size_t>(n)));
        wire::Frame frame{};
        out.clear();
        while (decoder.next(frame) == wire::FrameDecoder::Status::kFrame) {
          if (frame.type == wire::FrameType::kHello) {
            wire::encode(out, wire::HelloAck{1, wire::Role::kJudger, "sink", 0});
          } else if (frame.type == wire::FrameType::kBatch) {
            wire::ByteReader r(frame.payload);  // sender and sequence lead the payload
            const uint64_t sender = r.u64le();
            const uint64_t sequence = r.u64le();
            wire::encode(out, wire::Ack{sender, sequence});
          } else if (frame.type == wire::FrameType::kHeartbeat) {
            wire::encode(out, wire::Heartbeat{1, 0, {}});
          }
        }
        if (!out.empty() && !write_all(fd, out.data(), out.size())) break;
      }
      conn_fd_ = -1;
      ::close(fd);
    }
  }

  const Mode mode_;
  int port_ = 0;
  const int listen_fd_;
  std::atomic<int> conn_fd_{-1};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> bytes_{0};
  std::thread thread_;
};

std::string hello_and_names() {
  std::string out;
  wire::encode(out, wire::Hello{42, wire::Role::kAgent, "bench-agent"});
  std::vector<wire::DictEntry> names;
  for (int i = 0; i < kNames; ++i) names.push_back({static_cast<uint32_t>(i + 1), "Bench.Proxy", "Attr.N" + std::to_string(i)});
  wire::encode(out, names);
  return out;
}

// One agent second: 1 000 series with SUM, COUNT, MAX and MIN of 3 reports each.
std::string batch_frame(uint64_t sequence) {
  wire::Batch batch{42, sequence, {}};
  const int64_t second = 1'795'000'000;
  for (int i = 0; i < kRecordsPerBatch; ++i) {
    wire::BatchRecord r;
    r.second = second;
    r.name_id = static_cast<uint32_t>(i % kNames + 1);
    r.server_id = i / kNames % kServers;
    r.ops = 1 | 2 | 4 | 64;
    for (int v = 0; v < 3; ++v) r.stats.add(i * 7 + v, second * 1'000'000'000 + v);
    batch.records.push_back(r);
  }
  std::string out;
  wire::encode(out, batch);
  return out;
}

// Reports per second through `port`: with acknowledgements (a proxy), or
// counted as bytes taken by a discarding sink.
double run_client(int port, bool acknowledged, const Sink* discard, double seconds) {
  const int fd = connect_to(port, 10s);
  const std::string hello = hello_and_names();
  const std::string batch = batch_frame(1);
  if (!write_all(fd, hello.data(), hello.size())) throw std::runtime_error("send hello");
  std::atomic<int64_t> acked{0};
  std::atomic<bool> done{false};
  std::thread reader;
  if (acknowledged) {
    reader = std::thread([&] {
      wire::FrameDecoder decoder;
      std::vector<char> buffer(1 << 16);
      while (!done) {
        const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n <= 0) return;
        decoder.feed(std::string_view(buffer.data(), static_cast<size_t>(n)));
        wire::Frame frame{};
        while (decoder.next(frame) == wire::FrameDecoder::Status::kFrame) {
          if (frame.type == wire::FrameType::kAck) acked.fetch_add(1);
        }
      }
    });
  }
  int64_t sent = 0;
  const uint64_t bytes_before = discard ? discard->bytes() : 0;
  const int64_t acked_before = acked.load();
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (acknowledged && sent - acked.load() >= kWindow) {
      std::this_thread::yield();
      continue;
    }
    if (!write_all(fd, batch.data(), batch.size())) throw std::runtime_error("send batch");
    ++sent;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double batches;
  if (acknowledged) {
    batches = static_cast<double>(acked.load() - acked_before);
  } else {
    batches = static_cast<double>(discard->bytes() - bytes_before) / static_cast<double>(batch.size());
  }
  done = true;
  ::shutdown(fd, SHUT_RDWR);
  if (reader.joinable()) reader.join();
  ::close(fd);
  return batches * kRecordsPerBatch / elapsed;
}

class BonnieProcess {
 public:
  BonnieProcess(const std::filesystem::path& dir, int port) {
    std::vector<std::string> argv = {MONITOR_PROXY_PATH, "--role", "bonnie", "--name", "bench-bonnie", "--listen",
                                     "127.0.0.1:" + std::to_string(port), "--registry", "file:" + (dir / "registry").string(),
                                     "--data-dir", (dir / "bonnie").string(), "--no-self-metrics", "--log-level", "warn"};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) != 0) {
      throw std::runtime_error("cannot start monitor-proxy");
    }
  }
  ~BonnieProcess() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

double cpu_seconds(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return 0;
  char buf[1024] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || n == 0) return 0;
  unsigned long utime = 0, stime = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  const auto dir = std::filesystem::temp_directory_path() / ("proxy-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  Sink judger(Sink::Mode::kJudger);
  Sink discard(Sink::Mode::kDiscard);
  {
    auto registry = monitor::registry::open_registry("file:" + (dir / "registry").string());
    if (!registry) throw std::runtime_error("registry");
    boost::json::object attrs;
    for (int i = 0; i < kNames; ++i) attrs["Attr.N" + std::to_string(i)] = i + 1;
    (void)(*registry)->put("services", "Bench.Proxy", boost::json::object{{"id", 1}, {"attrs", attrs}});
    (void)(*registry)->put("assignments", "Bench.Proxy", boost::json::object{{"judger", "sink"}});
    (void)(*registry)->put_live("judgers", "sink",
                                boost::json::object{{"address", "127.0.0.1:" + std::to_string(judger.port())}}, 1h);
  }
  int bonnie_port = 0;
  ::close(listen_any(bonnie_port));
  BonnieProcess bonnie(dir, bonnie_port);
  std::this_thread::sleep_for(1500ms);  // it reads the registry and connects to the sink judger

  std::vector<double> through_bonnie, limit, bonnie_cpu;
  for (int run = 0; run < runs; ++run) {
    limit.push_back(run_client(discard.port(), false, &discard, seconds));
    const double cpu_before = cpu_seconds(bonnie.pid());
    const auto t0 = std::chrono::steady_clock::now();
    through_bonnie.push_back(run_client(bonnie_port, true, nullptr, seconds));
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bonnie_cpu.push_back((cpu_seconds(bonnie.pid()) - cpu_before) / wall);
    std::printf("run %d: Bonnie %.2f M reports/s (%.0f%% of a core), loopback sink %.2f M reports/s\n", run + 1,
                through_bonnie.back() / 1e6, bonnie_cpu.back() * 100, limit.back() / 1e6);
  }
  const double ours = median(through_bonnie), peer = median(limit);
  monitor::bench::print_header("Bonnie forwarding (validate + route + re-encode + ACK), medians");
  monitor::bench::print_row("Bonnie forwarding, 1 000-record batches", ours / 1e6, "M rep/s",
                            "loopback TCP sink, read + discard", peer / 1e6, ours / peer, ">= 5 M reports/s");
  std::printf("Bonnie used %.0f%% of one core (median); the client and the sink judger share the other.\n",
              median(bonnie_cpu) * 100);
  std::filesystem::remove_all(dir);
  return 0;
}
