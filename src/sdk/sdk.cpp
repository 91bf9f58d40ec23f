// The monitor() path. Everything here is noexcept and allocation-free after a
// thread's first call; failures become MONITOR_ERR_* codes and counters.
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "common/clock.hpp"
#include "common/process_info.hpp"
#include "monitor/monitor.h"
#include "monitor/monitor.hpp"
#include "ring/name_table.hpp"
#include "ring/ring_errc.hpp"
#include "ring/ring_writer.hpp"
#include "ring/shm_segment.hpp"

namespace monitor::sdk {
namespace {

using ring::PushResult;
using ring::ReportFields;
using ring::WriterLane;

// The bound ring. Created once and never destroyed: other threads may still be
// reporting while static destructors run at exit, and a mapping that outlives
// the process's last call costs nothing.
struct Binding {
  ring::ShmSegment segment;
  ring::NameTable names;
  ring::RingWriter writer;
  bool use_tsc;
  uint32_t name_capacity;

  Binding(ring::ShmSegment s, bool tsc) noexcept
      : segment(std::move(s)), names(segment), writer(segment), use_tsc(tsc),
        name_capacity(segment.header().name_capacity) {}
};

// Drops on a thread's own lane are counted per lane: one writer per lane, so
// the counter's line is never shared between writer threads (a single counter
// would bounce between cores exactly when the ring is under pressure).
struct alignas(64) LaneDropCounter {
  std::atomic<uint64_t> value{0};
};
constexpr size_t kLaneDropCounters = 256;
LaneDropCounter g_lane_drops[kLaneDropCounters];

struct Counters {
  std::atomic<uint64_t> ring_full{0};  // drops through shared lanes or with no lane
  std::atomic<uint64_t> bad_name{0};
  std::atomic<uint64_t> bad_ops{0};
  std::atomic<uint64_t> unavailable{0};
  std::atomic<uint64_t> names_full{0};
};

std::atomic<Binding*> g_binding{nullptr};
Counters g_counters;
// Init only. Threads racing the first call wait for the one mapping the ring
// (a one-time cost of milliseconds) rather than fail; the wait is bounded.
std::timed_mutex g_init_mutex;
constexpr auto kInitWait = std::chrono::milliseconds(500);
std::atomic<int64_t> g_retry_after_ns{0};
std::atomic<int> g_last_init_error{MONITOR_ERR_UNAVAILABLE};
char g_bound_name[256];              // guarded by g_init_mutex
std::atomic<uint64_t> g_process_id{0};     // pid << 32, refreshed after fork
std::atomic<uint64_t> g_start_ticks{0};

// The hot per-thread state is trivially destructible so that access is a plain
// TLS load (initial-exec: no __tls_get_addr call).
struct ThreadState {
  WriterLane lane;
  uint32_t shared_calls = 0;  // calls made through shared lanes since the last acquire attempt
  bool tried = false;
};
__attribute__((tls_model("initial-exec"))) thread_local ThreadState t_state;

// Gives the lane back when the thread exits; created only on the slow path.
struct LaneReleaser {
  bool armed = false;
  ~LaneReleaser() {
    if (armed) ring::RingWriter::release(t_state.lane);
  }
};

void count(std::atomic<uint64_t>& counter) noexcept { counter.fetch_add(1, std::memory_order_relaxed); }

uint64_t this_owner() noexcept {
  return g_process_id.load(std::memory_order_relaxed) | static_cast<uint32_t>(syscall(SYS_gettid));
}

void refresh_process_identity() noexcept {
  const pid_t pid = getpid();
  g_process_id.store(static_cast<uint64_t>(pid) << 32, std::memory_order_relaxed);
  g_start_ticks.store(process_start_ticks(pid), std::memory_order_relaxed);
}

void after_fork_in_child() noexcept {
  // The child's only thread must not keep writing to its parent's lane.
  t_state = ThreadState{};
  refresh_process_identity();
}

int map_ring_error(const boost::system::error_code& ec) noexcept {
  if (ec == ring::RingErrc::kVersionMismatch || ec == ring::RingErrc::kBadMagic ||
      ec == ring::RingErrc::kBadGeometry) {
    return MONITOR_ERR_VERSION;
  }
  return MONITOR_ERR_UNAVAILABLE;
}

const char* resolve_ring_name(const char* requested) noexcept {
  if (requested != nullptr && requested[0] != '\0') return requested;
  const char* env = std::getenv(MONITOR_RING_ENV);
  return env != nullptr && env[0] != '\0' ? env : MONITOR_DEFAULT_RING;
}

// `explicit_call`: monitor_init() binds now; an implicit bind from a report
// after a failure waits out the retry interval instead of hitting /dev/shm on
// every call.
int bind(const char* requested, bool explicit_call) noexcept {
  const char* name = resolve_ring_name(requested);
  std::unique_lock lock(g_init_mutex, kInitWait);
  if (!lock.owns_lock()) return MONITOR_ERR_UNAVAILABLE;
  if (g_binding.load(std::memory_order_acquire) != nullptr) {
    return std::strcmp(g_bound_name, name) == 0 ? MONITOR_OK : MONITOR_ERR_UNAVAILABLE;
  }
  const int64_t now = monotonic_ns();
  if (!explicit_call && now < g_retry_after_ns.load(std::memory_order_relaxed)) {
    return g_last_init_error.load(std::memory_order_relaxed);
  }
  static std::once_flag process_setup;
  std::call_once(process_setup, [] {
    refresh_process_identity();
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
  });
  auto segment = ring::ShmSegment::open_or_create(name, ring::Geometry{});
  if (!segment) {
    const int error = map_ring_error(segment.error());
    g_last_init_error.store(error, std::memory_order_relaxed);
    g_retry_after_ns.store(now + 1'000'000'000, std::memory_order_relaxed);
    return error;
  }
  auto* binding = new (std::nothrow) Binding(std::move(*segment), tsc_is_reliable());
  if (binding == nullptr) return MONITOR_ERR_UNAVAILABLE;
  std::strncpy(g_bound_name, name, sizeof g_bound_name - 1);
  g_binding.store(binding, std::memory_order_release);
  return MONITOR_OK;
}

inline Binding* binding() noexcept {
  Binding* b = g_binding.load(std::memory_order_acquire);
  if (__builtin_expect(b != nullptr, 1)) return b;
  if (bind(nullptr, false) != MONITOR_OK) return nullptr;
  return g_binding.load(std::memory_order_acquire);
}

bool valid_ops(int32_t op_mask) noexcept {
  return op_mask > 0 && (op_mask & ~MONITOR_OP_ALL) == 0;
}

[[gnu::noinline]] int push_slow(Binding& b, const ReportFields& r) noexcept {
  ThreadState& t = t_state;
  if (!t.tried || ++t.shared_calls >= 4096) {
    // Retry an exclusive lane now and then: threads elsewhere may have exited.
    t.tried = true;
    t.shared_calls = 0;
    try {
      static thread_local LaneReleaser releaser;
      if (b.writer.acquire(t.lane, this_owner(), g_start_ticks.load(std::memory_order_relaxed))) {
        releaser.armed = true;
        if (ring::RingWriter::push(t.lane, r) == PushResult::kOk) return MONITOR_OK;
        count(g_lane_drops[t.lane.index % kLaneDropCounters].value);
        return MONITOR_ERR_RING_FULL;
      }
    } catch (...) {
      // thread_local registration can fail only on allocation failure; fall through.
    }
  }
  const uint64_t owner = this_owner();
  if (b.writer.push_shared(r, owner, g_start_ticks.load(std::memory_order_relaxed),
                           static_cast<uint32_t>(owner)) == PushResult::kOk) {
    return MONITOR_OK;
  }
  count(g_counters.ring_full);
  return MONITOR_ERR_RING_FULL;
}

inline int push(Binding& b, uint32_t name_id, int64_t server_id, int64_t value, int32_t op_mask,
                uint64_t time, uint32_t time_flag) noexcept {
  const ReportFields r{time, value, server_id, name_id, static_cast<uint32_t>(op_mask) | time_flag};
  ThreadState& t = t_state;
  if (__builtin_expect(t.lane.lane != nullptr, 1)) {
    if (__builtin_expect(ring::RingWriter::push(t.lane, r) == PushResult::kOk, 1)) return MONITOR_OK;
    count(g_lane_drops[t.lane.index % kLaneDropCounters].value);
    return MONITOR_ERR_RING_FULL;
  }
  return push_slow(b, r);
}

inline int push_now(Binding& b, uint32_t name_id, int64_t server_id, int64_t value,
                    int32_t op_mask) noexcept {
  if (b.use_tsc) return push(b, name_id, server_id, value, op_mask, read_tsc(), ring::kOpsTimeIsTsc);
  return push(b, name_id, server_id, value, op_mask, static_cast<uint64_t>(realtime_ns()), 0);
}

// Callers mostly pass the same literals on every call, so a thread remembers
// which id the last few (service, attr) pointer pairs had. A hit is still
// checked byte for byte against the interned names: a reused buffer with new
// contents misses instead of reporting under a stale id.
struct NameCacheEntry {
  const char* service;
  const char* attr;
  uint32_t id;
};
constexpr size_t kNameCacheSize = 8;
__attribute__((tls_model("initial-exec"))) thread_local NameCacheEntry t_name_cache[kNameCacheSize];

// Finds the pair's id, interning (and so validating) it on first sight.
inline int64_t lookup(Binding& b, const char* service, const char* attr) noexcept {
  if (service == nullptr || attr == nullptr) return MONITOR_ERR_BAD_NAME;
  const auto s_bits = reinterpret_cast<uintptr_t>(service);
  const auto a_bits = reinterpret_cast<uintptr_t>(attr);
  NameCacheEntry& cached = t_name_cache[((s_bits >> 4) ^ (a_bits >> 3)) % kNameCacheSize];
  if (cached.service == service && cached.attr == attr && cached.id != 0 &&
      b.names.matches(cached.id, service, attr)) {
    return cached.id;
  }
  const std::string_view s(service, ::strnlen(service, kMaxNameBytes + 1));
  const std::string_view a(attr, ::strnlen(attr, kMaxNameBytes + 1));
  uint32_t id = b.names.find(s, a);
  if (id == 0) {
    if (!is_valid_name(s) || !is_valid_name(a)) return MONITOR_ERR_BAD_NAME;
    const ring::InternResult interned = b.names.intern(s, a);
    if (interned.id == 0) return interned.error;
    id = interned.id;
  }
  cached = NameCacheEntry{service, attr, id};
  return id;
}

int fail(int code) noexcept {
  switch (code) {
    case MONITOR_ERR_BAD_NAME: count(g_counters.bad_name); break;
    case MONITOR_ERR_BAD_OPS: count(g_counters.bad_ops); break;
    case MONITOR_ERR_NAMES_FULL: count(g_counters.names_full); break;
    default: count(g_counters.unavailable); break;
  }
  return code;
}

}  // namespace
}  // namespace monitor::sdk

using namespace monitor::sdk;

extern "C" {

MONITOR_EXPORT int monitor_init(const char* ring_name) {
  return bind(ring_name, true);
}

// The C symbol `monitor`, defined under another C++ name because namespace
// monitor occupies that name in C++.
MONITOR_EXPORT int monitor_c_entry(const char* service, const char* attr, int64_t server_id, int64_t value,
                                   int32_t op_mask) __asm__("monitor");
MONITOR_EXPORT int monitor_c_entry(const char* service, const char* attr, int64_t server_id, int64_t value,
                                   int32_t op_mask) {
  return monitor_report(service, attr, server_id, value, op_mask);
}

MONITOR_EXPORT int monitor_report(const char* service, const char* attr, int64_t server_id, int64_t value,
                                  int32_t op_mask) {
  if (!valid_ops(op_mask)) return fail(MONITOR_ERR_BAD_OPS);
  Binding* b = binding();
  if (b == nullptr) return fail(g_last_init_error.load(std::memory_order_relaxed));
  const int64_t id = lookup(*b, service, attr);
  if (id < 0) return fail(static_cast<int>(id));
  return push_now(*b, static_cast<uint32_t>(id), server_id, value, op_mask);
}

MONITOR_EXPORT int monitor_at(const char* service, const char* attr, int64_t server_id, int64_t value,
                              int32_t op_mask, int64_t timestamp_ns) {
  if (!valid_ops(op_mask)) return fail(MONITOR_ERR_BAD_OPS);
  Binding* b = binding();
  if (b == nullptr) return fail(g_last_init_error.load(std::memory_order_relaxed));
  const int64_t id = lookup(*b, service, attr);
  if (id < 0) return fail(static_cast<int>(id));
  return push(*b, static_cast<uint32_t>(id), server_id, value, op_mask,
              static_cast<uint64_t>(timestamp_ns), 0);
}

MONITOR_EXPORT int64_t monitor_intern_n(const char* service, uint32_t service_len, const char* attr,
                                        uint32_t attr_len) {
  if (service == nullptr || attr == nullptr) return fail(MONITOR_ERR_BAD_NAME);
  const std::string_view s(service, service_len);
  const std::string_view a(attr, attr_len);
  if (!monitor::is_valid_name(s) || !monitor::is_valid_name(a)) return fail(MONITOR_ERR_BAD_NAME);
  Binding* b = binding();
  if (b == nullptr) return fail(g_last_init_error.load(std::memory_order_relaxed));
  const monitor::ring::InternResult interned = b->names.intern(s, a);
  if (interned.id == 0) return fail(interned.error);
  return interned.id;
}

MONITOR_EXPORT int64_t monitor_intern(const char* service, const char* attr) {
  if (service == nullptr || attr == nullptr) return fail(MONITOR_ERR_BAD_NAME);
  return monitor_intern_n(service, static_cast<uint32_t>(::strnlen(service, 65)), attr,
                          static_cast<uint32_t>(::strnlen(attr, 65)));
}

MONITOR_EXPORT int monitor_handle_report(monitor_handle_t handle, int64_t server_id, int64_t value,
                                         int32_t op_mask) {
  if (!valid_ops(op_mask)) return fail(MONITOR_ERR_BAD_OPS);
  Binding* b = g_binding.load(std::memory_order_acquire);
  // A handle exists only after a successful bind, so no lazy bind here.
  if (b == nullptr || handle == 0 || handle > b->name_capacity) return fail(MONITOR_ERR_BAD_NAME);
  return push_now(*b, handle, server_id, value, op_mask);
}

MONITOR_EXPORT void monitor_get_stats(monitor_stats_t* out) {
  if (out == nullptr) return;
  out->ring_full = g_counters.ring_full.load(std::memory_order_relaxed);
  for (const auto& lane : g_lane_drops) out->ring_full += lane.value.load(std::memory_order_relaxed);
  out->bad_name = g_counters.bad_name.load(std::memory_order_relaxed);
  out->bad_ops = g_counters.bad_ops.load(std::memory_order_relaxed);
  out->unavailable = g_counters.unavailable.load(std::memory_order_relaxed);
  out->names_full = g_counters.names_full.load(std::memory_order_relaxed);
}

MONITOR_EXPORT const char* monitor_strerror(int code) {
  switch (code) {
    case MONITOR_OK: return "ok";
    case MONITOR_ERR_BAD_NAME: return "bad service or attr name";
    case MONITOR_ERR_RING_FULL: return "ring full: report dropped";
    case MONITOR_ERR_UNAVAILABLE: return "ring unavailable: shared memory could not be mapped";
    case MONITOR_ERR_BAD_OPS: return "bad op mask";
    case MONITOR_ERR_VERSION: return "ring made by an incompatible libmonitor";
    case MONITOR_ERR_NAMES_FULL: return "name table full";
  }
  return "unknown monitor error";
}

}  // extern "C"
