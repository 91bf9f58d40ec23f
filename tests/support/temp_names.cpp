#include "support/temp_names.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

namespace monitor::test {
namespace {
std::atomic<int> g_counter{0};
}

TempRing::TempRing(const std::string& tag)
    : name_(fmt::format("/mt-{}-{}-{}", getpid(), g_counter.fetch_add(1), tag)) {
  shm_unlink(name_.c_str());
}

TempRing::~TempRing() {
  shm_unlink(name_.c_str());
  // The agent's crash journal beside it (left by a killed agent).
  ::unlink(("/dev/shm" + name_ + ".journal").c_str());
  ::unlink(("/dev/shm" + name_ + ".journal.new").c_str());
}

TempDir::TempDir() {
  std::string templ = "/tmp/monitor-test-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace monitor::test
