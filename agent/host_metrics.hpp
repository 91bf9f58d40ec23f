// The host's own figures (CPU, load, memory, filesystems, disks, network
// interfaces, TCP, file handles, uptime, clock), collected by the agent on a
// thread of its own so a slow /proc read or a hung mount never holds the
// drain loop. docs/host-metrics.md lists every attr, its unit and its ops.
#pragma once

#include <sys/statvfs.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/device_segment.hpp"
#include "agent/host_proc.hpp"

namespace monitor::agent {

struct HostMetricsOptions {
  bool enabled = true;
  int interval_ms = 1000;
  std::string service = "Host.System";
  bool per_core = false;
  // Globs (fnmatch) of what is not reported. The defaults skip pseudo and
  // container filesystems, partitions and virtual block devices, and virtual
  // interfaces, as node_exporter's defaults do.
  std::vector<std::string> skip_fs_types = {
      "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs", "fusectl",
      "hugetlbfs", "iso9660", "mqueue", "nsfs", "overlay", "proc", "procfs", "pstore", "rpc_pipefs", "securityfs",
      "selinuxfs", "squashfs", "sysfs", "tracefs", "ramfs", "efivarfs", "fuse.lxcfs", "tmpfs"};
  std::vector<std::string> skip_mounts = {"/dev",          "/dev/*",          "/proc", "/proc/*",
                                          "/sys",          "/sys/*",          "/run/credentials/*",
                                          "/var/lib/docker/*", "/var/lib/containers/storage/*", "/snap/*",
                                          "/mnt/sandboxing/*"};
  std::vector<std::string> skip_disks = {"loop*", "ram*", "zram*", "fd*", "sr*", "sd*[0-9]", "vd*[0-9]",
                                         "hd*[0-9]", "xvd*[0-9]", "nvme*n*p*", "mmcblk*p*"};
  std::vector<std::string> skip_interfaces = {"lo", "veth*", "docker*", "br-*", "virbr*", "ifb*", "cali*",
                                              "flannel*", "cni*", "tunl*", "kube-*", "dummy*"};
  // Per kind (filesystems, disks, interfaces): past it, devices are skipped and counted.
  size_t max_devices = 64;
  int statvfs_timeout_ms = 1000;
  std::string proc_root = "/proc";
  // A seam for tests: a hung NFS mount cannot be made on a test machine.
  int (*statvfs_fn)(const char*, struct statvfs*) = ::statvfs;
};

/// A figure of one collection: `attr` of the host service, its value and ops.
struct HostSample {
  std::string attr;
  int64_t value;
  uint32_t ops;
};

/// One collection: when it was taken (ns since the epoch) and its figures.
struct HostRound {
  int64_t time_ns = 0;
  std::vector<HostSample> samples;
};

/// Health of the collector (reported as Monitor.Agent HostMetrics.*); monotonic.
struct HostMetricsCounters {
  std::atomic<uint64_t> rounds{0};
  std::atomic<uint64_t> read_errors{0};        // a /proc file that could not be read
  std::atomic<uint64_t> statvfs_timed_out{0};  // a mount that did not answer in statvfs_timeout_ms
  std::atomic<uint64_t> devices_skipped{0};    // past max_devices, or a name that maps to a taken attr segment
  std::atomic<uint64_t> counter_resets{0};     // a counter that went down (a reboot, a device re-created)
  std::atomic<int64_t> collect_us{0};          // the last round's duration
};


/// The change of a cumulative counter between rounds, never negative and
/// never a spike: the first value of a key, and a value below the last one
/// (the counter was reset), give nothing and start again from there. Keys
/// not seen in a round are forgotten (a device that went away).
class CounterDeltas {
 public:
  std::optional<int64_t> delta(const std::string& key, uint64_t value);
  /// Forgets the keys not seen since the last end_round().
  void end_round();
  uint64_t resets() const noexcept { return resets_; }

 private:
  struct Last {
    uint64_t value;
    bool seen;
  };
  std::unordered_map<std::string, Last> last_;
  uint64_t resets_ = 0;
};

/// Takes one round of the host's figures per collect(); remembers the last
/// counters to give their changes. Not thread-safe.
class HostSampler {
 public:
  explicit HostSampler(HostMetricsOptions options) : options_(std::move(options)) {}
  HostSampler(const HostSampler&) = delete;
  HostSampler& operator=(const HostSampler&) = delete;

  HostRound collect();
  const HostMetricsOptions& options() const noexcept { return options_; }
  const HostMetricsCounters& counters() const noexcept { return counters_; }

 private:
  void collect_cpu(HostRound& round);
  void collect_memory(HostRound& round);
  void collect_filesystems(HostRound& round);
  void collect_disks(HostRound& round);
  void collect_interfaces(HostRound& round);
  void collect_network_and_system(HostRound& round);
  void collect_clock(HostRound& round);
  std::optional<std::string> read_proc(const char* name, size_t max_bytes = 1 << 20);
  // The attr segment of `device`, or empty when it is skipped (counted).
  // `taken`: the segments this round's devices of its kind have, each to its device.
  std::string admit(std::map<std::string, std::string>& taken, const std::string& device);
  // Adds the change of a cumulative counter (none the first time); returns it, or 0.
  int64_t counter(HostRound& round, const std::string& attr, uint64_t value);

  HostMetricsOptions options_;
  HostMetricsCounters counters_;
  CounterDeltas deltas_;
  std::optional<host::ProcStat> last_stat_;
  struct StatvfsCall;
  std::map<std::string, std::shared_ptr<StatvfsCall>> statvfs_calls_;  // mount point -> last call
};

/// Runs a HostSampler every interval_ms on its own thread; the agent's loop
/// take()s the rounds. At most kMaxRounds wait: older ones are dropped and counted.
class HostCollector {
 public:
  static constexpr size_t kMaxRounds = 8;

  explicit HostCollector(HostMetricsOptions options);
  ~HostCollector();
  HostCollector(const HostCollector&) = delete;
  HostCollector& operator=(const HostCollector&) = delete;

  /// Appends the rounds collected since the last call.
  void take(std::vector<HostRound>& out);
  const HostMetricsCounters& counters() const noexcept { return sampler_.counters(); }
  uint64_t rounds_dropped() const noexcept { return rounds_dropped_.load(std::memory_order_relaxed); }

 private:
  void run(std::stop_token stop);

  HostSampler sampler_;  // the thread's only
  std::atomic<uint64_t> rounds_dropped_{0};
  std::mutex mutex_;
  std::condition_variable_any wake_;  // woken at once by the stop token
  std::deque<HostRound> rounds_;
  std::jthread thread_;  // last: started once the rest exists
};

}  // namespace monitor::agent
