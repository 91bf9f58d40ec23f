// Bonnie forwarding over TLS beside the same Bonnie over plain TCP, in one
// run: two real `monitor-proxy --role bonnie` processes (one thread each),
// one with TLS 1.3 on both hops (certificates from scripts/pki.sh), each fed
// by the same client and forwarding to the same kind of sink judger (which
// only answers). Client and sinks speak through the same code for both, one
// thread per connection, so the only difference is the encryption.
//
//   proxy_tls_bench [seconds per run, default 3] [runs, default 5]
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <openssl/ssl.h>

#include "bench/loopback.hpp"
#include "bench/proxy_workload.hpp"
#include "bench/ratio_reporter.hpp"
#include "registry/registry.hpp"
#include "wire/frame.hpp"
#include "wire/messages.hpp"

namespace {

using namespace monitor::bench;
namespace fs = std::filesystem;

constexpr int kWindow = 64;

// A deployment's files for one part, as scripts/pki.sh writes them.
struct Part {
  std::string ca, cert, key;
};

std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> tls_context(const Part& part) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), part.ca.c_str(), nullptr) != 1 ||
      SSL_CTX_use_certificate_chain_file(ctx.get(), part.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), part.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error("TLS files of " + part.cert);
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

// One blocking connection, plain or TLS; used from one thread.
class Link {
 public:
  Link(int fd, SSL_CTX* ctx, bool accepting) : fd_(fd) {
    if (ctx == nullptr) return;
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd);
    if ((accepting ? SSL_accept(ssl_) : SSL_connect(ssl_)) != 1) throw std::runtime_error("TLS handshake");
  }
  ~Link() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ::close(fd_);
  }
  bool write(const char* p, size_t n) {
    if (ssl_ == nullptr) return write_all(fd_, p, n);
    size_t written = 0;
    return n == 0 || (SSL_write_ex(ssl_, p, n, &written) == 1 && written == n);
  }
  ssize_t read(char* p, size_t n) {
    if (ssl_ == nullptr) return ::recv(fd_, p, n, 0);
    size_t got = 0;
    return SSL_read_ex(ssl_, p, n, &got) == 1 ? static_cast<ssize_t>(got) : -1;
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  SSL* ssl_ = nullptr;
};

// A judger that stores nothing: answers HELLO, every BATCH and heartbeats.
class SinkJudger {
 public:
  explicit SinkJudger(SSL_CTX* ctx) : ctx_(ctx), listen_fd_(listen_any(port_)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~SinkJudger() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    if (const int fd = conn_fd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  void serve() {
    std::vector<char> buffer(1 << 20);
    while (true) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      conn_fd_ = fd;
      try {
        Link link(fd, ctx_, true);
        wire::FrameDecoder decoder;
        std::string out;
        while (true) {
          const ssize_t n = link.read(buffer.data(), buffer.size());
          if (n <= 0) break;
          out.clear();
          answer_as_judger(decoder, std::string_view(buffer.data(), static_cast<size_t>(n)), out);
          if (!link.write(out.data(), out.size())) break;
        }
      } catch (const std::exception&) {
      }
      conn_fd_ = -1;
    }
  }

  SSL_CTX* ctx_;
  int port_ = 0;
  const int listen_fd_;
  std::atomic<int> conn_fd_{-1};
  std::thread thread_;
};

// Reports per second through the Bonnie on `port`: a window of kWindow
// batches, refilled as ACKs come, on one thread.
double run_client(int port, SSL_CTX* ctx, double seconds) {
  Link link(connect_to(port, 10s), ctx, false);
  const std::string hello = proxy_hello_and_names();
  const std::string batch = proxy_batch_frame(1);
  if (!link.write(hello.data(), hello.size())) throw std::runtime_error("send hello");
  wire::FrameDecoder decoder;
  std::vector<char> buffer(1 << 16);
  int64_t sent = 0, acked = 0, acked_at_start = -1;
  auto start = std::chrono::steady_clock::now();
  const auto warm = start + 300ms;  // the handshake and the first window are not the steady state
  std::chrono::steady_clock::time_point end{};
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (acked_at_start < 0 && now >= warm) {
      acked_at_start = acked;
      start = now;
      end = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
    }
    if (acked_at_start >= 0 && now >= end) break;
    while (sent - acked < kWindow) {
      if (!link.write(batch.data(), batch.size())) throw std::runtime_error("send batch");
      ++sent;
    }
    const ssize_t n = link.read(buffer.data(), buffer.size());
    if (n <= 0) throw std::runtime_error("Bonnie closed the connection");
    decoder.feed(std::string_view(buffer.data(), static_cast<size_t>(n)));
    wire::Frame frame{};
    while (decoder.next(frame) == wire::FrameDecoder::Status::kFrame) {
      if (frame.type == wire::FrameType::kAck) ++acked;
    }
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::shutdown(link.fd(), SHUT_RDWR);
  return static_cast<double>(acked - acked_at_start) * kRecordsPerBatch / elapsed;
}

void pki(const std::string& args) {
  const std::string command = std::string(MONITOR_SOURCE_DIR) + "/scripts/pki.sh --days 2 " + args + " >/dev/null";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("scripts/pki.sh " + args);
}

// A registry where Bench.Proxy belongs to the judger at `judger_port`.
std::string registry_for(const fs::path& dir, int judger_port) {
  const std::string address = "file:" + dir.string();
  auto registry = monitor::registry::open_registry(address);
  if (!registry) throw std::runtime_error("registry");
  boost::json::object attrs;
  for (int i = 0; i < kProxyNames; ++i) attrs["Attr.N" + std::to_string(i)] = i + 1;
  (void)(*registry)->put("services", "Bench.Proxy", boost::json::object{{"id", 1}, {"attrs", attrs}});
  (void)(*registry)->put("assignments", "Bench.Proxy", boost::json::object{{"judger", "sink"}});
  (void)(*registry)->put_live("judgers", "sink", boost::json::object{{"address", "127.0.0.1:" + std::to_string(judger_port)}},
                              1h);
  return address;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  std::signal(SIGPIPE, SIG_IGN);  // OpenSSL writes with write(2): a closed peer is an error, not a signal
  const fs::path dir = fs::temp_directory_path() / ("proxy-tls-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string pki_dir = (dir / "pki").string();
  pki("init " + pki_dir);
  pki("issue " + pki_dir + " bonnie bench-bonnie");
  pki("issue " + pki_dir + " judger sink");
  pki("issue " + pki_dir + " agent " + std::to_string(kProxySender));
  const auto part = [&](const std::string& name) {
    return Part{pki_dir + "/ca.pem", pki_dir + "/" + name + ".pem", pki_dir + "/" + name + ".key"};
  };
  const auto client_tls = tls_context(part("agent-" + std::to_string(kProxySender)));
  const auto sink_tls = tls_context(part("judger-sink"));

  SinkJudger plain_sink(nullptr), tls_sink(sink_tls.get());
  const auto bonnie = [&](const std::string& name, int port, int sink_port, bool tls) {
    std::vector<std::string> args = {MONITOR_PROXY_PATH, "--role", "bonnie", "--name", "bench-bonnie", "--listen",
                                     "127.0.0.1:" + std::to_string(port), "--registry",
                                     registry_for(dir / (name + "-registry"), sink_port), "--data-dir",
                                     (dir / name).string(), "--no-self-metrics", "--log-level", "warn"};
    if (tls) {
      const Part p = part("bonnie-bench-bonnie");
      args.insert(args.end(), {"--tls-ca", p.ca, "--tls-cert", p.cert, "--tls-key", p.key});
    }
    return std::make_unique<DaemonProcess>(args);
  };
  int plain_port = 0, tls_port = 0;
  ::close(listen_any(plain_port));
  ::close(listen_any(tls_port));
  auto plain_bonnie = bonnie("plain", plain_port, plain_sink.port(), false);
  auto tls_bonnie = bonnie("tls", tls_port, tls_sink.port(), true);
  std::this_thread::sleep_for(1500ms);  // each reads its registry and connects to its sink

  std::vector<double> plain, tls, ratios;
  // The share of a core a Bonnie used while a client ran.
  const auto timed = [](const DaemonProcess& process, const auto& client, double& core) {
    const double cpu_before = cpu_seconds(process.pid());
    const auto t0 = std::chrono::steady_clock::now();
    const double rate = client();
    core = (cpu_seconds(process.pid()) - cpu_before) /
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rate;
  };
  for (int run = 0; run < runs; ++run) {
    double plain_core = 0, tls_core = 0;
    plain.push_back(timed(*plain_bonnie, [&] { return run_client(plain_port, nullptr, seconds); }, plain_core));
    tls.push_back(timed(*tls_bonnie, [&] { return run_client(tls_port, client_tls.get(), seconds); }, tls_core));
    ratios.push_back(tls.back() / plain.back());
    std::printf("run %d: Bonnie over TLS %.2f M reports/s (%.0f%% of a core), plain %.2f M reports/s (%.0f%%): %.2fx\n",
                run + 1, tls.back() / 1e6, tls_core * 100, plain.back() / 1e6, plain_core * 100, ratios.back());
  }
  monitor::bench::print_header("Bonnie forwarding, TLS 1.3 on both hops beside plain TCP, medians");
  monitor::bench::print_row("Bonnie over TLS, 1 000-record batches", median(tls) / 1e6, "M rep/s",
                            "the same Bonnie over plain TCP", median(plain) / 1e6, median(ratios), ">= 0.85x plain");
  std::printf("(the ratio is the median of each run's TLS/plain pair)\n");
  plain_bonnie.reset();
  tls_bonnie.reset();
  fs::remove_all(dir);
  return 0;
}
