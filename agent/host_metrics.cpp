#include "agent/host_metrics.hpp"

#include <fnmatch.h>
#include <sys/statvfs.h>
#include <sys/timex.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "monitor/monitor.h"

namespace monitor::agent {
namespace {

constexpr uint32_t kGauge = MONITOR_OP_LAST | MONITOR_OP_MAX | MONITOR_OP_MIN;
constexpr uint32_t kShare = MONITOR_OP_AVG | MONITOR_OP_MAX | MONITOR_OP_MIN;
constexpr uint32_t kCounter = MONITOR_OP_SUM | MONITOR_OP_MAX;

bool matches_any(const std::vector<std::string>& globs, const std::string& name) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& glob) { return ::fnmatch(glob.c_str(), name.c_str(), 0) == 0; });
}

// Parts of ten thousand (basis points), rounded: integer shares.
int64_t permyriad(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0 : std::llround(static_cast<double>(part) * 10000.0 / static_cast<double>(whole));
}

}  // namespace


std::optional<int64_t> CounterDeltas::delta(const std::string& key, uint64_t value) {
  auto [it, fresh] = last_.try_emplace(key, Last{value, true});
  if (fresh) return std::nullopt;
  Last& last = it->second;
  last.seen = true;
  if (value < last.value) {
    ++resets_;
    last.value = value;
    return std::nullopt;
  }
  const uint64_t d = value - last.value;
  last.value = value;
  return static_cast<int64_t>(std::min<uint64_t>(d, INT64_MAX));
}

void CounterDeltas::end_round() {
  std::erase_if(last_, [](const auto& entry) { return !entry.second.seen; });
  for (auto& [key, last] : last_) last.seen = false;
}

// One statvfs() on a thread of its own: a hung NFS server blocks it in the
// kernel, and only that thread waits. A mount whose call has not returned
// gets no new one (at most one stuck thread per mount).
struct HostSampler::StatvfsCall {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  int rc = -1;
  struct statvfs result {};
};

HostCollector::HostCollector(HostMetricsOptions options) : sampler_(std::move(options)) {
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

HostCollector::~HostCollector() {
  thread_.request_stop();
  thread_.join();  // before the sampler it uses goes
}

void HostCollector::take(std::vector<HostRound>& out) {
  std::lock_guard lock(mutex_);
  while (!rounds_.empty()) {
    out.push_back(std::move(rounds_.front()));
    rounds_.pop_front();
  }
}

void HostCollector::run(std::stop_token stop) {
  const auto interval = std::chrono::milliseconds(std::max(sampler_.options().interval_ms, 100));
  // On the interval's boundary of the wall clock, so every host's round of a
  // second is taken at about the same time and lands in that second.
  auto next = std::chrono::system_clock::now();
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    lock.unlock();
    HostRound round = sampler_.collect();
    lock.lock();
    rounds_.push_back(std::move(round));
    if (rounds_.size() > kMaxRounds) {
      rounds_.pop_front();
      rounds_dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    const auto now = std::chrono::system_clock::now();
    next = std::chrono::system_clock::time_point(
        (now.time_since_epoch() / interval + 1) * std::chrono::duration_cast<std::chrono::system_clock::duration>(interval));
    wake_.wait_until(lock, stop, next, [] { return false; });
  }
}

HostRound HostSampler::collect() {
  const auto started = std::chrono::steady_clock::now();
  HostRound round;
  round.time_ns = realtime_ns();
  collect_cpu(round);
  collect_memory(round);
  collect_filesystems(round);
  collect_disks(round);
  collect_interfaces(round);
  collect_network_and_system(round);
  collect_clock(round);
  deltas_.end_round();
  counters_.counter_resets.store(deltas_.resets(), std::memory_order_relaxed);
  counters_.rounds.fetch_add(1, std::memory_order_relaxed);
  counters_.collect_us.store(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count(),
      std::memory_order_relaxed);
  return round;
}

std::optional<std::string> HostSampler::read_proc(const char* name, size_t max_bytes) {
  auto text = host::read_bounded(options_.proc_root + "/" + name, max_bytes);
  if (!text) counters_.read_errors.fetch_add(1, std::memory_order_relaxed);
  return text;
}

std::string HostSampler::admit(std::map<std::string, std::string>& taken, const std::string& device) {
  std::string segment = device_segment(device);
  const bool full = taken.size() >= options_.max_devices;
  const auto other = taken.find(segment);
  if (segment.empty() || full || (other != taken.end() && other->second != device)) {
    counters_.devices_skipped.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  taken[segment] = device;
  return segment;
}

int64_t HostSampler::counter(HostRound& round, const std::string& attr, uint64_t value) {
  const auto d = deltas_.delta(attr, value);
  if (d) round.samples.push_back({attr, *d, kCounter});
  return d.value_or(0);
}

void HostSampler::collect_cpu(HostRound& round) {
  const auto text = read_proc("stat");
  if (!text) return;
  host::ProcStat stat = host::parse_stat(*text);
  auto shares = [&](const std::string& prefix, const host::CpuTimes& now, const host::CpuTimes& before) {
    // A counter that went back (a CPU taken offline and back) gives no share this round.
    if (now.total() <= before.total() || now.idle < before.idle) return;
    const uint64_t total = now.total() - before.total();
    auto share = [&](const char* name, uint64_t a, uint64_t b) {
      round.samples.push_back({prefix + name, permyriad(a >= b ? a - b : 0, total), kShare});
    };
    share("User", now.user, before.user);
    share("Nice", now.nice, before.nice);
    share("System", now.system, before.system);
    share("Idle", now.idle, before.idle);
    share("Iowait", now.iowait, before.iowait);
    share("Irq", now.irq, before.irq);
    share("Softirq", now.softirq, before.softirq);
    share("Steal", now.steal, before.steal);
    share("Busy", now.busy(), before.busy());
  };
  if (last_stat_) {
    shares("Cpu.", stat.all, last_stat_->all);
    if (options_.per_core && stat.cores.size() == last_stat_->cores.size()) {
      for (size_t i = 0; i < stat.cores.size() && i < options_.max_devices; ++i) {
        shares("Cpu.Core" + std::to_string(i) + ".", stat.cores[i], last_stat_->cores[i]);
      }
    }
  }
  round.samples.push_back({"Cpu.Cores", static_cast<int64_t>(stat.cores.size()), kGauge});
  const int64_t cores = std::max<int64_t>(1, static_cast<int64_t>(stat.cores.size()));
  counter(round, "Cpu.ContextSwitches", stat.context_switches);
  counter(round, "Procs.Forks", stat.forks);
  round.samples.push_back({"Procs.Running", stat.procs_running, kGauge});
  round.samples.push_back({"Procs.Blocked", stat.procs_blocked, kGauge});
  last_stat_ = std::move(stat);
  if (const auto load = read_proc("loadavg")) {
    if (const auto avg = host::parse_loadavg(*load)) {
      round.samples.push_back({"Load.Avg1", avg->one, kGauge});
      round.samples.push_back({"Load.Avg5", avg->five, kGauge});
      round.samples.push_back({"Load.Avg15", avg->fifteen, kGauge});
      // What a rule can compare across hosts of any size: a template's "load per core > 4".
      round.samples.push_back({"Load.PerCore1", avg->one / cores, kGauge});
      round.samples.push_back({"Load.PerCore5", avg->five / cores, kGauge});
    }
  }
}

void HostSampler::collect_memory(HostRound& round) {
  const auto text = read_proc("meminfo");
  if (!text) return;
  const host::MemInfo m = host::parse_meminfo(*text);
  round.samples.push_back({"Mem.TotalBytes", m.total, kGauge});
  round.samples.push_back({"Mem.AvailableBytes", m.available, kGauge});
  round.samples.push_back({"Mem.UsedBytes", m.total - m.available, kGauge});
  round.samples.push_back({"Mem.FreeBytes", m.free, kGauge});
  round.samples.push_back({"Mem.CachedBytes", m.cached, kGauge});
  round.samples.push_back({"Mem.BuffersBytes", m.buffers, kGauge});
  round.samples.push_back({"Mem.AvailablePermyriad",
                           permyriad(static_cast<uint64_t>(std::max<int64_t>(m.available, 0)),
                                     static_cast<uint64_t>(std::max<int64_t>(m.total, 0))),
                           kGauge});
  round.samples.push_back({"Swap.TotalBytes", m.swap_total, kGauge});
  round.samples.push_back({"Swap.UsedBytes", m.swap_total - m.swap_free, kGauge});
}

void HostSampler::collect_filesystems(HostRound& round) {
  const auto text = read_proc("self/mounts");
  if (!text) return;
  std::map<std::string, std::string> fs_segments;  // segment -> device
  // The last mount of a point is the one in use.
  std::map<std::string, host::Mount> by_point;
  for (auto& m : host::parse_mounts(*text)) {
    if (matches_any(options_.skip_fs_types, m.type) || matches_any(options_.skip_mounts, m.point)) continue;
    by_point[m.point] = std::move(m);
  }
  const auto timeout = std::chrono::milliseconds(options_.statvfs_timeout_ms);
  int64_t fullest = -1;
  for (const auto& [point, mount] : by_point) {
    auto& call = statvfs_calls_[point];
    if (call) {
      std::lock_guard lock(call->mutex);
      if (!call->done) {
        counters_.statvfs_timed_out.fetch_add(1, std::memory_order_relaxed);
        continue;  // still hung since an earlier round
      }
    }
    const std::string segment = admit(fs_segments, point);
    if (segment.empty()) continue;
    call = std::make_shared<StatvfsCall>();
    std::thread([call = call, path = point, statvfs_fn = options_.statvfs_fn] {
      struct statvfs result {};
      const int rc = statvfs_fn(path.c_str(), &result);
      std::lock_guard lock(call->mutex);
      call->rc = rc;
      call->result = result;
      call->done = true;
      call->done_cv.notify_all();
    }).detach();
    std::unique_lock lock(call->mutex);
    if (!call->done_cv.wait_for(lock, timeout, [&] { return call->done; })) {
      counters_.statvfs_timed_out.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("host metrics: statvfs({}) did not answer in {} ms: the mount is skipped until it does", point,
                   options_.statvfs_timeout_ms);
      continue;
    }
    if (call->rc != 0) continue;
    const struct statvfs& s = call->result;
    const uint64_t unit = s.f_frsize != 0 ? s.f_frsize : s.f_bsize;
    const uint64_t used_blocks = s.f_blocks >= s.f_bfree ? s.f_blocks - s.f_bfree : 0;
    const std::string prefix = "Fs." + segment + ".";
    round.samples.push_back({prefix + "TotalBytes", static_cast<int64_t>(s.f_blocks * unit), kGauge});
    round.samples.push_back({prefix + "UsedBytes", static_cast<int64_t>(used_blocks * unit), kGauge});
    round.samples.push_back({prefix + "FreeBytes", static_cast<int64_t>(s.f_bavail * unit), kGauge});
    // As df shows "Use%": of what users may have (used + available to them).
    const int64_t used_permyriad = permyriad(used_blocks, used_blocks + s.f_bavail);
    round.samples.push_back({prefix + "UsedPermyriad", used_permyriad, kGauge});
    if (s.f_blocks != 0) fullest = std::max(fullest, used_permyriad);
    round.samples.push_back({prefix + "UsedInodes", static_cast<int64_t>(s.f_files - s.f_ffree), kGauge});
    round.samples.push_back({prefix + "FreeInodes", static_cast<int64_t>(s.f_favail), kGauge});
    round.samples.push_back({prefix + "ReadOnly", (s.f_flag & ST_RDONLY) != 0 || mount.read_only ? 1 : 0, kGauge});
  }
  // One series a rule can watch for every filesystem of every host.
  if (fullest >= 0) round.samples.push_back({"Fs.MaxUsedPermyriad", fullest, kGauge});
  // Calls of mounts gone: forgotten once they returned.
  std::erase_if(statvfs_calls_, [&](const auto& entry) {
    if (!entry.second) return true;
    if (by_point.contains(entry.first)) return false;
    std::lock_guard lock(entry.second->mutex);
    return entry.second->done;
  });
}

void HostSampler::collect_disks(HostRound& round) {
  const auto text = read_proc("diskstats");
  if (!text) return;
  std::map<std::string, std::string> disk_segments;  // segment -> device
  for (const auto& d : host::parse_diskstats(*text)) {
    if (matches_any(options_.skip_disks, d.name)) continue;
    const std::string segment = admit(disk_segments, d.name);
    if (segment.empty()) continue;
    const std::string prefix = "Disk." + segment + ".";
    counter(round, prefix + "Reads", d.reads);
    counter(round, prefix + "Writes", d.writes);
    counter(round, prefix + "ReadBytes", d.read_sectors * 512);
    counter(round, prefix + "WriteBytes", d.write_sectors * 512);
    counter(round, prefix + "IoMillis", d.io_ms);
  }
}

void HostSampler::collect_interfaces(HostRound& round) {
  const auto text = read_proc("net/dev");
  if (!text) return;
  std::map<std::string, std::string> net_segments;  // segment -> device
  int64_t drops = 0;
  bool any = false;
  for (const auto& n : host::parse_net_dev(*text)) {
    if (matches_any(options_.skip_interfaces, n.name)) continue;
    const std::string segment = admit(net_segments, n.name);
    if (segment.empty()) continue;
    const std::string prefix = "Net." + segment + ".";
    counter(round, prefix + "InBytes", n.in_bytes);
    counter(round, prefix + "OutBytes", n.out_bytes);
    counter(round, prefix + "InPackets", n.in_packets);
    counter(round, prefix + "OutPackets", n.out_packets);
    counter(round, prefix + "InErrors", n.in_errors);
    counter(round, prefix + "OutErrors", n.out_errors);
    drops += counter(round, prefix + "InDrops", n.in_drops);
    drops += counter(round, prefix + "OutDrops", n.out_drops);
    any = true;
  }
  // The interfaces' drops together (of their changes, so one that comes or goes is no spike).
  if (any) round.samples.push_back({"Net.Drops", drops, kCounter});
}

void HostSampler::collect_network_and_system(HostRound& round) {
  if (const auto snmp = read_proc("net/snmp")) {
    if (const auto v = host::parse_keyed_table(*snmp, "Tcp", "CurrEstab")) {
      round.samples.push_back({"Tcp.Established", *v, kGauge});
    }
    if (const auto v = host::parse_keyed_table(*snmp, "Tcp", "RetransSegs")) {
      counter(round, "Tcp.Retransmits", static_cast<uint64_t>(*v));
    }
    if (const auto v = host::parse_keyed_table(*snmp, "Tcp", "ActiveOpens")) {
      counter(round, "Tcp.ActiveOpens", static_cast<uint64_t>(*v));
    }
    if (const auto v = host::parse_keyed_table(*snmp, "Tcp", "PassiveOpens")) {
      counter(round, "Tcp.PassiveOpens", static_cast<uint64_t>(*v));
    }
  }
  if (const auto netstat = read_proc("net/netstat")) {
    if (const auto v = host::parse_keyed_table(*netstat, "TcpExt", "ListenOverflows")) {
      counter(round, "Tcp.ListenOverflows", static_cast<uint64_t>(*v));
    }
  }
  if (const auto sockstat = read_proc("net/sockstat")) {
    if (const auto v = host::parse_sockstat_time_wait(*sockstat)) round.samples.push_back({"Tcp.TimeWait", *v, kGauge});
  }
  if (const auto file_nr = read_proc("sys/fs/file-nr")) {
    if (const auto f = host::parse_file_nr(*file_nr)) {
      round.samples.push_back({"Fd.Used", f->used, kGauge});
      round.samples.push_back({"Fd.Max", f->max, kGauge});
    }
  }
  if (const auto uptime = read_proc("uptime")) {
    if (const auto v = host::parse_uptime(*uptime)) round.samples.push_back({"Uptime.Seconds", *v, kGauge});
  }
}

void HostSampler::collect_clock(HostRound& round) {
  struct timex tx {};
  const int state = ::adjtimex(&tx);  // modes 0: reads only
  if (state < 0) return;
  const int64_t offset_us = (tx.status & STA_NANO) != 0 ? tx.offset / 1000 : tx.offset;
  round.samples.push_back({"Clock.OffsetMicros", offset_us, kGauge});
  round.samples.push_back({"Clock.MaxErrorMicros", tx.maxerror, kGauge});
  // TIME_ERROR: the kernel's clock is not synchronised (no NTP daemon disciplines it).
  round.samples.push_back({"Clock.Synced", state == TIME_ERROR ? 0 : 1, kGauge});
}

}  // namespace monitor::agent
