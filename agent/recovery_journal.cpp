#include "agent/recovery_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "common/read_exact.hpp"
#include "monitor/monitor.hpp"

namespace monitor::agent {
namespace {

constexpr uint64_t kJournalMagic = 0x314C4E524A4E4F4DULL;  // "MONJRNL1" little-endian
constexpr uint32_t kJournalVersion = 1;
constexpr uint32_t kChunkMagic = 0x4B4E4843;  // "CHNK"
constexpr uint64_t kPage = 4096;
constexpr uint32_t kMaxLanes = 65536;
constexpr uint64_t kMaxNameBytes = 1ull << 30;
constexpr uint64_t kMaxLogBytes = 16ull << 30;

// Written whole by one pwrite inside the first page, so a SIGKILL leaves it
// either as before or as after: the commit point of everything else.
struct JournalHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t lane_count;
  uint64_t ring_device;
  uint64_t ring_inode;
  uint64_t name_bytes;
  uint64_t log_bytes;
  uint64_t names_end;
  uint64_t log_start;
  uint64_t log_end;
  int64_t flushed_second;
  int64_t flushing_second;
  uint64_t flushing_sequence;
  uint64_t unjournaled;
  int64_t unjournaled_max_second;
};
static_assert(sizeof(JournalHeader) <= 512);

struct ChunkHeader {
  uint32_t magic;
  uint32_t inputs;
  uint32_t lanes;
  uint32_t reserved;
  int64_t max_second;
  uint64_t bytes;  // the whole chunk
};
static_assert(sizeof(ChunkHeader) == 32);

struct ChunkLane {
  uint32_t lane;
  uint32_t reserved;
  uint64_t tail;
};
static_assert(sizeof(ChunkLane) == 16);
static_assert(sizeof(Aggregator::Input) == 32);

struct Layout {
  uint64_t lanes_offset;
  uint64_t names_offset;
  uint64_t log_offset;
  uint64_t total;
};

uint64_t round_up_page(uint64_t n) { return (n + kPage - 1) / kPage * kPage; }

// One rule for where regions start, used by the writer and checked by the reader.
Layout layout_for(uint32_t lane_count, uint64_t name_bytes, uint64_t log_bytes) {
  Layout l{};
  l.lanes_offset = kPage;
  l.names_offset = l.lanes_offset + round_up_page(uint64_t{lane_count} * 8);
  l.log_offset = l.names_offset + round_up_page(name_bytes);
  l.total = l.log_offset + log_bytes;
  return l;
}

}  // namespace

RecoveredJournal RecoveryJournal::read(const std::string& path) {
  RecoveredJournal out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    out.found = err != ENOENT;
    if (out.found) out.problem = fmt::format("open: {}", std::strerror(err));
    return out;
  }
  out.found = true;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  JournalHeader h{};
  if (::fstat(fd, &st) != 0 || !read_exact(fd, &h, sizeof h, 0)) {
    out.problem = "cannot read its header";
    return out;
  }
  if (h.magic != kJournalMagic || h.version != kJournalVersion) {
    out.problem = "not a journal of this version";
    return out;
  }
  if (h.lane_count > kMaxLanes || h.name_bytes > kMaxNameBytes || h.log_bytes > kMaxLogBytes || h.log_bytes == 0 ||
      h.names_end > h.name_bytes || h.log_start > h.log_end || h.log_end - h.log_start > h.log_bytes) {
    out.problem = "its header is inconsistent";
    return out;
  }
  const Layout l = layout_for(h.lane_count, h.name_bytes, h.log_bytes);
  if (static_cast<uint64_t>(st.st_size) < l.total) {
    out.problem = "it is shorter than its header says";
    return out;
  }
  out.ring = RingIdentity{h.ring_device, h.ring_inode};
  out.flushed_second = h.flushed_second;
  if (h.flushing_second > h.flushed_second) out.unfinished_flush.emplace(h.flushing_second, h.flushing_sequence);
  out.unjournaled = h.unjournaled;
  out.unjournaled_max_second = h.unjournaled_max_second;

  std::vector<uint8_t> names(h.names_end);
  out.lane_tails.assign(h.lane_count, 0);
  if (!read_exact(fd, names.data(), names.size(), l.names_offset) ||
      !read_exact(fd, out.lane_tails.data(), out.lane_tails.size() * 8, l.lanes_offset)) {
    out.problem = "cannot read its names or lanes";
    return out;
  }
  for (size_t at = 0; at < names.size();) {
    if (names.size() - at < 2 || names.size() - at - 2 < size_t{names[at]} + names[at + 1]) {
      ++out.corrupt;
      break;
    }
    const std::string_view service(reinterpret_cast<const char*>(&names[at + 2]), names[at]);
    const std::string_view attr(reinterpret_cast<const char*>(&names[at + 2 + names[at]]), names[at + 1]);
    if (!is_valid_name(service) || !is_valid_name(attr)) {
      ++out.corrupt;
      break;  // ids after it would be misnumbered: keep only the names before
    }
    out.names.emplace_back(service, attr);
    at += 2 + service.size() + attr.size();
  }

  // The live log, unwrapped into one buffer.
  std::vector<uint8_t> log(h.log_end - h.log_start);
  const uint64_t first = h.log_start % h.log_bytes;
  const uint64_t head_part = std::min<uint64_t>(log.size(), h.log_bytes - first);
  if (!read_exact(fd, log.data(), head_part, l.log_offset + first) ||
      !read_exact(fd, log.data() + head_part, log.size() - head_part, l.log_offset)) {
    out.problem = "cannot read its log";
    return out;
  }
  for (size_t at = 0; at < log.size();) {
    ChunkHeader c{};
    if (log.size() - at < sizeof c) {
      ++out.corrupt;
      break;
    }
    std::memcpy(&c, &log[at], sizeof c);
    const uint64_t expect = sizeof c + uint64_t{c.inputs} * kInputBytes + uint64_t{c.lanes} * sizeof(ChunkLane);
    if (c.magic != kChunkMagic || c.bytes != expect || c.bytes > log.size() - at) {
      ++out.corrupt;  // cannot find the next chunk's start: the rest is lost
      break;
    }
    const uint8_t* p = &log[at + sizeof c];
    for (uint32_t i = 0; i < c.inputs; ++i, p += kInputBytes) {
      Aggregator::Input in{};
      std::memcpy(&in, p, kInputBytes);
      if (in.name_id == 0 || in.name_id > out.names.size() || (in.ops & Aggregator::kOpBits) == 0 ||
          (in.ops >> Aggregator::kRateShift) >= Aggregator::kRateOne) {
        ++out.corrupt;
        continue;
      }
      if (second_of_ns(in.time_ns) > out.flushed_second) out.inputs.push_back(in);
    }
    for (uint32_t i = 0; i < c.lanes; ++i, p += sizeof(ChunkLane)) {
      ChunkLane lane{};
      std::memcpy(&lane, p, sizeof lane);
      if (lane.lane < out.lane_tails.size()) out.lane_tails[lane.lane] = std::max(out.lane_tails[lane.lane], lane.tail);
    }
    at += c.bytes;
  }
  return out;
}

RecoveryJournal::RecoveryJournal(std::string path, Options options, RingIdentity ring, uint32_t lane_count,
                                 int64_t flushed_second)
    : path_(std::move(path)),
      writing_path_(path_ + ".new"),
      name_bytes_(options.name_bytes),
      lane_count_(lane_count),
      log_bytes_(options.log_bytes),
      flushed_second_(flushed_second),
      flushing_second_(flushed_second),
      lane_tails_(lane_count, 0) {
  if (lane_count > kMaxLanes || name_bytes_ > kMaxNameBytes || log_bytes_ > kMaxLogBytes || log_bytes_ < (1u << 20) ||
      log_bytes_ % kPage != 0) {
    throw std::runtime_error("journal: lanes, name bytes or log bytes out of range");
  }
  const Layout l = layout_for(lane_count, name_bytes_, log_bytes_);
  lanes_offset_ = l.lanes_offset;
  names_offset_ = l.names_offset;
  log_offset_ = l.log_offset;
  fd_ = ::open(writing_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) throw std::runtime_error(fmt::format("journal {}: {}", writing_path_, std::strerror(errno)));
  // Sparse: tmpfs gives pages only to what is written.
  if (::ftruncate(fd_, static_cast<off_t>(l.total)) != 0) {
    const int err = errno;
    ::close(fd_);
    ::unlink(writing_path_.c_str());
    throw std::runtime_error(fmt::format("journal {}: {}", writing_path_, std::strerror(err)));
  }
  chunk_size_ = sizeof(ChunkHeader);
  ring_ = ring;
  update_room();
  if (!write_header()) {
    const int err = errno;
    ::close(fd_);
    ::unlink(writing_path_.c_str());
    throw std::runtime_error(fmt::format("journal {}: {}", writing_path_, std::strerror(err)));
  }
}

RecoveryJournal::~RecoveryJournal() {
  if (fd_ >= 0) ::close(fd_);
}

void RecoveryJournal::publish() {
  if (::rename(writing_path_.c_str(), path_.c_str()) != 0) {
    throw std::runtime_error(fmt::format("journal: rename {} to {}: {}", writing_path_, path_, std::strerror(errno)));
  }
}

void RecoveryJournal::remove() { ::unlink(path_.c_str()); }

bool RecoveryJournal::write_at(uint64_t offset, const void* data, size_t size) {
  const auto* in = static_cast<const uint8_t*>(data);
  while (size != 0) {
    const ssize_t n = ::pwrite(fd_, in, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ++write_errors_;
      const int64_t now = monotonic_ns();
      if (now - last_error_log_ns_ >= 1'000'000'000) {
        last_error_log_ns_ = now;
        spdlog::error("journal {}: write failed: {}; reports drained meanwhile would be lost if the agent were "
                      "killed now (counted as Journal.Unprotected)",
                      path_, n < 0 ? std::strerror(errno) : "short write");
      }
      return false;
    }
    in += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool RecoveryJournal::write_log(uint64_t position, const void* data, size_t size) {
  const uint64_t at = position % log_bytes_;
  const size_t first = static_cast<size_t>(std::min<uint64_t>(size, log_bytes_ - at));
  return write_at(log_offset_ + at, data, first) &&
         write_at(log_offset_, static_cast<const uint8_t*>(data) + first, size - first);
}

bool RecoveryJournal::write_header() {
  const JournalHeader h{kJournalMagic,   kJournalVersion,  lane_count_,     ring_.device,
                        ring_.inode,     name_bytes_,      log_bytes_,      names_end_,
                        start_,          end_,             flushed_second_, flushing_second_,
                        flushing_sequence_, unjournaled_, unjournaled_max_second_};
  return write_at(0, &h, sizeof h);
}

void RecoveryJournal::update_room() noexcept {
  // Leave room for the lane tails a chunk ends with.
  const uint64_t reserve = uint64_t{lane_count_} * sizeof(ChunkLane);
  const uint64_t used = end_ - start_;
  if (names_broken_) {
    room_ = 0;
    return;
  }
  room_ = log_bytes_ > used + reserve ? static_cast<size_t>(log_bytes_ - used - reserve) : 0;
}

void RecoveryJournal::count_unjournaled(const Aggregator::Input& input) {
  ++unjournaled_;
  unjournaled_max_second_ = std::max(unjournaled_max_second_, second_of_ns(input.time_ns));
  const int64_t now = monotonic_ns();
  if (now - last_error_log_ns_ >= 1'000'000'000) {
    last_error_log_ns_ = now;
    spdlog::error("journal {} is full ({} bytes live): reports drained now would be lost if the agent were killed "
                  "({} so far, counted as Journal.Unprotected); raise journal_max_bytes",
                  path_, end_ - start_, unjournaled_);
  }
}

void RecoveryJournal::add_name(std::string_view service, std::string_view attr) {
  uint8_t entry[2 + 2 * 255];
  entry[0] = static_cast<uint8_t>(service.size());
  entry[1] = static_cast<uint8_t>(attr.size());
  std::memcpy(entry + 2, service.data(), service.size());
  std::memcpy(entry + 2 + service.size(), attr.data(), attr.size());
  const size_t size = 2 + service.size() + attr.size();
  if (service.size() > 255 || attr.size() > 255 || names_end_ + size > name_bytes_ ||
      !write_at(names_offset_ + names_end_, entry, size)) {
    // Later names cannot be numbered in a reader any more: stop journaling
    // reports at all rather than replay them under wrong names.
    names_broken_ = true;
    room_ = 0;
    spdlog::error("journal {}: cannot add name {} {}; reports are not journaled from now on", path_, service, attr);
    return;
  }
  names_end_ += size;
  write_header();
}

void RecoveryJournal::spill() {
  if (!spill_failed_ && !write_log(end_ + spilled_, chunk_.data(), chunk_size_ - spilled_)) spill_failed_ = true;
  spilled_ = chunk_size_;
}

void RecoveryJournal::append_chunk(const void* data, size_t size) {
  if (chunk_size_ - spilled_ + size > kBufferBytes) spill();
  std::memcpy(chunk_.data() + (chunk_size_ - spilled_), data, size);
  chunk_size_ += size;
}

void RecoveryJournal::commit(std::span<const ring::LanePosition> lanes) {
  if (chunk_inputs_ == 0 && lanes.empty()) return;
  for (const ring::LanePosition& lane : lanes) {
    const ChunkLane entry{lane.lane, 0, lane.tail};
    append_chunk(&entry, sizeof entry);
  }
  const ChunkHeader header{kChunkMagic, chunk_inputs_, static_cast<uint32_t>(lanes.size()), 0, chunk_max_second_,
                           chunk_size_};
  // The header goes at the chunk's start: in the buffer if nothing was
  // spilled yet, else written in place over the room left for it.
  if (spilled_ == 0) std::memcpy(chunk_.data(), &header, sizeof header);
  const bool fits = chunk_size_ <= log_bytes_ - (end_ - start_);
  const bool written = fits && !spill_failed_ && write_log(end_ + spilled_, chunk_.data(), chunk_size_ - spilled_) &&
                       (spilled_ == 0 || write_log(end_, &header, sizeof header));
  if (written) {
    end_ += chunk_size_;
    chunks_.push_back(ChunkInfo{end_, chunk_max_second_});
    for (const ring::LanePosition& lane : lanes) {
      if (lane.lane < lane_tails_.size()) lane_tails_[lane.lane] = lane.tail;
    }
    lanes_written_ = lanes.empty() && lanes_written_;
  } else {
    unjournaled_ += chunk_inputs_;
    unjournaled_max_second_ = std::max(unjournaled_max_second_, chunk_max_second_);
  }
  write_header();
  chunk_size_ = sizeof(ChunkHeader);
  spilled_ = 0;
  spill_failed_ = false;
  chunk_inputs_ = 0;
  chunk_max_second_ = INT64_MIN;
  update_room();
}

void RecoveryJournal::begin_flush(int64_t second, uint64_t first_sequence) {
  flushing_second_ = second;
  flushing_sequence_ = first_sequence;
  write_header();
}

void RecoveryJournal::end_flush(int64_t second) {
  if (second <= flushed_second_) return;
  flushed_second_ = second;
  flushing_second_ = std::max(flushing_second_, second);
  reclaim(second);
  write_header();
  update_room();
}

void RecoveryJournal::reclaim(int64_t flushed) {
  uint64_t start = start_;
  while (!chunks_.empty() && chunks_.front().max_second <= flushed) {
    start = chunks_.front().end;
    chunks_.pop_front();
  }
  if (start == start_) return;
  // The lane tails of the chunks given up must stay known: write the region first.
  if (!lanes_written_ && write_at(lanes_offset_, lane_tails_.data(), lane_tails_.size() * 8)) lanes_written_ = true;
  if (!lanes_written_) return;  // keep the chunks: they still say where the ring was read to
  // Give the pages back to tmpfs (whole pages only; the log wraps).
  const uint64_t from = round_up_page(start_);
  const uint64_t to = start / kPage * kPage;
  for (uint64_t p = from; p < to;) {
    const uint64_t at = p % log_bytes_;
    const uint64_t len = std::min(to - p, log_bytes_ - at);
    ::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(log_offset_ + at),
                static_cast<off_t>(len));
    p += len;
  }
  start_ = start;
}

}  // namespace monitor::agent
