// Facts about processes read from /proc, for lane ownership and health metrics.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace monitor {

/// Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22),
/// or 0 if the process is gone or unreadable. Async-signal-unsafe; not hot.
uint64_t process_start_ticks(pid_t pid) noexcept;

/// False only when `pid` certainly does not exist (kill(pid, 0) gives ESRCH).
bool process_exists(pid_t pid) noexcept;

/// Resident set of this process, split as /proc/self/status reports it.
struct RssInfo {
  uint64_t anon_bytes = 0;   // RssAnon: heap, stacks
  uint64_t file_bytes = 0;   // RssFile: mapped code and files
  uint64_t shmem_bytes = 0;  // RssShmem: the ring, among others
  uint64_t total() const noexcept { return anon_bytes + file_bytes + shmem_bytes; }
};
RssInfo read_rss(pid_t pid = 0) noexcept;

/// CPU time (user + system) this process has used, in ns.
int64_t process_cpu_ns() noexcept;

}  // namespace monitor
