#include "wire/spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <vector>

#include "common/read_exact.hpp"
#include "wire/byte_io.hpp"
#include "wire/crc32c.hpp"

namespace monitor::wire {
namespace {

namespace fs = std::filesystem;
using boost::system::error_code;

constexpr uint64_t kRecordHeader = 8;
constexpr uint32_t kMaxRecord = 64u << 20;

error_code errno_code(int err) { return {err, boost::system::system_category()}; }

// Reads the record at `offset`: its total size, or nullopt if the bytes there
// are not a whole record with a matching CRC.
std::optional<uint64_t> read_record(int fd, uint64_t offset, uint64_t file_size, std::string* body) {
  if (file_size - offset < kRecordHeader) return std::nullopt;
  char header[kRecordHeader];
  if (!read_exact(fd, header, kRecordHeader, offset)) return std::nullopt;
  ByteReader r(std::string_view(header, kRecordHeader));
  const uint32_t length = r.u32le();
  const uint32_t crc = r.u32le();
  if (length > kMaxRecord || file_size - offset - kRecordHeader < length) return std::nullopt;
  std::string data(length, '\0');
  if (!read_exact(fd, data.data(), length, offset + kRecordHeader)) return std::nullopt;
  if (crc32c(0, data.data(), data.size()) != crc) return std::nullopt;
  if (body != nullptr) *body = std::move(data);
  return kRecordHeader + length;
}

}  // namespace

fs::path Spool::segment_path(uint64_t number) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020" PRIu64 ".seg", number);
  return dir_ / name;
}

boost::system::result<std::unique_ptr<Spool>> Spool::open(const fs::path& dir, Options options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return errno_code(ec.value());
  std::unique_ptr<Spool> spool(new Spool(dir, options));
  if (auto loaded = spool->load(); !loaded) return loaded.error();
  return spool;
}

Spool::~Spool() {
  if (write_fd_ >= 0) ::close(write_fd_);
}

boost::system::result<void> Spool::load() {
  std::vector<uint64_t> numbers;
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(dir_, ec)) {
    const std::string name = file.path().filename().string();
    if (name.size() == 24 && name.ends_with(".seg")) numbers.push_back(std::stoull(name.substr(0, 20)));
  }
  if (ec) return errno_code(ec.value());
  std::sort(numbers.begin(), numbers.end());

  uint64_t cursor_segment = 0, cursor_offset = 0;
  if (FILE* f = std::fopen((dir_ / "cursor").c_str(), "r")) {
    if (std::fscanf(f, "%" SCNu64 " %" SCNu64, &cursor_segment, &cursor_offset) != 2) cursor_segment = 0;
    std::fclose(f);
  }

  for (const uint64_t number : numbers) {
    if (number < cursor_segment) {  // consumed before the last stop
      ::unlink(segment_path(number).c_str());
      continue;
    }
    const int fd = ::open(segment_path(number).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return errno_code(errno);
    struct stat st {};
    ::fstat(fd, &st);
    const auto file_size = static_cast<uint64_t>(st.st_size);
    const uint64_t start = number == cursor_segment ? cursor_offset : 0;
    uint64_t offset = 0, records = 0;
    // Walk from the file's start so the cursor is known to sit on a record boundary.
    while (offset < file_size) {
      const auto size = read_record(fd, offset, file_size, nullptr);
      if (!size) break;
      if (offset >= start) ++records;
      offset += *size;
    }
    if (offset < file_size) {
      // A torn or corrupt tail: cut it, so appends continue after whole records.
      ++corrupt_;
      if (::ftruncate(fd, static_cast<off_t>(offset)) != 0) {
        ::close(fd);
        return errno_code(errno);
      }
    }
    ::close(fd);
    segments_.push_back(Segment{number, offset, records});
    records_ += records;
    bytes_ += offset;
  }
  if (!segments_.empty() && segments_.front().number == cursor_segment) {
    read_offset_ = std::min(cursor_offset, segments_.front().bytes);
  }
  return start_segment();
}

boost::system::result<void> Spool::start_segment() {
  if (write_fd_ >= 0) ::close(write_fd_);
  const uint64_t number = segments_.empty() ? 1 : segments_.back().number + 1;
  write_fd_ = ::open(segment_path(number).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (write_fd_ < 0) return errno_code(errno);
  segments_.push_back(Segment{number, 0, 0});
  return {};
}

boost::system::result<void> Spool::write_cursor() {
  const fs::path tmp = dir_ / "cursor.tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return errno_code(errno);
  const uint64_t segment = segments_.front().number;
  const bool ok = std::fprintf(f, "%" PRIu64 " %" PRIu64 "\n", segment, read_offset_) > 0;
  if (std::fclose(f) != 0 || !ok) return errno_code(ENOSPC);
  if (::rename(tmp.c_str(), (dir_ / "cursor").c_str()) != 0) return errno_code(errno);
  return {};
}

void Spool::drop_front_segment(bool count_as_dropped) {
  const Segment& s = segments_.front();
  uint64_t dropped = s.records;
  for (Out& out : out_) {
    if (out.segment != s.number || out.dropped) continue;
    // Out: delivered or not is decided by pop() or unsent().
    out.dropped = true;
    if (dropped > 0) --dropped;
  }
  if (count_as_dropped) dropped_ += dropped;
  records_ -= s.records;
  bytes_ -= s.bytes;
  ::unlink(segment_path(s.number).c_str());
  segments_.pop_front();
  read_offset_ = 0;
}

boost::system::result<void> Spool::append(std::string_view record) {
  if (record.size() > kMaxRecord) return errno_code(EMSGSIZE);
  if (segments_.back().bytes + kRecordHeader + record.size() > options_.segment_bytes && segments_.back().bytes > 0) {
    if (auto started = start_segment(); !started) return started.error();
  }
  std::string bytes;
  ByteWriter w(bytes);
  w.u32le(static_cast<uint32_t>(record.size()));
  w.u32le(crc32c(0, record.data(), record.size()));
  bytes.append(record);
  const ssize_t written = ::write(write_fd_, bytes.data(), bytes.size());
  if (written != static_cast<ssize_t>(bytes.size())) {
    const int err = written < 0 ? errno : ENOSPC;
    // Cut what a short write left, so the segment still ends on a record.
    if (::ftruncate(write_fd_, static_cast<off_t>(segments_.back().bytes)) != 0) {
      // The torn tail is cut when the spool is next opened.
    }
    return errno_code(err);
  }
  segments_.back().bytes += bytes.size();
  segments_.back().records += 1;
  records_ += 1;
  bytes_ += bytes.size();
  // Keep within max_bytes by dropping the oldest whole segments (never the one
  // being written).
  while (bytes_ > options_.max_bytes && segments_.size() > 1) drop_front_segment(true);
  return {};
}

boost::system::result<std::optional<Spool::Entry>> Spool::next() {
  if (!out_.empty()) {
    // Read ahead of the records out. A dropped segment is a prefix of the
    // deque: if the newest out is in one, so are all, and reading starts at
    // the new front.
    const Out& last = out_.back();
    uint64_t number = last.dropped ? segments_.front().number : last.segment;
    uint64_t offset = last.dropped ? read_offset_ : last.offset + last.size;
    auto s = std::find_if(segments_.begin(), segments_.end(), [&](const Segment& g) { return g.number == number; });
    while (s != segments_.end() && offset >= s->bytes) {
      ++s;
      offset = 0;
    }
    if (s == segments_.end()) return std::optional<Entry>{};
    const int fd = ::open(segment_path(s->number).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_code(errno);
    std::string body;
    const auto size = read_record(fd, offset, s->bytes, &body);
    ::close(fd);
    // Damaged: handled as the front once the records out are back.
    if (!size) return std::optional<Entry>{};
    out_.push_back(Out{s->number, offset, *size, false});
    return std::optional<Entry>{Entry{std::move(body), s->number, offset, *size}};
  }
  while (records_ > 0) {
    Segment& s = segments_.front();
    if (read_offset_ >= s.bytes || s.records == 0) {
      if (segments_.size() == 1) return std::optional<Entry>{};
      drop_front_segment(false);  // fully consumed
      continue;
    }
    const int fd = ::open(segment_path(s.number).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_code(errno);
    std::string body;
    const auto size = read_record(fd, read_offset_, s.bytes, &body);
    ::close(fd);
    if (!size) {
      // Damaged after it was written: lose this segment's rest, not the spool.
      corrupt_ += s.records;
      if (segments_.size() == 1) {
        records_ -= s.records;
        s.records = 0;
        read_offset_ = s.bytes;
        return std::optional<Entry>{};
      }
      drop_front_segment(false);
      continue;
    }
    out_.push_back(Out{s.number, read_offset_, *size, false});
    return std::optional<Entry>{Entry{std::move(body), s.number, read_offset_, *size}};
  }
  return std::optional<Entry>{};
}

boost::system::result<void> Spool::pop(const Entry& entry) {
  if (out_.empty() || out_.front().segment != entry.segment || out_.front().offset != entry.offset) {
    return errno_code(EINVAL);  // not the oldest record out: consume nothing
  }
  const bool dropped_meanwhile = out_.front().dropped;
  out_.pop_front();
  if (dropped_meanwhile) return {};
  // Records out may run into the next segment: the consumed one goes first.
  while (segments_.front().number != entry.segment && segments_.size() > 1) drop_front_segment(false);
  read_offset_ += entry.size;
  segments_.front().records -= 1;
  records_ -= 1;
  return write_cursor();
}

void Spool::unsent(const Entry& entry) {
  if (out_.empty() || out_.front().segment != entry.segment || out_.front().offset != entry.offset) return;
  for (const Out& out : out_) dropped_ += out.dropped ? 1 : 0;
  out_.clear();
}

}  // namespace monitor::wire
