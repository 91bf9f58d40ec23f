#include "agent/host_checks.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "monitor/monitor.h"
#include "net/http_get.hpp"

namespace monitor::agent {

namespace {

constexpr uint32_t kGauge = MONITOR_OP_LAST | MONITOR_OP_MAX | MONITOR_OP_MIN;
constexpr int64_t kNsPerS = 1'000'000'000;

// Connects to host:port within `timeout_ms`; the connect's duration in µs, or -1.
int64_t tcp_connect_micros(const std::string& address, int timeout_ms) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return -1;
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), address.c_str() + colon + 1, &hints, &found) != 0 || found == nullptr) return -1;
  const int64_t start = monotonic_ns();
  int64_t micros = -1;
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    int rc = ::connect(fd, found->ai_addr, found->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, timeout_ms) == 1) {
        int error = 0;
        socklen_t len = sizeof error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
        rc = error == 0 ? 0 : -1;
      }
    }
    if (rc == 0) micros = (monotonic_ns() - start) / 1000;
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return micros;
}

// Up to `max` bytes of a small /proc file.
std::string read_small(const std::string& path, size_t max) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  out.resize(max);
  const ssize_t n = ::read(fd, out.data(), max);
  ::close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

std::vector<HostSample> http_check(const CheckSpec& check) {
  const std::string prefix = "Check." + check.name + ".";
  std::string_view rest = check.target;
  rest.remove_prefix(std::string_view("http://").size());  // read_checks made sure of it
  const size_t slash = rest.find('/');
  std::string address(rest.substr(0, slash));
  const std::string target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (address.rfind(':') == std::string::npos || address.back() == ']') address += ":80";
  const int64_t start = monotonic_ns();
  auto reply = net::http_get(address, target, std::chrono::milliseconds(check.timeout_ms), size_t{16} << 20);
  const int64_t micros = (monotonic_ns() - start) / 1000;
  const int64_t status = reply ? reply->status : 0;
  return {{prefix + "Up", status >= 200 && status < 400 ? 1 : 0, kGauge},
          {prefix + "Status", status, MONITOR_OP_LAST | MONITOR_OP_MAX},
          {prefix + "Micros", micros, kGauge}};
}

}  // namespace

int64_t count_processes(const std::string& proc_root, const std::string& target, bool match_cmdline) {
  DIR* dir = ::opendir(proc_root.c_str());
  if (dir == nullptr) return 0;
  const std::string self = std::to_string(::getpid());
  int64_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view pid = entry->d_name;
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    if (pid == self) continue;
    const std::string base = proc_root + "/" + std::string(pid);
    if (match_cmdline) {
      std::string cmdline = read_small(base + "/cmdline", 4096);
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find(target) != std::string::npos) ++count;
    } else {
      std::string comm = read_small(base + "/comm", 64);
      if (!comm.empty() && comm.back() == '\n') comm.pop_back();
      if (comm == target) ++count;
    }
  }
  ::closedir(dir);
  return count;
}

std::vector<HostSample> run_check(const CheckSpec& check, const std::string& proc_root) {
  const std::string prefix = "Check." + check.name + ".";
  switch (check.kind) {
    case CheckSpec::Kind::kTcp: {
      const int64_t micros = tcp_connect_micros(check.target, check.timeout_ms);
      std::vector<HostSample> out{{prefix + "Up", micros >= 0 ? 1 : 0, kGauge}};
      if (micros >= 0) out.push_back({prefix + "Micros", micros, kGauge});
      return out;
    }
    case CheckSpec::Kind::kProcess:
      return {{prefix + "Count", count_processes(proc_root, check.target, check.match_cmdline), kGauge}};
    case CheckSpec::Kind::kHttp:
      return http_check(check);
  }
  return {};
}

CheckRunner::CheckRunner(std::vector<CheckSpec> checks) : checks_(std::move(checks)) {
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

CheckRunner::~CheckRunner() {
  thread_.request_stop();
  thread_.join();  // before the members it uses go
}

void CheckRunner::take(std::vector<HostRound>& out) {
  std::lock_guard lock(mutex_);
  while (!rounds_.empty()) {
    out.push_back(std::move(rounds_.front()));
    rounds_.pop_front();
  }
}

void CheckRunner::run(std::stop_token stop) {
  std::vector<int64_t> next_due(checks_.size());
  const int64_t start = realtime_ns();
  for (size_t i = 0; i < checks_.size(); ++i) {
    const int64_t period = int64_t{checks_[i].interval_s} * kNsPerS;
    next_due[i] = (start / period + 1) * period;
  }
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    const int64_t now = realtime_ns();
    for (size_t i = 0; i < checks_.size() && !stop.stop_requested(); ++i) {
      if (now < next_due[i]) continue;
      const int64_t period = int64_t{checks_[i].interval_s} * kNsPerS;
      next_due[i] = (realtime_ns() / period + 1) * period;  // a slow check skips runs rather than piling them up
      lock.unlock();
      HostRound round;
      round.time_ns = realtime_ns();
      round.samples = run_check(checks_[i]);
      runs_.fetch_add(1, std::memory_order_relaxed);
      if (!round.samples.empty() && round.samples.front().value == 0) failed_.fetch_add(1, std::memory_order_relaxed);
      lock.lock();
      if (rounds_.size() >= kMaxRounds) {
        rounds_dropped_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      rounds_.push_back(std::move(round));
    }
    const int64_t wake_at = checks_.empty() ? now + 3600 * kNsPerS : *std::min_element(next_due.begin(), next_due.end());
    wake_.wait_for(lock, stop, std::chrono::nanoseconds(std::max<int64_t>(wake_at - realtime_ns(), 0)), [] { return false; });
  }
}

}  // namespace monitor::agent
