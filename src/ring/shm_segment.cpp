#include "ring/shm_segment.hpp"

#include <bit>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
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

void sleep_ms(int ms) noexcept {
  timespec ts{0, static_cast<long>(ms) * 1000000L};
  nanosleep(&ts, nullptr);
}

}  // namespace

const boost::system::error_category& ring_category() noexcept {
  static const RingCategory category;
  return category;
}

boost::system::result<MappedGeometry> validate_header(const SegmentHeader& h, uint64_t object_size) noexcept {
  if (h.version != kRingVersion) return RingErrc::kVersionMismatch;
  if (h.header_size != sizeof(SegmentHeader) || h.slot_size != sizeof(Slot) ||
      h.name_entry_size != sizeof(NameEntry) || !std::has_single_bit(h.slots_per_lane) ||
      !std::has_single_bit(h.name_capacity) || h.name_capacity > kMaxNameCapacity || h.lane_count == 0 ||
      h.shared_lane_count >= h.lane_count || h.slots_per_lane > (uint32_t{1} << 26) ||
      uint64_t{h.lane_size} != sizeof(Lane) + uint64_t{h.slots_per_lane} * sizeof(Slot)) {
    return RingErrc::kBadGeometry;
  }
  // Each product below is of two 32-bit numbers, so it fits in 64 bits; only
  // the sums with 64-bit offsets can wrap, and those are checked.
  const uint64_t lanes_bytes = uint64_t{h.lane_size} * h.lane_count;
  const uint64_t names_bytes = uint64_t{h.name_capacity} * sizeof(NameEntry);
  uint64_t lanes_end = 0;
  uint64_t names_end = 0;
  if (h.lanes_offset < sizeof(SegmentHeader) || h.lanes_offset % alignof(Lane) != 0 ||
      h.names_offset % alignof(NameEntry) != 0 ||
      __builtin_add_overflow(h.lanes_offset, lanes_bytes, &lanes_end) ||
      __builtin_add_overflow(h.names_offset, names_bytes, &names_end) || lanes_end > h.names_offset ||
      names_end > h.segment_size || h.segment_size > object_size) {
    return RingErrc::kBadGeometry;
  }
  MappedGeometry g;
  g.lane_count = h.lane_count;
  g.shared_lane_count = h.shared_lane_count;
  g.slots_per_lane = h.slots_per_lane;
  g.lane_size = h.lane_size;
  g.name_capacity = h.name_capacity;
  g.lanes_offset = h.lanes_offset;
  g.names_offset = h.names_offset;
  g.segment_size = h.segment_size;
  return g;
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
      g.name_capacity > kMaxNameCapacity || g.shared_lane_count >= g.lane_count ||
      g.slots_per_lane > (uint32_t{1} << 26)) {
    return errno_code(EINVAL);
  }

  const uint64_t size = segment_bytes(g);
  // 0660: the ring is shared by a group (the agent sets which), never by everyone.
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
  if (fd >= 0) {
    fchmod(fd, 0660);  // the umask must not narrow it further
    int err = posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (err != 0) {
      close(fd);
      shm_unlink(name.c_str());
      return errno_code(err);
    }
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    err = errno;
    if (base == MAP_FAILED) {
      close(fd);
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
    const auto geometry = validate_header(h, size);
    atomic_field(h.magic).store(kSegmentMagic, std::memory_order_release);
    return ShmSegment(static_cast<uint8_t*>(base), size, fd, true, *geometry);
  }
  if (errno != EEXIST) return errno_code(errno);

  fd = shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return errno_code(errno);
  // The creator sizes the object before it writes the header; wait for both.
  // The header is copied and checked as a copy: a process rewriting it
  // between the check and its use must not change what is mapped.
  struct stat st {};
  SegmentHeader copy{};
  boost::system::result<MappedGeometry> geometry = RingErrc::kNotReady;
  for (int waited = 0;; ++waited) {
    if (fstat(fd, &st) != 0) {
      geometry = errno_code(errno);
      break;
    }
    if (static_cast<uint64_t>(st.st_size) >= sizeof(SegmentHeader)) {
      const ssize_t got = pread(fd, &copy, sizeof copy, 0);
      if (got != static_cast<ssize_t>(sizeof copy)) {
        geometry = errno_code(got < 0 ? errno : EIO);
        break;
      }
      if (copy.magic == kSegmentMagic) {
        geometry = validate_header(copy, static_cast<uint64_t>(st.st_size));
        break;
      }
      if (copy.magic != 0) {
        geometry = RingErrc::kBadMagic;
        break;
      }
    }
    if (waited >= ready_wait_ms) break;
    sleep_ms(1);
  }
  if (!geometry) {
    close(fd);
    return geometry.error();
  }
  const uint64_t mapped_size = geometry->segment_size;
  void* base = mmap(nullptr, mapped_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return errno_code(err);
  }
  return ShmSegment(static_cast<uint8_t*>(base), mapped_size, fd, false, *geometry);
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

ShmSegment::ShmSegment(uint8_t* base, uint64_t size, int fd, bool created,
                       const MappedGeometry& geometry) noexcept
    : base_(base), size_(size), fd_(fd), created_(created), geometry_(geometry) {
  struct stat st {};
  if (fstat(fd_, &st) == 0) {
    device_ = st.st_dev;
    inode_ = st.st_ino;
  }
}

ShmSegment::ShmSegment(ShmSegment&& other) noexcept
    : base_(other.base_), size_(other.size_), fd_(other.fd_), created_(other.created_),
      geometry_(other.geometry_), device_(other.device_), inode_(other.inode_) {
  other.base_ = nullptr;
  other.size_ = 0;
  other.fd_ = -1;
}

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(base_, size_);
    if (fd_ >= 0) close(fd_);
    base_ = other.base_;
    size_ = other.size_;
    fd_ = other.fd_;
    created_ = other.created_;
    geometry_ = other.geometry_;
    device_ = other.device_;
    inode_ = other.inode_;
    other.base_ = nullptr;
    other.size_ = 0;
    other.fd_ = -1;
  }
  return *this;
}

ShmSegment::~ShmSegment() {
  if (base_ != nullptr) munmap(base_, size_);
  if (fd_ >= 0) close(fd_);
}

bool ShmSegment::header_intact() const noexcept {
  SegmentHeader& h = header();
  if (atomic_field(h.magic).load(std::memory_order_acquire) != kSegmentMagic) return false;
  if (atomic_field(h.retired).load(std::memory_order_relaxed) != 0) return false;
  // Plain reads of words another process may be writing: a torn value can only
  // make the comparison fail, which is the answer for a header being rewritten.
  const volatile SegmentHeader& v = h;
  const MappedGeometry& g = geometry_;
  return v.version == kRingVersion && v.lane_count == g.lane_count &&
         v.shared_lane_count == g.shared_lane_count && v.slots_per_lane == g.slots_per_lane &&
         v.lane_size == g.lane_size && v.name_capacity == g.name_capacity && v.lanes_offset == g.lanes_offset &&
         v.names_offset == g.names_offset && v.segment_size == g.segment_size &&
         v.header_size == sizeof(SegmentHeader) && v.slot_size == sizeof(Slot) &&
         v.name_entry_size == sizeof(NameEntry);
}

void ShmSegment::drop_mapping() noexcept {
  if (base_ != nullptr) {
    mmap(base_, size_, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void ShmSegment::retire() const noexcept { atomic_field(header().retired).store(1, std::memory_order_release); }

namespace {
struct flock lane_lock(short type, uint32_t index) noexcept {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(index);
  fl.l_len = 1;
  return fl;
}
}  // namespace

bool ShmSegment::lock_lane(uint32_t index) const noexcept {
  struct flock fl = lane_lock(F_RDLCK, index);
  return fcntl(fd_, F_SETLK, &fl) == 0;
}

void ShmSegment::unlock_lane(uint32_t index) const noexcept {
  struct flock fl = lane_lock(F_UNLCK, index);
  fcntl(fd_, F_SETLK, &fl);
}

bool ShmSegment::lane_locked(uint32_t index) const noexcept {
  struct flock fl = lane_lock(F_WRLCK, index);
  if (fcntl(fd_, F_OFD_GETLK, &fl) != 0) return true;
  return fl.l_type != F_UNLCK;
}

std::string describe(const boost::system::error_code& ec, std::string_view context) {
  std::string out(context);
  out += ": ";
  out += ec.message();
  return out;
}

}  // namespace monitor::ring
