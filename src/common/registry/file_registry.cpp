#include "common/registry/file_registry.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"

namespace monitor::registry {
namespace {

using boost::system::error_code;
namespace fs = std::filesystem;

error_code errno_code(int err) { return {err, boost::system::system_category()}; }

error_code check_keys(std::string_view kind, std::string_view name) {
  if (!is_valid_key(kind) || !is_valid_key(name)) return RegistryErrc::kBadName;
  return {};
}

fs::path entry_path(const fs::path& dir, std::string_view kind, std::string_view name) {
  return dir / std::string(kind) / (std::string(name) + ".json");
}

constexpr std::string_view kSuffix = ".json";

}  // namespace

boost::system::result<std::unique_ptr<FileRegistry>> FileRegistry::open(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return errno_code(ec.value());
  if (!fs::is_directory(dir, ec)) return errno_code(ENOTDIR);
  return std::unique_ptr<FileRegistry>(new FileRegistry(dir));
}

boost::system::result<void> FileRegistry::write(std::string_view kind, std::string_view name,
                                                const boost::json::value& value, int64_t expires_at_ns) {
  if (auto ec = check_keys(kind, name)) return ec;
  std::error_code fs_ec;
  fs::create_directories(dir_ / std::string(kind), fs_ec);
  if (fs_ec) return errno_code(fs_ec.value());
  boost::json::object doc;
  doc["value"] = value;
  if (expires_at_ns != 0) doc["expires_at_ns"] = expires_at_ns;
  const std::string text = boost::json::serialize(doc) + "\n";
  const fs::path target = entry_path(dir_, kind, name);
  const fs::path tmp = target.string() + ".tmp." + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_code(errno);
  const ssize_t written = ::write(fd, text.data(), text.size());
  const int write_err = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) {
    ::unlink(tmp.c_str());
    return errno_code(written < 0 ? write_err : ENOSPC);
  }
  // rename() replaces the entry atomically: readers see the old or the new file.
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return errno_code(err);
  }
  return {};
}

boost::system::result<void> FileRegistry::put(std::string_view kind, std::string_view name,
                                              const boost::json::value& value) {
  return write(kind, name, value, 0);
}

boost::system::result<void> FileRegistry::put_live(std::string_view kind, std::string_view name,
                                                   const boost::json::value& value, std::chrono::milliseconds ttl) {
  const int64_t expires = realtime_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count();
  return write(kind, name, value, expires);
}

boost::system::result<void> FileRegistry::remove(std::string_view kind, std::string_view name) {
  if (auto ec = check_keys(kind, name)) return ec;
  if (::unlink(entry_path(dir_, kind, name).c_str()) != 0 && errno != ENOENT) return errno_code(errno);
  return {};
}

boost::system::result<std::optional<Entry>> FileRegistry::read(const fs::path& file, std::string name) {
  std::ifstream in(file);
  if (!in) {
    if (errno == ENOENT) return std::optional<Entry>{};
    return errno_code(errno);
  }
  std::stringstream text;
  text << in.rdbuf();
  error_code ec;
  boost::json::value doc = boost::json::parse(text.str(), ec);
  const boost::json::object* obj = ec ? nullptr : doc.if_object();
  const boost::json::value* value = obj != nullptr ? obj->if_contains("value") : nullptr;
  const boost::json::value* expires = obj != nullptr ? obj->if_contains("expires_at_ns") : nullptr;
  if (value == nullptr || (expires != nullptr && !expires->is_int64() && !expires->is_uint64())) {
    bad_entries_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(log_mutex_);
    uint64_t suppressed = 0;
    if (bad_entry_log_.allow(realtime_ns(), suppressed)) {
      spdlog::warn("registry: skipping {}: not {{\"value\": ...[, \"expires_at_ns\": N]}} [{} more not shown]",
                   file.string(), suppressed);
    }
    return error_code(RegistryErrc::kBadEntry);
  }
  Entry entry{std::move(name), *value, expires != nullptr ? expires->to_number<int64_t>() : 0};
  if (entry.expires_at_ns != 0 && entry.expires_at_ns <= realtime_ns()) return std::optional<Entry>{};
  return std::optional<Entry>{std::move(entry)};
}

boost::system::result<std::optional<Entry>> FileRegistry::get(std::string_view kind, std::string_view name) {
  if (auto ec = check_keys(kind, name)) return ec;
  return read(entry_path(dir_, kind, name), std::string(name));
}

boost::system::result<std::vector<Entry>> FileRegistry::list(std::string_view kind) {
  if (!is_valid_key(kind)) return error_code(RegistryErrc::kBadName);
  std::vector<Entry> entries;
  std::error_code ec;
  fs::directory_iterator it(dir_ / std::string(kind), ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return entries;
    return errno_code(ec.value());
  }
  for (const auto& file : it) {
    const std::string filename = file.path().filename().string();
    if (!filename.ends_with(kSuffix)) continue;  // temporaries and strays
    std::string name = filename.substr(0, filename.size() - kSuffix.size());
    if (!is_valid_key(name)) continue;
    auto entry = read(file.path(), std::move(name));
    if (entry && *entry) entries.push_back(std::move(**entry));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return entries;
}

boost::system::result<size_t> FileRegistry::remove_expired(std::string_view kind) {
  if (!is_valid_key(kind)) return error_code(RegistryErrc::kBadName);
  size_t removed = 0;
  std::error_code ec;
  const int64_t now = realtime_ns();
  for (const auto& file : fs::directory_iterator(dir_ / std::string(kind), ec)) {
    const std::string filename = file.path().filename().string();
    if (!filename.ends_with(kSuffix)) continue;
    std::ifstream in(file.path());
    std::stringstream text;
    text << in.rdbuf();
    error_code parse_ec;
    const boost::json::value doc = boost::json::parse(text.str(), parse_ec);
    const boost::json::object* obj = parse_ec ? nullptr : doc.if_object();
    const boost::json::value* expires = obj != nullptr ? obj->if_contains("expires_at_ns") : nullptr;
    if (expires != nullptr && (expires->is_int64() || expires->is_uint64()) &&
        expires->to_number<int64_t>() <= now && ::unlink(file.path().c_str()) == 0) {
      ++removed;
    }
  }
  return removed;
}

}  // namespace monitor::registry
