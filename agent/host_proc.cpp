#include "agent/host_proc.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>

namespace monitor::agent::host {
namespace {

// Splits on runs of spaces and tabs.
std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

template <typename F>
void each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    const size_t end = text.find('\n');
    f(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

template <typename T>
bool to_number(std::string_view s, T& out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

uint64_t u64_or_zero(const std::vector<std::string_view>& f, size_t i) {
  uint64_t v = 0;
  if (i < f.size() && !to_number(f[i], v)) v = 0;
  return v;
}

// "1.27" -> 127 (hundredths), without floating point.
std::optional<int64_t> hundredths(std::string_view s) {
  const size_t dot = s.find('.');
  int64_t whole = 0, frac = 0;
  if (!to_number(s.substr(0, dot), whole)) return std::nullopt;
  if (dot != std::string_view::npos) {
    std::string_view digits = s.substr(dot + 1, 2);
    if (!to_number(digits, frac)) return std::nullopt;
    if (digits.size() == 1) frac *= 10;
  }
  return whole * 100 + frac;
}

// /proc/self/mounts writes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view s) {
  const auto is_octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && is_octal(s[i + 1]) && is_octal(s[i + 2]) && is_octal(s[i + 3])) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::optional<std::string> read_bounded(const std::string& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  out.resize(max_bytes);
  size_t used = 0;
  while (used < max_bytes) {
    const ssize_t n = ::read(fd, out.data() + used, max_bytes - used);
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(used);
  return out;
}

ProcStat parse_stat(std::string_view text) {
  ProcStat out;
  each_line(text, [&](std::string_view line) {
    const auto f = fields_of(line);
    if (f.empty()) return;
    if (f[0].starts_with("cpu")) {
      CpuTimes t{u64_or_zero(f, 1), u64_or_zero(f, 2), u64_or_zero(f, 3), u64_or_zero(f, 4),
                 u64_or_zero(f, 5), u64_or_zero(f, 6), u64_or_zero(f, 7), u64_or_zero(f, 8)};
      if (f[0] == "cpu") out.all = t;
      else out.cores.push_back(t);
    } else if (f[0] == "ctxt") {
      out.context_switches = u64_or_zero(f, 1);
    } else if (f[0] == "processes") {
      out.forks = u64_or_zero(f, 1);
    } else if (f[0] == "procs_running") {
      out.procs_running = static_cast<int64_t>(u64_or_zero(f, 1));
    } else if (f[0] == "procs_blocked") {
      out.procs_blocked = static_cast<int64_t>(u64_or_zero(f, 1));
    }
  });
  return out;
}

std::optional<LoadAvg> parse_loadavg(std::string_view text) {
  const auto f = fields_of(text.substr(0, text.find('\n')));
  if (f.size() < 3) return std::nullopt;
  const auto one = hundredths(f[0]), five = hundredths(f[1]), fifteen = hundredths(f[2]);
  if (!one || !five || !fifteen) return std::nullopt;
  return LoadAvg{*one, *five, *fifteen};
}

MemInfo parse_meminfo(std::string_view text) {
  MemInfo out;
  each_line(text, [&](std::string_view line) {
    const auto f = fields_of(line);
    if (f.size() < 2) return;
    int64_t v = 0;
    if (!to_number(f[1], v)) return;
    if (f.size() >= 3 && f[2] == "kB") v *= 1024;
    const std::string_view key = f[0];
    if (key == "MemTotal:") out.total = v;
    else if (key == "MemFree:") out.free = v;
    else if (key == "MemAvailable:") out.available = v;
    else if (key == "Buffers:") out.buffers = v;
    else if (key == "Cached:") out.cached = v;
    else if (key == "SwapTotal:") out.swap_total = v;
    else if (key == "SwapFree:") out.swap_free = v;
  });
  return out;
}

std::vector<Mount> parse_mounts(std::string_view text) {
  std::vector<Mount> out;
  each_line(text, [&](std::string_view line) {
    const auto f = fields_of(line);
    if (f.size() < 4) return;
    Mount m{unescape_octal(f[0]), unescape_octal(f[1]), std::string(f[2]), false};
    // The options are comma-separated; "ro" is one of them, never a prefix.
    std::string_view options = f[3];
    while (!options.empty()) {
      const size_t comma = options.find(',');
      if (options.substr(0, comma) == "ro") m.read_only = true;
      if (comma == std::string_view::npos) break;
      options.remove_prefix(comma + 1);
    }
    out.push_back(std::move(m));
  });
  return out;
}

std::vector<DiskStats> parse_diskstats(std::string_view text) {
  std::vector<DiskStats> out;
  each_line(text, [&](std::string_view line) {
    const auto f = fields_of(line);
    // major minor name, then reads merged sectors ms, writes merged sectors ms, in-flight, io_ms, ...
    if (f.size() < 14) return;
    out.push_back(DiskStats{std::string(f[2]), u64_or_zero(f, 3), u64_or_zero(f, 5), u64_or_zero(f, 7),
                            u64_or_zero(f, 9), u64_or_zero(f, 12)});
  });
  return out;
}

std::vector<NetDev> parse_net_dev(std::string_view text) {
  std::vector<NetDev> out;
  each_line(text, [&](std::string_view line) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;  // the two header lines have '|', not ':'
    const auto name = fields_of(line.substr(0, colon));
    const auto f = fields_of(line.substr(colon + 1));
    if (name.size() != 1 || f.size() < 16) return;
    // Receive: bytes packets errs drop fifo frame compressed multicast; Transmit: bytes packets errs drop ...
    out.push_back(NetDev{std::string(name[0]), u64_or_zero(f, 0), u64_or_zero(f, 1), u64_or_zero(f, 2),
                         u64_or_zero(f, 3), u64_or_zero(f, 8), u64_or_zero(f, 9), u64_or_zero(f, 10),
                         u64_or_zero(f, 11)});
  });
  return out;
}

std::optional<int64_t> parse_keyed_table(std::string_view text, std::string_view prefix, std::string_view key) {
  std::vector<std::string_view> names;
  std::optional<int64_t> found;
  each_line(text, [&](std::string_view line) {
    if (found) return;
    const auto f = fields_of(line);
    if (f.empty() || f[0].size() != prefix.size() + 1 || !f[0].starts_with(prefix) || f[0].back() != ':') return;
    if (names.empty()) {
      names = f;  // the first line of the pair names the columns
      return;
    }
    for (size_t i = 1; i < names.size() && i < f.size(); ++i) {
      int64_t v = 0;
      if (names[i] == key && to_number(f[i], v)) found = v;
    }
    names.clear();
  });
  return found;
}

std::optional<int64_t> parse_sockstat_time_wait(std::string_view text) {
  std::optional<int64_t> out;
  each_line(text, [&](std::string_view line) {
    const auto f = fields_of(line);
    if (f.empty() || f[0] != "TCP:") return;
    for (size_t i = 1; i + 1 < f.size(); i += 2) {
      int64_t v = 0;
      if (f[i] == "tw" && to_number(f[i + 1], v)) out = v;
    }
  });
  return out;
}

std::optional<FileHandles> parse_file_nr(std::string_view text) {
  const auto f = fields_of(text.substr(0, text.find('\n')));
  int64_t allocated = 0, free = 0, max = 0;
  if (f.size() < 3 || !to_number(f[0], allocated) || !to_number(f[1], free) || !to_number(f[2], max)) {
    return std::nullopt;
  }
  return FileHandles{allocated - free, max};
}

std::optional<int64_t> parse_uptime(std::string_view text) {
  const auto f = fields_of(text.substr(0, text.find('\n')));
  if (f.empty()) return std::nullopt;
  const auto h = hundredths(f[0]);
  if (!h) return std::nullopt;
  return *h / 100;
}

}  // namespace monitor::agent::host
