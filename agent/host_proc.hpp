// Readers of the kernel's text files about the host (/proc): each takes the
// file's text and returns what it holds, so they are tested on fixtures and
// on this machine's own files alike. Lines they do not know are skipped; a
// file that is not what they expect gives an empty or partial result, never
// an exception. Formats: proc(5), Documentation/admin-guide/iostats.rst.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace monitor::agent::host {

/// Reads at most `max_bytes` of a file: /proc files are generated on read
/// and some (mounts, net/dev) grow with the host. nullopt if it cannot be read.
std::optional<std::string> read_bounded(const std::string& path, size_t max_bytes = 1 << 20);

/// Jiffies of one "cpu" line of /proc/stat, in its column order.
struct CpuTimes {
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  // guest and guest_nice are already inside user and nice.
  uint64_t total() const noexcept { return user + nice + system + idle + iowait + irq + softirq + steal; }
  uint64_t busy() const noexcept { return total() - idle - iowait; }
};

struct ProcStat {
  CpuTimes all;
  std::vector<CpuTimes> cores;  // cpu0, cpu1, ...
  uint64_t context_switches = 0, forks = 0;
  int64_t procs_running = 0, procs_blocked = 0;
};
ProcStat parse_stat(std::string_view text);

/// /proc/loadavg's three averages, in hundredths (1.27 -> 127).
struct LoadAvg {
  int64_t one = 0, five = 0, fifteen = 0;
};
std::optional<LoadAvg> parse_loadavg(std::string_view text);

/// /proc/meminfo, in bytes; a field the kernel does not show is 0.
struct MemInfo {
  int64_t total = 0, free = 0, available = 0, buffers = 0, cached = 0, swap_total = 0, swap_free = 0;
};
MemInfo parse_meminfo(std::string_view text);

/// One line of /proc/self/mounts (octal escapes such as \040 decoded).
struct Mount {
  std::string device, point, type;
  bool read_only = false;
};
std::vector<Mount> parse_mounts(std::string_view text);

/// One line of /proc/diskstats; sectors are 512 bytes whatever the device's.
struct DiskStats {
  std::string name;
  uint64_t reads = 0, read_sectors = 0, writes = 0, write_sectors = 0, io_ms = 0;
};
std::vector<DiskStats> parse_diskstats(std::string_view text);

/// One interface of /proc/net/dev.
struct NetDev {
  std::string name;
  uint64_t in_bytes = 0, in_packets = 0, in_errors = 0, in_drops = 0;
  uint64_t out_bytes = 0, out_packets = 0, out_errors = 0, out_drops = 0;
};
std::vector<NetDev> parse_net_dev(std::string_view text);

/// A value of a "Prefix: names..." / "Prefix: values..." pair of lines, as in
/// /proc/net/snmp (prefix "Tcp") and /proc/net/netstat ("TcpExt").
std::optional<int64_t> parse_keyed_table(std::string_view text, std::string_view prefix, std::string_view key);

/// TCP sockets in TIME-WAIT, from /proc/net/sockstat ("TCP: inuse 1 orphan 0 tw 8 ...").
std::optional<int64_t> parse_sockstat_time_wait(std::string_view text);

/// /proc/sys/fs/file-nr: handles allocated (less the free ones) and the maximum.
struct FileHandles {
  int64_t used = 0, max = 0;
};
std::optional<FileHandles> parse_file_nr(std::string_view text);

/// Seconds since boot, from /proc/uptime.
std::optional<int64_t> parse_uptime(std::string_view text);

}  // namespace monitor::agent::host
