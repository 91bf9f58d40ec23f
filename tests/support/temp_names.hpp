// Per-test temporary directories, ring names and free ports.
#pragma once

#include <string>

namespace monitor::test {

/// A shm name unique to this process and call ("/mt-<pid>-<n>-<tag>"); the
/// segment is unlinked when the object dies.
class TempRing {
 public:
  explicit TempRing(const std::string& tag);
  ~TempRing();
  TempRing(const TempRing&) = delete;
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
};

/// A fresh directory under /tmp, removed with its contents when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  const std::string& path() const noexcept { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace monitor::test
