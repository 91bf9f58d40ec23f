#include "common/process_info.hpp"

#include <time.h>

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace monitor {

uint64_t process_start_ticks(pid_t pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return 0;
  char buf[1024];
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Field 2 (comm) may hold spaces and parentheses; fields resume after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return 0;
  ++p;
  // After ')' comes field 3; start time is field 22, i.e. the 20th from here.
  for (int field = 3; field < 22 && *p != '\0'; ++field) {
    while (*p == ' ') ++p;
    while (*p != ' ' && *p != '\0') ++p;
  }
  return std::strtoull(p, nullptr, 10);
}

bool process_exists(pid_t pid) noexcept {
  return !(kill(pid, 0) != 0 && errno == ESRCH);
}

RssInfo read_rss(pid_t pid) noexcept {
  RssInfo info;
  char path[64];
  if (pid == 0) {
    std::snprintf(path, sizeof path, "/proc/self/status");
  } else {
    std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
  }
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return info;
  char line[256];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long long kb = 0;
    if (std::sscanf(line, "RssAnon: %llu kB", &kb) == 1) info.anon_bytes = kb * 1024;
    else if (std::sscanf(line, "RssFile: %llu kB", &kb) == 1) info.file_bytes = kb * 1024;
    else if (std::sscanf(line, "RssShmem: %llu kB", &kb) == 1) info.shmem_bytes = kb * 1024;
  }
  std::fclose(f);
  return info;
}

int64_t process_cpu_ns() noexcept {
  timespec ts{};
  if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace monitor
