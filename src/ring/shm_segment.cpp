#include "ring/shm_segment.hpp"

#include <bit>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#include "ring/ring_errc.hpp"

namespace monitor::ring {
namespace {

class RingCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "monitor.ring"; }
  std::string message(int ev) const override {
    switch (static_cast<RingErrc>(ev)) {
      case RingErrc::kNotReady: return "segment exists but was never finished by its creator";
      case RingErrc::kBadMagic: return "not a libmonitor ring (bad magic)";
      case RingErrc::kVersionMismatch: return "ring made by an incompatible libmonitor version";
      case RingErrc::kBadGeometry: return "ring header sizes do not match the segment";
    }
    return "unknown ring error";
  }
};

boost::system::error_code errno_code(int err) noexcept {
  return {err, boost::system::system_category()};
}

// Header checks on bytes another process wrote: they are input, not invariants.
boost::system::error_code check_header(const SegmentHeader& h, uint64_t object_size) noexcept {
  if (h.version != kRingVersion) return RingErrc::kVersionMismatch;
  if (h.header_size != sizeof(SegmentHeader) || h.slot_size != sizeof(Slot) ||
      h.name_entry_size != sizeof(NameEntry) || !std::has_single_bit(h.slots_per_lane) ||
      !std::has_single_bit(h.name_capacity) || h.name_capacity > kMaxNameCapacity || h.lane_count == 0 ||
      h.shared_lane_count >= h.lane_count ||
      h.lane_size != sizeof(Lane) + uint64_t{h.slots_per_lane} * sizeof(Slot)) {
    return RingErrc::kBadGeometry;
  }
  const uint64_t names_end = h.names_offset + uint64_t{h.name_capacity} * sizeof(NameEntry);
  const uint64_t lanes_end = h.lanes_offset + uint64_t{h.lane_size} * h.lane_count;
  if (h.segment_size > object_size || names_end > h.segment_size || lanes_end > h.names_offset ||
      h.lanes_offset < sizeof(SegmentHeader)) {
    return RingErrc::kBadGeometry;
  }
  return {};
}

void sleep_ms(int ms) noexcept {
  timespec ts{0, static_cast<long>(ms) * 1000000L};
  nanosleep(&ts, nullptr);
}

}  // namespace

const boost::system::error_category& ring_category() noexcept {
  static const RingCategory category;
  return category;
}

boost::system::result<ShmSegment> ShmSegment::open_or_create(std::string_view name_view,
                                                             const Geometry& g,
                                                             int ready_wait_ms) noexcept {
  std::string name;
  try {
    name.assign(name_view);
  } catch (...) {
    return errno_code(ENOMEM);
  }
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos) {
    return errno_code(EINVAL);
  }
  if (!std::has_single_bit(g.slots_per_lane) || !std::has_single_bit(g.name_capacity) ||
      g.name_capacity > kMaxNameCapacity || g.shared_lane_count >= g.lane_count) {
    return errno_code(EINVAL);
  }

  const uint64_t size = segment_bytes(g);
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd >= 0) {
    fchmod(fd, 0666);  // writers and the agent may run as different users
    int err = posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (err != 0) {
      close(fd);
      shm_unlink(name.c_str());
      return errno_code(err);
    }
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    err = errno;
    close(fd);
    if (base == MAP_FAILED) {
      shm_unlink(name.c_str());
      return errno_code(err);
    }
    auto& h = *static_cast<SegmentHeader*>(base);
    h.version = kRingVersion;
    h.header_size = sizeof(SegmentHeader);
    h.segment_size = size;
    h.lane_count = g.lane_count;
    h.shared_lane_count = g.shared_lane_count;
    h.slots_per_lane = g.slots_per_lane;
    h.slot_size = sizeof(Slot);
    h.lane_size = static_cast<uint32_t>(sizeof(Lane) + uint64_t{g.slots_per_lane} * sizeof(Slot));
    h.name_capacity = g.name_capacity;
    h.name_entry_size = sizeof(NameEntry);
    h.lanes_offset = sizeof(SegmentHeader);
    h.names_offset = h.lanes_offset + uint64_t{h.lane_size} * g.lane_count;
    h.creator_pid = static_cast<uint64_t>(getpid());
    atomic_field(h.magic).store(kSegmentMagic, std::memory_order_release);
    return ShmSegment(static_cast<uint8_t*>(base), size, true);
  }
  if (errno != EEXIST) return errno_code(errno);

  fd = shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return errno_code(errno);
  // The creator sizes the object before it writes the header; wait for both.
  struct stat st {};
  void* base = MAP_FAILED;
  boost::system::error_code ec = RingErrc::kNotReady;
  for (int waited = 0;; ++waited) {
    if (fstat(fd, &st) != 0) {
      ec = errno_code(errno);
      break;
    }
    if (static_cast<uint64_t>(st.st_size) >= sizeof(SegmentHeader)) {
      if (base == MAP_FAILED) {
        base = mmap(nullptr, sizeof(SegmentHeader), PROT_READ, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED) {
          ec = errno_code(errno);
          break;
        }
      }
      auto& h = *static_cast<SegmentHeader*>(base);
      const uint64_t magic = atomic_field(h.magic).load(std::memory_order_acquire);
      if (magic == kSegmentMagic) {
        ec = check_header(h, static_cast<uint64_t>(st.st_size));
        break;
      }
      if (magic != 0) {
        ec = RingErrc::kBadMagic;
        break;
      }
    }
    if (waited >= ready_wait_ms) break;
    sleep_ms(1);
  }
  if (ec) {
    if (base != MAP_FAILED) munmap(base, sizeof(SegmentHeader));
    close(fd);
    return ec;
  }
  const uint64_t mapped_size = static_cast<SegmentHeader*>(base)->segment_size;
  munmap(base, sizeof(SegmentHeader));
  base = mmap(nullptr, mapped_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (base == MAP_FAILED) return errno_code(err);
  return ShmSegment(static_cast<uint8_t*>(base), mapped_size, false);
}

boost::system::error_code ShmSegment::unlink(std::string_view name_view) noexcept {
  try {
    const std::string name(name_view);
    if (shm_unlink(name.c_str()) != 0 && errno != ENOENT) return errno_code(errno);
  } catch (...) {
    return errno_code(ENOMEM);
  }
  return {};
}

ShmSegment::ShmSegment(ShmSegment&& other) noexcept
    : base_(other.base_), size_(other.size_), created_(other.created_) {
  other.base_ = nullptr;
  other.size_ = 0;
}

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(base_, size_);
    base_ = other.base_;
    size_ = other.size_;
    created_ = other.created_;
    other.base_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

ShmSegment::~ShmSegment() {
  if (base_ != nullptr) munmap(base_, size_);
}

std::string describe(const boost::system::error_code& ec, std::string_view context) {
  std::string out(context);
  out += ": ";
  out += ec.message();
  return out;
}

}  // namespace monitor::ring
