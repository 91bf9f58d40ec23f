#include "registry/file_registry.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "registry/watch_state.hpp"

namespace monitor::registry {
namespace {

using boost::system::error_code;
namespace fs = std::filesystem;

error_code errno_code(int err) { return {err, boost::system::system_category()}; }

fs::path entry_path(const fs::path& dir, std::string_view kind, std::string_view name) {
  return dir / std::string(kind) / (std::string(name) + ".json");
}

constexpr std::string_view kSuffix = ".json";

}  // namespace

struct FileRegistry::Stored {
  Entry entry;
  int64_t expires_at_ns = 0;  // 0: static
};

// Serialises writers of one directory, across threads and processes: a
// version is read and its successor written under it. Readers do not take it
// (rename keeps every file whole).
class FileRegistry::DirLock {
 public:
  explicit DirLock(const fs::path& dir) {
    fd_ = ::open((dir / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      error_ = errno;
      return;
    }
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      error_ = errno;
      return;
    }
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  error_code error() const { return error_ != 0 ? errno_code(error_) : error_code{}; }

 private:
  int fd_ = -1;
  int error_ = 0;
};

boost::system::result<std::unique_ptr<FileRegistry>> FileRegistry::open(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return errno_code(ec.value());
  if (!fs::is_directory(dir, ec)) return errno_code(ENOTDIR);
  return std::unique_ptr<FileRegistry>(new FileRegistry(dir));
}

boost::system::result<void> FileRegistry::write_locked(std::string_view kind, std::string_view name,
                                                       const boost::json::value& value, int64_t expires_at_ns) {
  std::error_code fs_ec;
  fs::create_directories(dir_ / std::string(kind), fs_ec);
  if (fs_ec) return errno_code(fs_ec.value());
  const fs::path target = entry_path(dir_, kind, name);
  // An expired live entry is gone: its successor starts again at version 1.
  auto before = read(target, std::string(name));
  int64_t version = 1;
  if (before && *before && ((*before)->expires_at_ns == 0 || (*before)->expires_at_ns > realtime_ns())) {
    version = (*before)->entry.version + 1;
  }
  boost::json::object doc;
  doc["value"] = value;
  doc["version"] = version;
  if (expires_at_ns != 0) doc["expires_at_ns"] = expires_at_ns;
  const std::string text = boost::json::serialize(doc) + "\n";
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
  if (auto ec = check_keys(kind, name)) return ec;
  DirLock lock(dir_);
  if (lock.error()) return lock.error();
  return write_locked(kind, name, value, 0);
}

boost::system::result<void> FileRegistry::put_live(std::string_view kind, std::string_view name,
                                                   const boost::json::value& value, std::chrono::milliseconds ttl) {
  if (auto ec = check_keys(kind, name)) return ec;
  const int64_t expires = realtime_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count();
  DirLock lock(dir_);
  if (lock.error()) return lock.error();
  return write_locked(kind, name, value, expires);
}

boost::system::result<void> FileRegistry::remove(std::string_view kind, std::string_view name) {
  if (auto ec = check_keys(kind, name)) return ec;
  DirLock lock(dir_);
  if (lock.error()) return lock.error();
  if (::unlink(entry_path(dir_, kind, name).c_str()) != 0 && errno != ENOENT) return errno_code(errno);
  return {};
}

boost::system::result<bool> FileRegistry::commit(const std::vector<Precondition>& preconditions,
                                                 const std::vector<Write>& writes) {
  for (const auto& p : preconditions) {
    if (auto ec = check_keys(p.kind, p.name)) return failed(ec);
  }
  for (const auto& w : writes) {
    if (auto ec = check_keys(w.kind, w.name)) return failed(ec);
  }
  DirLock lock(dir_);
  if (lock.error()) return failed(lock.error());
  for (const auto& p : preconditions) {
    auto current = read_unexpired(entry_path(dir_, p.kind, p.name), p.name);
    if (!current) return failed(current.error());
    if ((*current ? (*current)->version : 0) != p.version) return false;
  }
  // Not atomic across files if the disk fails half-way; under the lock no
  // other writer sees the mix, and every write is one rename.
  for (const auto& w : writes) {
    if (w.value) {
      if (auto r = write_locked(w.kind, w.name, *w.value, 0); !r) return failed(r.error());
    } else if (::unlink(entry_path(dir_, w.kind, w.name).c_str()) != 0 && errno != ENOENT) {
      return failed(errno_code(errno));
    }
  }
  return true;
}

boost::system::result<std::optional<FileRegistry::Stored>> FileRegistry::read(const fs::path& file, std::string name) {
  std::ifstream in(file);
  if (!in) {
    if (errno == ENOENT) return std::optional<Stored>{};
    return errno_code(errno);
  }
  std::stringstream text;
  text << in.rdbuf();
  error_code ec;
  boost::json::value doc = boost::json::parse(text.str(), ec);
  const boost::json::object* obj = ec ? nullptr : doc.if_object();
  const boost::json::value* value = obj != nullptr ? obj->if_contains("value") : nullptr;
  const boost::json::value* expires = obj != nullptr ? obj->if_contains("expires_at_ns") : nullptr;
  const boost::json::value* version = obj != nullptr ? obj->if_contains("version") : nullptr;
  const auto is_integer = [](const boost::json::value* v) { return v == nullptr || v->is_int64() || v->is_uint64(); };
  if (value == nullptr || !is_integer(expires) || !is_integer(version)) {
    bad_entries_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(log_mutex_);
    uint64_t suppressed = 0;
    if (bad_entry_log_.allow(realtime_ns(), suppressed)) {
      spdlog::warn("registry: skipping {}: not {{\"value\": ...[, \"version\": N][, \"expires_at_ns\": N]}} [{} more "
                   "not shown]",
                   file.string(), suppressed);
    }
    return error_code(RegistryErrc::kBadEntry);
  }
  Stored stored;
  stored.expires_at_ns = expires != nullptr ? expires->to_number<int64_t>() : 0;
  // A hand-written file has no version: it is the first.
  stored.entry = Entry{std::move(name), *value, stored.expires_at_ns != 0,
                       version != nullptr ? std::max<int64_t>(1, version->to_number<int64_t>()) : 1};
  return std::optional<Stored>{std::move(stored)};
}

boost::system::result<std::optional<Entry>> FileRegistry::read_unexpired(const fs::path& file, std::string name) {
  auto stored = read(file, std::move(name));
  if (!stored) return stored.error();
  if (!*stored || ((*stored)->expires_at_ns != 0 && (*stored)->expires_at_ns <= realtime_ns())) {
    return std::optional<Entry>{};
  }
  return std::optional<Entry>{std::move((*stored)->entry)};
}

boost::system::result<std::optional<Entry>> FileRegistry::get(std::string_view kind, std::string_view name) {
  if (auto ec = check_keys(kind, name)) return ec;
  return read_unexpired(entry_path(dir_, kind, name), std::string(name));
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
    auto entry = read_unexpired(file.path(), std::move(name));
    if (entry && *entry) entries.push_back(std::move(**entry));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return entries;
}

boost::system::result<size_t> FileRegistry::remove_expired(std::string_view kind) {
  if (!is_valid_key(kind)) return error_code(RegistryErrc::kBadName);
  DirLock lock(dir_);  // so a refresh between our read and unlink is not lost
  if (lock.error()) return lock.error();
  size_t removed = 0;
  std::error_code ec;
  const int64_t now = realtime_ns();
  for (const auto& file : fs::directory_iterator(dir_ / std::string(kind), ec)) {
    const std::string filename = file.path().filename().string();
    if (!filename.ends_with(kSuffix)) continue;
    auto stored = read(file.path(), filename.substr(0, filename.size() - kSuffix.size()));
    if (stored && *stored && (*stored)->expires_at_ns != 0 && (*stored)->expires_at_ns <= now &&
        ::unlink(file.path().c_str()) == 0) {
      ++removed;
    }
  }
  return removed;
}

namespace {

// Polls the kinds from a thread of its own; removes expired files as it goes.
class PollingWatch final : public Watch {
 public:
  PollingWatch(FileRegistry& registry, std::vector<std::string> kinds, Registry::OnChange on_change,
               Registry::OnReachable on_reachable, std::chrono::milliseconds interval)
      : registry_(registry),
        state_(std::move(kinds), std::move(on_change), std::move(on_reachable)),
        interval_(interval),
        thread_([this] { run(); }) {}

  ~PollingWatch() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    for (uint64_t round = 0;; ++round) {
      bool all_read = true;
      for (const auto& kind : state_.kinds()) {
        // Every few seconds: a dead owner's file should not outlive it for long.
        if (round % 16 == 0) (void)registry_.remove_expired(kind);
        auto entries = registry_.list(kind);
        if (!entries) {
          all_read = false;
          continue;
        }
        state_.replace(kind, std::move(*entries));
      }
      state_.set_reachable(all_read);
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, interval_, [this] { return stopping_; })) return;
    }
  }

  FileRegistry& registry_;
  WatchState state_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
  std::thread thread_;     // last: started once the rest is built
};

}  // namespace

std::unique_ptr<Watch> FileRegistry::watch(std::vector<std::string> kinds, OnChange on_change,
                                           OnReachable on_reachable, std::chrono::milliseconds poll_interval) {
  return std::make_unique<PollingWatch>(*this, std::move(kinds), std::move(on_change), std::move(on_reachable),
                                        poll_interval);
}

}  // namespace monitor::registry
