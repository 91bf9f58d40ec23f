// The agent's crash journal: the ring positions and open seconds a restarted agent resumes from.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/aggregator.hpp"
#include "common/clock.hpp"
#include "ring/ring_reader.hpp"

namespace monitor::agent {

/// Which ring a journal's lane positions belong to: the shm object's device
/// and inode. A recreated ring is another object, and positions in the old
/// one mean nothing in it.
struct RingIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  friend bool operator==(const RingIdentity&, const RingIdentity&) = default;
};

/// What a killed agent left in its journal, read by the next one.
struct RecoveredJournal {
  bool found = false;
  std::vector<std::pair<std::string, std::string>> names;  // index = journal name id - 1
  std::vector<Aggregator::Input> inputs;                   // of seconds after flushed_second, in order
  RingIdentity ring;
  std::vector<uint64_t> lane_tails;  // per lane: how far the killed agent had consumed (0: nothing known)
  int64_t flushed_second = INT64_MIN;
  // A second whose write-out had begun and not finished, and the batch
  // sequence it began at: it is written out again under the same sequences,
  // so the batches the killed agent got out are recognised as duplicates.
  std::optional<std::pair<int64_t, uint64_t>> unfinished_flush;
  uint64_t unjournaled = 0;  // inputs the killed agent could not journal (full) ...
  int64_t unjournaled_max_second = INT64_MIN;  // ... the latest second among them
  uint64_t corrupt = 0;  // records that did not check out, skipped
  std::string problem;   // non-empty: the journal as a whole was unreadable, and why
};

/// The agent's crash journal: every report the aggregator accepts, and the
/// ring positions that cover it, written to a file before the ring's slots
/// are released, so an agent killed with SIGKILL loses nothing it had drained.
/// The next agent reads it (read()), aggregates what it holds again, moves the
/// ring past what was journaled, and writes out the second it was cut off in
/// under the same batch sequences. docs/agent.md, "Crash story".
///
/// It lives on tmpfs beside the ring (it needs to outlive the process, not
/// the host: the ring does not either) and is written with pwrite, never
/// through a mapping, so a full tmpfs is an error (counted), not SIGBUS.
///
/// Layout: a 4 KiB header (commit words), the lane tails, a name region
/// (append-only), and a circular log of chunks. A chunk is the reports of one
/// drain and the lane tails after it; it counts once `log_end` passes it.
/// Chunks whose seconds were all written out are reclaimed. Not thread-safe:
/// the agent's one thread.
class RecoveryJournal {
 public:
  struct Options {
    uint64_t log_bytes = 256ull << 20;
    uint64_t name_bytes = 64ull << 20;
  };

  /// Reads the journal at `path`. Never throws; a missing file is not found,
  /// an unreadable one says why in `problem`. Every field is checked: the
  /// bytes are another process's.
  static RecoveredJournal read(const std::string& path);

  /// Starts a new journal at `path`.new (renamed over `path` by publish()).
  /// Throws std::runtime_error with a reason.
  RecoveryJournal(std::string path, Options options, RingIdentity ring, uint32_t lane_count,
                  int64_t flushed_second);
  ~RecoveryJournal();
  RecoveryJournal(const RecoveryJournal&) = delete;
  RecoveryJournal& operator=(const RecoveryJournal&) = delete;

  /// Makes this journal the one the next agent reads (atomic rename).
  void publish();
  /// Removes the file: everything was written out (a graceful stop).
  void remove();

  /// The name of the next registry id: ids are dense from 1, so names are
  /// journaled in id order.
  void add_name(std::string_view service, std::string_view attr);

  /// A report the aggregator accepted; journaled at the next commit().
  void add(const Aggregator::Input& input) {
    if (chunk_size_ + kInputBytes > room_) return count_unjournaled(input);
    if (chunk_size_ - spilled_ + kInputBytes > kBufferBytes) spill();
    std::memcpy(chunk_.data() + (chunk_size_ - spilled_), &input, kInputBytes);
    chunk_size_ += kInputBytes;
    chunk_max_second_ = std::max(chunk_max_second_, second_of_ns(input.time_ns));
    ++chunk_inputs_;
  }

  /// Makes the reports added since the last commit, and the lane tails given,
  /// durable together. Call before the ring's tails are released.
  void commit(std::span<const ring::LanePosition> lanes = {});

  /// Second `second`'s write-out begins; its first batch gets `first_sequence`.
  void begin_flush(int64_t second, uint64_t first_sequence);
  /// Every second up to `second` is written out: their reports are not
  /// needed any more.
  void end_flush(int64_t second);

  uint64_t live_bytes() const noexcept { return end_ - start_; }
  /// Reports that found no room (or a write error), since start.
  uint64_t unjournaled() const noexcept { return unjournaled_; }
  uint64_t write_errors() const noexcept { return write_errors_; }

  static constexpr size_t kInputBytes = sizeof(Aggregator::Input);

 private:
  void count_unjournaled(const Aggregator::Input& input);
  bool write_at(uint64_t offset, const void* data, size_t size);
  bool write_log(uint64_t position, const void* data, size_t size);
  bool write_header();
  void reclaim(int64_t flushed);
  void update_room() noexcept;

  std::string path_;
  RingIdentity ring_;
  bool names_broken_ = false;  // a name could not be journaled: nothing more is
  std::string writing_path_;
  int fd_ = -1;
  uint64_t names_offset_;
  uint64_t name_bytes_;
  uint64_t lanes_offset_;
  uint32_t lane_count_;
  uint64_t log_offset_;
  uint64_t log_bytes_;
  uint64_t names_end_ = 0;
  uint64_t start_ = 0;  // log positions, monotonic; the file offset is position % log_bytes_
  uint64_t end_ = 0;
  int64_t flushed_second_;
  int64_t flushing_second_;
  uint64_t flushing_sequence_ = 0;
  uint64_t unjournaled_ = 0;
  int64_t unjournaled_max_second_ = INT64_MIN;
  uint64_t write_errors_ = 0;
  std::vector<uint64_t> lane_tails_;  // as of the last commit
  bool lanes_written_ = true;          // lane_tails_ are in the file's lane region
  struct ChunkInfo {
    uint64_t end;  // log position just past it
    int64_t max_second;
  };
  std::deque<ChunkInfo> chunks_;  // committed and not reclaimed, oldest first
  // The chunk being gathered is written to its place in the log as the
  // buffer fills (past log_end it does not count yet), so the buffer stays
  // in cache however many reports one drain brings.
  static constexpr size_t kBufferBytes = 64 << 10;
  void spill();
  void append_chunk(const void* data, size_t size);
  std::vector<uint8_t> chunk_ = std::vector<uint8_t>(kBufferBytes);  // chunk bytes [spilled_, chunk_size_)
  size_t chunk_size_ = 0;  // the chunk's length so far, header room included
  size_t spilled_ = 0;     // bytes of it already written to the log
  bool spill_failed_ = false;
  uint32_t chunk_inputs_ = 0;
  int64_t chunk_max_second_ = INT64_MIN;
  size_t room_ = 0;  // bytes chunk_size_ may grow to
  int64_t last_error_log_ns_ = INT64_MIN / 2;
};

}  // namespace monitor::agent
