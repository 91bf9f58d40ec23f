// A bounded on-disk queue of records (encoded batches) kept while the next hop
// is down, replayed oldest first when it returns (at-least-once).
//
// Layout: <dir>/<20-digit segment number>.seg files of records
//   u32le length | u32le crc32c(body) | body
// and <dir>/cursor holding "<segment> <offset>" of the oldest record not yet
// popped, replaced by atomic rename on every pop.
//
// Crash story: a record torn by a crash mid-append fails its length or CRC
// and is cut off when the spool is opened. A crash after a pop's record was
// delivered but before the cursor was written replays that record: the
// receiver's idempotent ingest (docs/protocol.md) drops the duplicate. Appends
// are not fsync'd: the spool survives the process dying, not the machine
// losing power.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace monitor::wire {

/// Not thread-safe: one owner (a sender's connection loop).
class Spool {
 public:
  struct Options {
    uint64_t max_bytes = 256ull << 20;     // older segments are dropped beyond this
    uint64_t segment_bytes = 4ull << 20;   // a new segment starts past this
  };

  /// Opens (creating if needed) the spool in `dir`, checking every record and
  /// cutting a torn tail.
  [[nodiscard]] static boost::system::result<std::unique_ptr<Spool>> open(const std::filesystem::path& dir,
                                                                         Options options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  /// Adds a record at the back. When the spool would exceed max_bytes, the
  /// oldest segments are dropped first and their records counted as dropped
  /// (a record handed out by next() is counted only if it is then unsent()).
  /// A failed write (full disk) returns the error and keeps the spool usable.
  [[nodiscard]] boost::system::result<void> append(std::string_view record);

  /// A record handed out by next(), and where it was: pop() and unsent() name
  /// it, so nothing but the record that was sent can be consumed.
  struct Entry {
    std::string body;
    uint64_t segment = 0;
    uint64_t offset = 0;
    uint64_t size = 0;
  };

  /// The oldest record not handed out yet, or nullopt when there is none (or
  /// the next one is damaged and records are still out: it is dealt with
  /// once they are back). Several may be out at once, a sender's window; they
  /// stay out until pop() or unsent() names them. A damaged record at the
  /// front is counted as corrupt and skipped with the rest of its segment.
  [[nodiscard]] boost::system::result<std::optional<Entry>> next();

  /// The receiver acknowledged `entry`, the oldest record out: consumes it and
  /// persists the position. If append() dropped its segment meanwhile (the
  /// spool overflowed), the entry was still delivered: nothing is consumed and
  /// nothing counted. A record that is not the oldest out consumes nothing.
  [[nodiscard]] boost::system::result<void> pop(const Entry& entry);

  /// `entry`, the oldest record out, and every one handed out after it could
  /// not be delivered (the link failed): next() hands them out again, in
  /// order, except those whose segment append() dropped meanwhile, which are
  /// counted as dropped now, once.
  void unsent(const Entry& entry);

  /// Records handed out and neither popped nor unsent.
  size_t out() const noexcept { return out_.size(); }
  uint64_t records() const noexcept { return records_; }
  uint64_t bytes() const noexcept { return bytes_; }
  uint64_t dropped_records() const noexcept { return dropped_; }
  uint64_t corrupt_records() const noexcept { return corrupt_; }

 private:
  struct Segment {
    uint64_t number;
    uint64_t bytes;    // valid bytes in the file
    uint64_t records;  // records from the read position (first segment) or the start
  };

  Spool(std::filesystem::path dir, Options options) : dir_(std::move(dir)), options_(options) {}
  std::filesystem::path segment_path(uint64_t number) const;
  boost::system::result<void> load();
  boost::system::result<void> start_segment();
  boost::system::result<void> write_cursor();
  void drop_front_segment(bool count_as_dropped);

  const std::filesystem::path dir_;
  const Options options_;
  std::deque<Segment> segments_;  // oldest first; the last is written to
  int write_fd_ = -1;
  uint64_t read_offset_ = 0;      // in segments_.front()
  struct Out {
    uint64_t segment, offset, size;
    bool dropped;  // its segment was dropped while it was out
  };
  std::deque<Out> out_;           // handed out by next(), oldest first; contiguous from the read position
  uint64_t records_ = 0;          // not yet popped
  uint64_t bytes_ = 0;            // on disk, consumed or not
  uint64_t dropped_ = 0;
  uint64_t corrupt_ = 0;
};

}  // namespace monitor::wire
