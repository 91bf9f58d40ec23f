// Issue 23, section 3: faults made on purpose on the link between a Clyde
// (with its agent, in a network namespace of its own: another host) and its
// Bonnie (with the judger, here), while a writer reports at a steady rate: a
// 60 s partition, 200 ms of delay with jitter, 5 % packet loss, a link that
// silently drops everything, a 1 Mbit/s link. After each, the time until the
// Clyde's spool and unacknowledged queue are empty again is printed (the
// recovery time), and at the end every report the writer was told MONITOR_OK
// for is in the judger's minutes once, read through monitorctl query.
//
// Needs root (ip netns, veth, nft, tc): skipped with a warning without it.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "e2e/agent_process.hpp"
#include "e2e/judger_process.hpp"
#include "e2e/proxy_process.hpp"
#include "e2e/query_oracle.hpp"
#include "e2e/steady_writer.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace std::chrono_literals;
using monitor::test::ChildProcess;
using monitor::test::free_port;
using monitor::test::read_file;
using monitor::test::TempDir;
using monitor::test::TempRing;
using monitor::test::wait_until;
using namespace monitor::e2e;

namespace {

const std::string kService = "E2e.Test";
const std::string kAttr = "Steady.Count";
// 5 000 series a second: about 1.5 Mbit/s of batches from the Clyde, so a
// 1 Mbit/s link falls behind and must catch up.
constexpr int kRate = 5000;
constexpr int kServers = 5000;

bool run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

// Another host: a network namespace joined to this one by a veth pair,
// 10.201.K.2 inside and 10.201.K.1 here. Faults are made on its side, so
// nothing else on this machine sees them.
class NetnsHost {
 public:
  NetnsHost() {
    static std::atomic<int> made{0};
    const int n = made++;
    const int id = static_cast<int>(::getpid()) * 4 + n;
    name_ = fmt::format("mtf{}", id);
    outside_ = fmt::format("mfo{}", id % 10'000'000);
    inside_ = fmt::format("mfi{}", id % 10'000'000);
    const int k = 1 + id % 250;
    here_ = fmt::format("10.201.{}.1", k);
    there_ = fmt::format("10.201.{}.2", k);
    ok_ = run("ip netns add " + name_) &&
          run(fmt::format("ip link add {} type veth peer name {} netns {}", outside_, inside_, name_)) &&
          run(fmt::format("ip addr add {}/30 dev {}", here_, outside_)) && run("ip link set " + outside_ + " up") &&
          in(fmt::format("ip addr add {}/30 dev {}", there_, inside_)) && in("ip link set " + inside_ + " up") &&
          in("ip link set lo up") && in("nft add table inet fault") &&
          in("nft add chain inet fault out '{ type filter hook output priority 0; }'") &&
          in("nft add chain inet fault in '{ type filter hook input priority 0; }'");
  }
  ~NetnsHost() {
    run("ip netns del " + name_);
    run("ip link del " + outside_);
  }
  NetnsHost(const NetnsHost&) = delete;

  bool ok() const { return ok_; }
  const std::string& here() const { return here_; }    // this side's address
  const std::string& there() const { return there_; }  // the namespace's address
  std::vector<std::string> prefix() const { return {"/sbin/ip", "netns", "exec", name_}; }

  /// A command run inside the namespace.
  bool in(const std::string& command) const { return run("ip netns exec " + name_ + " " + command); }

  // Faults, on the namespace's side of the link.
  void partition() const { REQUIRE(in("ip link set " + inside_ + " down")); }
  void heal_partition() const { REQUIRE(in("ip link set " + inside_ + " up")); }
  /// Drops `percent` % of packets each way, silently (no RST, no ICMP).
  void lose(int percent) const {
    const std::string random = percent < 100 ? fmt::format("numgen random mod 100 < {} ", percent) : "";
    REQUIRE(in(fmt::format("nft 'add rule inet fault out ip daddr {} {}drop'", here_, random)));
    REQUIRE(in(fmt::format("nft 'add rule inet fault in ip saddr {} {}drop'", here_, random)));
  }
  void stop_losing() const { REQUIRE((in("nft flush chain inet fault out") && in("nft flush chain inet fault in"))); }
  /// The namespace's outgoing traffic at `rate` (tc's token bucket).
  void slow(const std::string& rate) const {
    REQUIRE(in(fmt::format("tc qdisc add dev {} root tbf rate {} burst 16kb latency 2s", inside_, rate)));
  }
  void unslow() const { REQUIRE(in(fmt::format("tc qdisc del dev {} root", inside_))); }
  /// New connections from the namespace to here:`port` go to here:`relay` instead.
  void redirect(int port, int relay) const {
    REQUIRE((in("nft add table ip relay") &&
             in("nft add chain ip relay out '{ type nat hook output priority -100; }'") &&
             in(fmt::format("nft add rule ip relay out ip daddr {} tcp dport {} dnat to {}:{}", here_, port, here_,
                            relay))));
  }

 private:
  std::string name_, outside_, inside_, here_, there_;
  bool ok_ = false;
};

// A TCP relay that holds what it forwards for a delay with jitter, in order
// (this kernel has no netem): each chunk read is written when its time
// comes, never before the chunk ahead of it.
class DelayRelay {
 public:
  /// Listens on `ip` (a port of its own) and relays to `ip`:`target_port`.
  DelayRelay(const std::string& ip, int target_port) : ip_(ip), target_port_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip.c_str(), &address.sin_addr);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener_, 16) == 0);
    socklen_t size = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
    threads_.emplace_back([this] { accept_loop(); });
  }
  ~DelayRelay() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    {
      std::lock_guard lock(mutex_);
      for (const int fd : sockets_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
    ::close(listener_);
    for (const int fd : sockets_) ::close(fd);
  }
  int port() const { return port_; }
  /// Each chunk waits `delay` ± `jitter` from now on.
  void set_delay(std::chrono::milliseconds delay, std::chrono::milliseconds jitter) {
    delay_ms_ = static_cast<int>(delay.count());
    jitter_ms_ = static_cast<int>(jitter.count());
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in target{};
      target.sin_family = AF_INET;
      target.sin_port = htons(static_cast<uint16_t>(target_port_));
      ::inet_pton(AF_INET, ip_.c_str(), &target.sin_addr);
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
        ::close(client);
        ::close(upstream);
        continue;
      }
      std::lock_guard lock(mutex_);
      sockets_.push_back(client);
      sockets_.push_back(upstream);
      threads_.emplace_back([this, client, upstream] { pump(client, upstream); });
      threads_.emplace_back([this, upstream, client] { pump(upstream, client); });
    }
  }
  void pump(int from, int to) {
    std::mt19937 random(static_cast<unsigned>(from * 7919 + to));
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> held;
    auto last_due = std::chrono::steady_clock::now();
    bool open = true;
    char buffer[65536];
    while (!stopping_ && (open || !held.empty())) {
      const auto now = std::chrono::steady_clock::now();
      int wait_ms = 100;
      if (!held.empty()) {
        wait_ms = static_cast<int>(
            std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(held.front().first - now).count()));
      }
      pollfd pfd{from, static_cast<short>(open ? POLLIN : 0), 0};
      ::poll(&pfd, 1, wait_ms);
      if (open && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t n = ::recv(from, buffer, sizeof buffer, 0);
        if (n <= 0) {
          open = false;
        } else {
          const int jitter = jitter_ms_.load();
          const int delay = delay_ms_.load() + (jitter > 0 ? static_cast<int>(random() % (2 * jitter + 1)) - jitter : 0);
          last_due = std::max(last_due, std::chrono::steady_clock::now() + std::chrono::milliseconds(delay));
          held.emplace_back(last_due, std::string(buffer, static_cast<size_t>(n)));
        }
      }
      while (!held.empty() && held.front().first <= std::chrono::steady_clock::now()) {
        const std::string& bytes = held.front().second;
        if (::send(to, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
          open = false;
          held.clear();
          break;
        }
        held.pop_front();
      }
    }
    ::shutdown(to, SHUT_WR);
    ::shutdown(from, SHUT_RD);
  }

  int listener_ = -1;
  int port_ = 0;
  const std::string ip_;
  const int target_port_;
  std::atomic<int> delay_ms_{0}, jitter_ms_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<int> sockets_;
  std::vector<std::thread> threads_;  // appended to by the accept thread only, joined after it ends
};


// True when the Clyde holds nothing: its spool is empty and nothing waits for an acknowledgement.
bool clyde_drained(const std::string& metrics_address) {
  return metrics_sample(metrics_address, "monitor_proxy_spool_batches") == 0 &&
         metrics_sample(metrics_address, "monitor_proxy_queue_unacked") == 0;
}

// The deployment: judger and Bonnie here, Clyde and agent on `host`.
struct Deployment {
  TempDir& dir;
  const NetnsHost& host;
  TempRing ring{"faults"};
  int query_port = free_port();
  int bonnie_port = free_port();
  std::string clyde_metrics;
  std::vector<ChildProcess> processes;  // stopped in reverse order

  Deployment(TempDir& d, const NetnsHost& h, const std::function<void(int)>& before_clyde = {}) : dir(d), host(h) {
    register_service(dir, kService, {kAttr});
    processes.push_back(spawn_judger(dir, free_port(), dir.file("judger.log"), query_port));
    // Bonnie listens on this side of the link, where the Clyde reaches it.
    const std::string bonnie_config = dir.file("bonnie.json");
    write(bonnie_config, R"({"heartbeat_interval_ms": 200, "heartbeat_timeout_ms": 1000, "allow_plaintext": true})");
    processes.push_back(ChildProcess::spawn(
        {MONITOR_PROXY_PATH, "--config", bonnie_config, "--role", "bonnie", "--name", "bonnie-1", "--listen",
         fmt::format("{}:{}", host.here(), bonnie_port), "--dc", "central", "--registry", registry_address(dir),
         "--data-dir", dir.file("bonnie-1"), "--no-self-metrics"},
        "", dir.file("bonnie-1.log")));
    if (before_clyde) before_clyde(bonnie_port);
    const std::string clyde_config = dir.file("clyde.json");
    write(clyde_config, R"({"heartbeat_interval_ms": 200, "heartbeat_timeout_ms": 1000})");
    write(dir.file("bonnies.txt"), fmt::format("{}:{}\n", host.here(), bonnie_port));
    const int clyde_port = free_port(), metrics_port = free_port();
    clyde_metrics = fmt::format("{}:{}", host.there(), metrics_port);
    std::vector<std::string> clyde = host.prefix();
    clyde.insert(clyde.end(), {MONITOR_PROXY_PATH, "--config", clyde_config, "--role", "clyde", "--name", "clyde-1",
                               "--listen", fmt::format("127.0.0.1:{}", clyde_port), "--dc", "remote", "--registry",
                               registry_address(dir), "--data-dir", dir.file("clyde-1"), "--bonnies-file",
                               dir.file("bonnies.txt"), "--metrics-listen", clyde_metrics, "--no-self-metrics"});
    processes.push_back(ChildProcess::spawn(clyde, "", dir.file("clyde-1.log")));
    std::vector<std::string> agent = host.prefix();
    agent.insert(agent.end(), {MONITOR_AGENT_PATH, "--no-host-metrics", "--ring", ring.name(), "--socket", "",
                               "--output", "none", "--registry", registry_address(dir), "--dc", "remote",
                               "--spool-dir", dir.file("agent-spool"), "--no-self-metrics"});
    processes.push_back(ChildProcess::spawn(agent, "", dir.file("agent.log")));
    REQUIRE(wait_until([&] { return metrics_sample(clyde_metrics, "monitor_proxy_spool_batches") >= 0; }, 20s));
  }
  ~Deployment() {
    for (auto it = processes.rbegin(); it != processes.rend(); ++it) {
      it->signal(SIGTERM);
      it->wait_for(20s);
    }
  }
  static void write(const std::string& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  std::string logs() const {
    return "clyde:\n" + read_file(dir.file("clyde-1.log")) + "\nbonnie:\n" + read_file(dir.file("bonnie-1.log")) +
           "\nagent:\n" + read_file(dir.file("agent.log")) + "\njudger:\n" + read_file(dir.file("judger.log"));
  }
  /// Waits (bounded) until the Clyde holds nothing; the seconds it took.
  double recovery_s(std::chrono::seconds bound = 120s) const {
    const auto from = std::chrono::steady_clock::now();
    const bool drained = wait_until([&] { return clyde_drained(clyde_metrics); }, bound);
    INFO(logs());
    REQUIRE(drained);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
  }
  /// Every report the writer was told MONITOR_OK for, once, in the judger's minutes.
  void check_exact(int64_t start, const std::string& writer_out) const {
    const int64_t last = unix_now_s();
    const double expected = static_cast<double>(ok_count(writer_out));
    REQUIRE(expected > 0);
    const double got = query_sum_when_final(dir, kService, kAttr, "SUM", "total", start, last, expected, 60s);
    INFO(logs() << "\nquery:\n" << read_file(dir.file("query.err")));
    CHECK(got == expected);
  }
};

bool can_make_hosts() {
  if (::geteuid() != 0) return false;
  NetnsHost probe;
  return probe.ok();
}

}  // namespace

TEST_CASE("issue 23: a Clyde cut off from its Bonnie for 60 s keeps what it gets and delivers it all when the link "
          "returns, every minute exact",
          "[e2e][issue23][fault][slow]") {
  if (!can_make_hosts()) {
    WARN("needs root, ip netns and nft to make a host of its own; skipped");
    return;
  }
  TempDir dir;
  NetnsHost host;
  REQUIRE(host.ok());
  Deployment deployment(dir, host);
  const int64_t start = unix_now_s();
  auto writer = spawn_steady(deployment.ring.name(), dir.file("writer.out"), 1, kRate, 600, {}, kServers);
  REQUIRE(wait_until([&] { return judger_health(deployment.query_port, "batches_stored") > 0; }, 20s));

  host.partition();
  // The scenario's own length, not a wait for something to happen.
  std::this_thread::sleep_for(60s);
  host.heal_partition();
  const double recovery = deployment.recovery_s();
  std::printf("fault: 60 s partition healed: the Clyde's spool delivered in %.1f s (goal <= 30 s)\n", recovery);
  writer.signal(SIGTERM);
  REQUIRE(writer.wait_for(10s) == 0);
  CHECK_THAT(read_file(dir.file("clyde-1.log")), Catch::Contains("lost "));
  deployment.check_exact(start, dir.file("writer.out"));
}

TEST_CASE("issue 23: 200 ms of delay with jitter, 5 % loss, a link that drops everything silently and a 1 Mbit/s "
          "link between Clyde and Bonnie: each recovers, every minute exact",
          "[e2e][issue23][fault][slow]") {
  if (!can_make_hosts()) {
    WARN("needs root, ip netns and nft to make a host of its own; skipped");
    return;
  }
  TempDir dir;
  NetnsHost host;
  REQUIRE(host.ok());
  // Every connection the Clyde opens to its Bonnie goes through the relay;
  // the relay delays only while the delay fault is on.
  std::unique_ptr<DelayRelay> relay;
  Deployment deployment(dir, host, [&](int bonnie_port) {
    relay = std::make_unique<DelayRelay>(host.here(), bonnie_port);
    host.redirect(bonnie_port, relay->port());
  });
  const int64_t start = unix_now_s();
  auto writer = spawn_steady(deployment.ring.name(), dir.file("writer.out"), 1, kRate, 600, {}, kServers);
  REQUIRE(wait_until([&] { return judger_health(deployment.query_port, "batches_stored") > 0; }, 20s));

  const auto phase = [&](const char* what, const std::function<void()>& on, const std::function<void()>& off) {
    on();
    std::this_thread::sleep_for(15s);  // the fault's length
    off();
    const double recovery = deployment.recovery_s();
    std::printf("fault: %s for 15 s: the Clyde's spool delivered %.1f s after it ended\n", what, recovery);
  };
  phase("200 ms of delay each way, +-50 ms of jitter", [&] { relay->set_delay(200ms, 50ms); },
        [&] { relay->set_delay(0ms, 0ms); });
  phase("5 % packet loss each way", [&] { host.lose(5); }, [&] { host.stop_losing(); });
  phase("every packet dropped silently", [&] { host.lose(100); }, [&] { host.stop_losing(); });
  phase("a 1 Mbit/s link", [&] { host.slow("1mbit"); }, [&] { host.unslow(); });
  writer.signal(SIGTERM);
  REQUIRE(writer.wait_for(10s) == 0);
  deployment.check_exact(start, dir.file("writer.out"));
}
