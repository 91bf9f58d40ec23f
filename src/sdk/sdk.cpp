// The monitor() path. Everything here is noexcept and allocation-free after a
// thread's first call; failures become MONITOR_ERR_* codes and counters.
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "common/clock.hpp"
#include "common/process_info.hpp"
#include "common/spin_guard.hpp"
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

// The bound ring. A Binding is never destroyed: other threads may still be
// reporting through it while static destructors run at exit, or while a rebind
// replaces it. A replaced Binding's mapping is swapped for anonymous memory a
// check interval later (so its /dev/shm pages are freed), which keeps a
// straggling thread's stores harmless.
struct Binding {
  ring::ShmSegment segment;
  ring::NameTable names;
  ring::RingWriter writer;
  const bool use_tsc;
  const uint32_t generation;  // 1 for the first binding, +1 per rebind
  const uint64_t check_interval;  // in the push clock's unit (TSC ticks or ns)
  std::atomic<uint64_t> next_check;
  std::atomic<bool> retired{false};
  Binding* predecessor = nullptr;  // retired; its mapping is dropped at the next check
  Binding* next_retired = nullptr;  // in g_retired once its mapping is dropped
  char shm_path[300];              // /dev/shm/<name>: stat()ed, never opened (see check_binding)

  Binding(ring::ShmSegment s, bool tsc, uint32_t gen, const char* name, uint64_t now) noexcept
      : segment(std::move(s)), names(segment), writer(segment), use_tsc(tsc), generation(gen),
        // ~0.5-1 s of TSC ticks on 2-4 GHz parts; no calibration needed for a coarse interval.
        check_interval(tsc ? uint64_t{1} << 31 : 1'000'000'000), next_check(now + check_interval) {
    std::snprintf(shm_path, sizeof shm_path, "/dev/shm%s", name);
  }
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
  std::atomic<uint64_t> bad_time{0};
  std::atomic<uint64_t> rebinds{0};
};

std::atomic<Binding*> g_binding{nullptr};
// Bindings given up after a rebind. Never freed: a thread may still be inside
// a call on one. Kept reachable (a few hundred bytes per ring recreation), so
// they are held memory, not a leak.
std::atomic<Binding*> g_retired{nullptr};
Counters g_counters;
// Init only. Threads racing the first call wait for the one mapping the ring
// (a one-time cost of milliseconds) rather than fail; the wait is bounded.
std::timed_mutex g_init_mutex;
constexpr auto kInitWait = std::chrono::milliseconds(500);
std::atomic<int64_t> g_retry_after_ns{0};
std::atomic<int> g_last_init_error{MONITOR_ERR_UNAVAILABLE};
char g_bound_name[256];              // guarded by g_init_mutex
std::atomic<uint64_t> g_process_id{0};     // pid << 32, refreshed after fork

// Handles are process-local: handle h names the pair g_handle_names[h], and
// g_handle_ref[h] caches its id in the bound ring as generation << 32 | id.
// A handle therefore exists before any ring does, and survives a rebind to a
// new ring, whose name table gives the pair another id. The arrays are
// zero-initialised static storage: untouched pages cost no memory.
constexpr uint32_t kMaxHandles = 1u << 16;
struct HandleNames {
  char service[kMaxNameBytes + 1];
  char attr[kMaxNameBytes + 1];
  uint8_t service_len;
  uint8_t attr_len;
};
std::atomic<uint64_t> g_handle_ref[kMaxHandles];
std::atomic<HandleNames*> g_handle_names[kMaxHandles];
uint32_t g_handle_count = 0;  // guarded by g_handle_lock
// A spin lock, not a mutex: a forked child resets it (a mutex held by a thread
// that did not survive fork cannot be reset portably). Interning is not a hot call.
std::atomic<bool> g_handle_lock{false};

// The hot per-thread state is trivially destructible so that access is a plain
// TLS load (initial-exec: no __tls_get_addr call).
struct ThreadState {
  WriterLane lane;
  Binding* lane_binding = nullptr;  // the binding `lane` belongs to; null = no lane
  uint32_t shared_calls = 0;  // calls made through shared lanes since the last acquire attempt
  bool tried = false;
};
__attribute__((tls_model("initial-exec"))) thread_local ThreadState t_state;

void release_lane(ThreadState& t) noexcept {
  // A retired binding's lock belongs to a closed descriptor and its words to
  // a mapping that is gone: leave both alone.
  if (t.lane_binding != nullptr && !t.lane_binding->retired.load(std::memory_order_acquire)) {
    t.lane_binding->writer.release(t.lane);
  }
  t.lane = WriterLane{};
  t.lane_binding = nullptr;
}

// Gives the lane back when the thread exits; created only on the slow path.
struct LaneReleaser {
  bool armed = false;
  ~LaneReleaser() {
    if (armed) release_lane(t_state);
  }
};

void count(std::atomic<uint64_t>& counter) noexcept { counter.fetch_add(1, std::memory_order_relaxed); }

uint64_t this_owner() noexcept {
  return g_process_id.load(std::memory_order_relaxed) | static_cast<uint32_t>(syscall(SYS_gettid));
}

void refresh_process_identity() noexcept {
  g_process_id.store(static_cast<uint64_t>(getpid()) << 32, std::memory_order_relaxed);
}

void after_fork_in_child() noexcept {
  // The child's only thread must not keep writing to its parent's lane, and
  // the child holds none of its parent's lane locks.
  t_state = ThreadState{};
  ring::RingWriter::reset_after_fork();
  g_handle_lock.store(false, std::memory_order_relaxed);
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

uint64_t push_clock(bool use_tsc) noexcept {
  return use_tsc ? read_tsc() : static_cast<uint64_t>(realtime_ns());
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
  const bool tsc = tsc_is_reliable();
  auto* binding = new (std::nothrow) Binding(std::move(*segment), tsc, 1, name, push_clock(tsc));
  if (binding == nullptr) return MONITOR_ERR_UNAVAILABLE;
  std::strncpy(g_bound_name, name, sizeof g_bound_name - 1);
  g_binding.store(binding, std::memory_order_release);
  return MONITOR_OK;
}

// True when the ring this binding maps is no longer the one the agent reads:
// the agent retired it (tampered header, --recreate-ring), or its name now
// names another object or none. stat(), not open(): closing any descriptor of
// the object would drop this process's lane locks on it.
bool binding_is_stale(const Binding& b) noexcept {
  if (!b.segment.header_intact()) return true;
  struct stat st {};
  if (stat(b.shm_path, &st) != 0) return errno == ENOENT;
  return st.st_ino != b.segment.inode() || st.st_dev != b.segment.device();
}

// Moves the process to the ring that now has the name. Never waits: a thread
// that finds another rebinding leaves it to that one.
void rebind(Binding& old) noexcept {
  std::unique_lock lock(g_init_mutex, std::try_to_lock);
  if (!lock.owns_lock() || g_binding.load(std::memory_order_acquire) != &old) return;
  auto segment = ring::ShmSegment::open_or_create(g_bound_name, ring::Geometry{});
  if (!segment) return;  // tried again at the next check
  auto* binding = new (std::nothrow)
      Binding(std::move(*segment), old.use_tsc, old.generation + 1, g_bound_name, push_clock(old.use_tsc));
  if (binding == nullptr) return;
  binding->predecessor = &old;
  old.retired.store(true, std::memory_order_release);
  ring::atomic_field(binding->segment.header().writer_rebinds).fetch_add(1, std::memory_order_relaxed);
  count(g_counters.rebinds);
  g_binding.store(binding, std::memory_order_release);
}

// Runs at most once per check interval per binding, from whichever call's
// clock read first passed next_check.
[[gnu::noinline]] void check_binding(Binding& b, uint64_t now) noexcept {
  uint64_t due = b.next_check.load(std::memory_order_relaxed);
  if (now < due || !b.next_check.compare_exchange_strong(due, now + b.check_interval, std::memory_order_relaxed)) {
    return;
  }
  if (Binding* old = b.predecessor; old != nullptr) {
    // A check interval after the rebind every thread has seen the new binding.
    b.predecessor = nullptr;
    old->segment.drop_mapping();
    old->next_retired = g_retired.load(std::memory_order_relaxed);
    while (!g_retired.compare_exchange_weak(old->next_retired, old, std::memory_order_release,
                                            std::memory_order_relaxed)) {
    }
  }
  if (binding_is_stale(b)) rebind(b);
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
  if (t.lane_binding != nullptr && t.lane_binding != &b) {
    // The process rebound: this thread's lane is in the retired ring.
    release_lane(t);
    t.tried = false;
  }
  if (!t.tried || ++t.shared_calls >= 4096) {
    // Retry an exclusive lane now and then: threads elsewhere may have exited.
    t.tried = true;
    t.shared_calls = 0;
    try {
      static thread_local LaneReleaser releaser;
      if (b.writer.acquire(t.lane, this_owner())) {
        t.lane_binding = &b;
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
  if (b.writer.push_shared(r, owner, static_cast<uint32_t>(owner)) == PushResult::kOk) return MONITOR_OK;
  count(g_counters.ring_full);
  return MONITOR_ERR_RING_FULL;
}

inline int push(Binding& b, uint32_t name_id, int64_t server_id, int64_t value, int32_t op_mask,
                uint64_t time, uint32_t time_flag) noexcept {
  const ReportFields r{time, value, server_id, name_id, static_cast<uint32_t>(op_mask) | time_flag};
  ThreadState& t = t_state;
  if (__builtin_expect(t.lane_binding == &b, 1)) {
    if (__builtin_expect(ring::RingWriter::push(t.lane, r) == PushResult::kOk, 1)) return MONITOR_OK;
    count(g_lane_drops[t.lane.index % kLaneDropCounters].value);
    return MONITOR_ERR_RING_FULL;
  }
  return push_slow(b, r);
}

// Reports stamped now. The clock read doubles as the trigger of the periodic
// binding check, so the check costs the hot path one compare.
inline int push_now(Binding& b, uint32_t name_id, int64_t server_id, int64_t value,
                    int32_t op_mask) noexcept {
  const uint64_t now = push_clock(b.use_tsc);
  if (__builtin_expect(now >= b.next_check.load(std::memory_order_relaxed), 0)) check_binding(b, now);
  return push(b, name_id, server_id, value, op_mask, now, b.use_tsc ? ring::kOpsTimeIsTsc : 0);
}

// Callers mostly pass the same literals on every call, so a thread remembers
// which id the last few (service, attr) pointer pairs had. A hit is still
// checked byte for byte against the interned names: a reused buffer with new
// contents misses instead of reporting under a stale id.
struct NameCacheEntry {
  const char* service;
  const char* attr;
  const Binding* binding;
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
  if (cached.service == service && cached.attr == attr && cached.binding == &b &&
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
  cached = NameCacheEntry{service, attr, &b, id};
  return id;
}

// Issues the handle of a (valid) pair, or the one it already has. Linear in
// the number of handles: interning happens at start-up, not per report.
int64_t issue_handle(std::string_view service, std::string_view attr) noexcept {
  SpinGuard locked(g_handle_lock);
  for (uint32_t h = 1; h <= g_handle_count; ++h) {
    const HandleNames* n = g_handle_names[h].load(std::memory_order_relaxed);
    if (n->service_len == service.size() && n->attr_len == attr.size() &&
        std::memcmp(n->service, service.data(), service.size()) == 0 &&
        std::memcmp(n->attr, attr.data(), attr.size()) == 0) {
      return h;
    }
  }
  if (g_handle_count + 1 >= kMaxHandles) return MONITOR_ERR_NAMES_FULL;
  auto* names = new (std::nothrow) HandleNames{};
  if (names == nullptr) return MONITOR_ERR_UNAVAILABLE;
  std::memcpy(names->service, service.data(), service.size());
  std::memcpy(names->attr, attr.data(), attr.size());
  names->service_len = static_cast<uint8_t>(service.size());
  names->attr_len = static_cast<uint8_t>(attr.size());
  const uint32_t h = ++g_handle_count;
  g_handle_names[h].store(names, std::memory_order_release);
  return h;
}

[[gnu::noinline]] int64_t resolve_handle(Binding& b, uint32_t handle) noexcept {
  const HandleNames* n = g_handle_names[handle].load(std::memory_order_acquire);
  if (n == nullptr) return MONITOR_ERR_BAD_NAME;  // in range, never issued
  const ring::InternResult interned = b.names.intern(std::string_view(n->service, n->service_len),
                                                      std::string_view(n->attr, n->attr_len));
  if (interned.id == 0) return interned.error;
  g_handle_ref[handle].store(uint64_t{b.generation} << 32 | interned.id, std::memory_order_relaxed);
  return interned.id;
}

// The handle's id in `b`'s name table, resolving it on first use in this ring.
inline int64_t handle_id(Binding& b, monitor_handle_t handle) noexcept {
  const uint64_t ref = g_handle_ref[handle].load(std::memory_order_relaxed);
  if (__builtin_expect(ref >> 32 == b.generation, 1)) return static_cast<uint32_t>(ref);
  return resolve_handle(b, handle);
}

int fail(int code) noexcept {
  switch (code) {
    case MONITOR_ERR_BAD_NAME: count(g_counters.bad_name); break;
    case MONITOR_ERR_BAD_OPS: count(g_counters.bad_ops); break;
    case MONITOR_ERR_NAMES_FULL: count(g_counters.names_full); break;
    case MONITOR_ERR_BAD_TIME: count(g_counters.bad_time); break;
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
  // Bit 63 of a slot's time marks TSC ticks: a negative time would be read as one.
  if (timestamp_ns < 0) return fail(MONITOR_ERR_BAD_TIME);
  Binding* b = binding();
  if (b == nullptr) return fail(g_last_init_error.load(std::memory_order_relaxed));
  const int64_t id = lookup(*b, service, attr);
  if (id < 0) return fail(static_cast<int>(id));
  return push(*b, static_cast<uint32_t>(id), server_id, value, op_mask, static_cast<uint64_t>(timestamp_ns), 0);
}

MONITOR_EXPORT int64_t monitor_intern_n(const char* service, uint32_t service_len, const char* attr,
                                        uint32_t attr_len) {
  if (service == nullptr || attr == nullptr) return fail(MONITOR_ERR_BAD_NAME);
  const std::string_view s(service, service_len);
  const std::string_view a(attr, attr_len);
  if (!monitor::is_valid_name(s) || !monitor::is_valid_name(a)) return fail(MONITOR_ERR_BAD_NAME);
  const int64_t handle = issue_handle(s, a);
  if (handle < 0) return fail(static_cast<int>(handle));
  // Resolve now when a ring is there, so a full name table shows at once;
  // without a ring the handle is still good and resolves at its first report.
  if (Binding* b = binding(); b != nullptr) {
    const int64_t id = handle_id(*b, static_cast<monitor_handle_t>(handle));
    if (id == MONITOR_ERR_NAMES_FULL) return fail(MONITOR_ERR_NAMES_FULL);
  }
  return handle;
}

MONITOR_EXPORT int64_t monitor_intern(const char* service, const char* attr) {
  if (service == nullptr || attr == nullptr) return fail(MONITOR_ERR_BAD_NAME);
  return monitor_intern_n(service, static_cast<uint32_t>(::strnlen(service, 65)), attr,
                          static_cast<uint32_t>(::strnlen(attr, 65)));
}

MONITOR_EXPORT int monitor_handle_report(monitor_handle_t handle, int64_t server_id, int64_t value,
                                         int32_t op_mask) {
  if (!valid_ops(op_mask)) return fail(MONITOR_ERR_BAD_OPS);
  if (handle == 0 || handle >= kMaxHandles) return fail(MONITOR_ERR_BAD_NAME);
  Binding* b = binding();
  if (b == nullptr) return fail(g_last_init_error.load(std::memory_order_relaxed));
  const int64_t id = handle_id(*b, handle);
  if (id < 0) return fail(static_cast<int>(id));
  return push_now(*b, static_cast<uint32_t>(id), server_id, value, op_mask);
}

MONITOR_EXPORT void monitor_get_stats(monitor_stats_t* out) {
  if (out == nullptr) return;
  out->ring_full = g_counters.ring_full.load(std::memory_order_relaxed);
  for (const auto& lane : g_lane_drops) out->ring_full += lane.value.load(std::memory_order_relaxed);
  out->bad_name = g_counters.bad_name.load(std::memory_order_relaxed);
  out->bad_ops = g_counters.bad_ops.load(std::memory_order_relaxed);
  out->unavailable = g_counters.unavailable.load(std::memory_order_relaxed);
  out->names_full = g_counters.names_full.load(std::memory_order_relaxed);
  out->bad_time = g_counters.bad_time.load(std::memory_order_relaxed);
  out->rebinds = g_counters.rebinds.load(std::memory_order_relaxed);
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
    case MONITOR_ERR_BAD_TIME: return "negative timestamp";
  }
  return "unknown monitor error";
}

}  // extern "C"
