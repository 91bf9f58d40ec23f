// Byte layout of the libmonitor shared-memory segment. docs/ring.md is the full
// document; this header is the one place the layout is defined.
//
// Segment (one POSIX shm object, e.g. /dev/shm/monitor-ring):
//
//   offset 0              SegmentHeader                       256 B
//   lanes_offset          lane_count x Lane                   each 128 B header
//                           + slots_per_lane x Slot (32 B, two per cache line)
//   names_offset          name_capacity x NameEntry (160 B)
//
// A lane is a single-producer / single-consumer ring. Each writer thread owns
// one lane for its life (owner word = pid << 32 | tid); threads that find no
// free lane take one of the last shared_lane_count lanes for the length of one
// call with a try-lock on the same owner word, so every lane always has at most
// one writer at a time and the hot path needs no read-modify-write.
//
//          tail (reader)                 head (writer)
//            v                             v
//   [ready][ready][ready][busy?][free ...free][ready (lap-1, consumed)...]
//
// Slot.seq is 0 (never written), busy(pos) = 2*(pos+1)+1 while the writer fills
// the slot for absolute position pos, ready(pos) = 2*(pos+1) once published
// (release), both mod 2^32. The reader consumes slot tail when seq ==
// ready(tail), then advances tail (release) so the writer may reuse it. 32
// bits suffice: when the reader reaches a slot it holds position tail or
// tail - slots_per_lane (every slot before it was written in each lap), and
// those differ mod 2^32.
//
// Liveness: while a thread owns exclusive lane i, its process holds a POSIX
// record lock (read) on byte i of the shm object; the kernel drops it when the
// process dies. The reader asks with an open-file-description lock query,
// which sees every process's lock whatever PID namespace it lives in (a pid
// in the owner word would name the wrong process from another namespace).
// Shared lanes are held for one call only: an owner word and head unchanged
// across two sweeps mean the holder died (or was stopped) inside a call.
//
// Crash story: a writer killed mid-write leaves seq == busy(pos) and nothing
// after it (it was the only writer of that lane). The reader's sweep sees the
// lane's lock gone, counts the busy slot as abandoned, steps over it, and
// frees the lane. A writer killed between calls leaves only an owner word;
// the sweep frees that lane too. Nothing a dead writer left can stop the reader.
//
// Trust: everything in the segment is writable by every process of the ring's
// group. Each process validates a copy of the header once and derives every
// address from that copy; every index read from the segment afterwards is
// masked or bounds-checked. See docs/ring.md, "Trust model".
//
// Version rule: kRingVersion bumps on any change to a field's offset, size or
// meaning, or to the seq encoding. Appending fields to SegmentHeader inside its
// reserved bytes does not bump it. Both sides refuse a segment of another
// version (the SDK returns MONITOR_ERR_VERSION, the agent exits with a message).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace monitor::ring {

inline constexpr uint64_t kSegmentMagic = 0x31474E49524E4F4DULL;  // "MONRING1" little-endian
inline constexpr uint32_t kRingVersion = 3;  // 2: 32-byte slots; 3: lane liveness by record locks
inline constexpr uint32_t kMaxNameBytes = 64;

// Bit 31 of ReportFields::ops (the writer's input): the time is raw TSC ticks.
inline constexpr uint32_t kOpsTimeIsTsc = 1u << 31;
inline constexpr uint32_t kOpsMask = 0xFFu;
// In a Slot: bit 63 of time marks TSC ticks; name_ops = name_id | ops << 24.
inline constexpr uint64_t kSlotTimeIsTsc = uint64_t{1} << 63;
inline constexpr uint32_t kMaxNameCapacity = 1u << 24;

struct SegmentHeader {
  uint64_t magic;  // written last by the creator (release): the segment is ready
  uint32_t version;
  uint32_t header_size;
  uint64_t segment_size;
  uint32_t lane_count;         // includes the shared lanes
  uint32_t shared_lane_count;  // the last lanes, locked per call
  uint32_t slots_per_lane;     // power of two
  uint32_t slot_size;
  uint32_t lane_size;  // header + slots
  uint32_t name_capacity;  // power of two
  uint32_t name_entry_size;
  uint32_t reserved0;
  uint64_t lanes_offset;
  uint64_t names_offset;
  uint64_t creator_pid;
  // Counters written by any writer (atomic_ref, relaxed).
  uint64_t no_lane_drops;     // a call found neither its own nor a shared lane
  uint64_t names_full_drops;  // the name table had no room
  // Written by the reader.
  uint64_t reader_pid;
  uint64_t reader_heartbeat_ns;
  // Counted by a writer process when it binds to this segment because the one
  // it was bound to was retired or removed (atomic_ref).
  uint64_t writer_rebinds;
  uint8_t reserved1[192 - 120];
  // Nonzero once the reader has given this segment up (tampered header, or
  // --recreate-ring): writers move to whatever segment has the name now. On a
  // line of its own so the writers' periodic check never shares a line that
  // the reader writes every second.
  uint64_t retired;
  uint8_t reserved2[256 - 200];
};

struct Lane {
  // Line 0: written by the owning writer.
  uint64_t owner;              // 0 = free, else pid << 32 | tid (atomic_ref)
  uint64_t reserved_owner;     // unused since version 3 (was the owner's start time)
  uint64_t head;               // next position to write; persisted for the next owner
  uint64_t dropped;            // reports dropped because the lane was full
  uint8_t pad0[32];
  // Line 1: written by the reader.
  uint64_t tail;       // next position to read
  uint64_t abandoned;  // busy slots left by dead writers
  uint8_t pad1[48];
};

// Two slots share a cache line: every line a writer fills must first be taken
// back from the reader's core, so halving the slot halves those transfers.
struct Slot {
  uint32_t seq;       // see the encoding above (atomic_ref)
  uint32_t name_ops;  // name id (1-based, bits 0-23) | op mask << 24
  uint64_t time;      // ns since the epoch; TSC ticks when kSlotTimeIsTsc is set
  int64_t value;
  int64_t server_id;

  uint32_t name_id() const noexcept { return name_ops & (kMaxNameCapacity - 1); }
  uint32_t ops() const noexcept { return name_ops >> 24; }
  bool time_is_tsc() const noexcept { return (time & kSlotTimeIsTsc) != 0; }
  uint64_t time_value() const noexcept { return time & ~kSlotTimeIsTsc; }
};

// Name table: open addressing on hash & (capacity - 1), linear probing. An entry
// is claimed by CAS 0 -> kNameClaimed | pid << 8, filled, then published as
// kNameReady (release). Entries are never removed. A claimed entry is skipped
// by other inserters (never waited on), so a writer dying mid-insert wastes one
// entry and never blocks anyone; a racing insert of the same pair can yield two
// ids for one pair, which the reader resolves by name.
inline constexpr uint64_t kNameEmpty = 0;
inline constexpr uint64_t kNameClaimed = 1;
inline constexpr uint64_t kNameReady = 2;

struct NameEntry {
  uint64_t state;  // atomic_ref
  uint64_t hash;
  uint8_t service_len;
  uint8_t attr_len;
  uint8_t pad[6];
  char service[kMaxNameBytes];
  char attr[kMaxNameBytes];
  uint8_t pad2[8];
};

static_assert(sizeof(SegmentHeader) == 256, "SegmentHeader is a fixed 256-byte block");
static_assert(offsetof(SegmentHeader, writer_rebinds) == 112 && offsetof(SegmentHeader, retired) == 192,
              "header fields keep their offsets across builds of one version");
static_assert(sizeof(Lane) == 128, "a lane header is two cache lines: writer's and reader's");
static_assert(sizeof(Slot) == 32, "two slots per cache line");
static_assert(sizeof(NameEntry) == 160, "NameEntry size is part of the layout");
static_assert(std::is_standard_layout_v<SegmentHeader> && std::is_trivially_copyable_v<SegmentHeader>,
              "shm structs are plain layouts");
static_assert(std::is_standard_layout_v<Lane> && std::is_trivially_copyable_v<Lane>,
              "shm structs are plain layouts");
static_assert(std::is_standard_layout_v<Slot> && std::is_trivially_copyable_v<Slot>,
              "shm structs are plain layouts");
static_assert(std::is_standard_layout_v<NameEntry> && std::is_trivially_copyable_v<NameEntry>,
              "shm structs are plain layouts");
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free,
              "cross-process atomics must be lock-free");

static_assert(std::atomic_ref<uint32_t>::is_always_lock_free,
              "cross-process atomics must be lock-free");

/// Atomic view of a field in shared memory.
inline std::atomic_ref<uint64_t> atomic_field(uint64_t& field) noexcept {
  return std::atomic_ref<uint64_t>(field);
}
inline std::atomic_ref<uint32_t> atomic_field(uint32_t& field) noexcept {
  return std::atomic_ref<uint32_t>(field);
}

inline constexpr uint32_t seq_busy(uint64_t pos) noexcept { return static_cast<uint32_t>(2 * (pos + 1) + 1); }
inline constexpr uint32_t seq_ready(uint64_t pos) noexcept { return static_cast<uint32_t>(2 * (pos + 1)); }

/// Geometry chosen by whoever creates the segment.
struct Geometry {
  uint32_t lane_count = 128;
  uint32_t shared_lane_count = 8;
  uint32_t slots_per_lane = 8192;
  uint32_t name_capacity = 16384;
};

/// Total bytes of a segment with geometry `g`.
inline uint64_t segment_bytes(const Geometry& g) noexcept {
  const uint64_t lane_size = sizeof(Lane) + uint64_t{g.slots_per_lane} * sizeof(Slot);
  return sizeof(SegmentHeader) + lane_size * g.lane_count +
         uint64_t{g.name_capacity} * sizeof(NameEntry);
}

}  // namespace monitor::ring
