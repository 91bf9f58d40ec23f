/* libmonitor C API: report a number from business code in nanoseconds.
 *
 * Every function here is thread-safe, async-signal-unsafe, never blocks, never
 * allocates after the first call of a thread, and never raises a signal or an
 * exception into the caller. Failures come back as a negative MONITOR_ERR_* code
 * and are counted (see monitor_get_stats).
 *
 * The one exception to "never blocks" is the first call in a process (or
 * monitor_init), which maps the ring: milliseconds, once. Threads racing that
 * first call wait for it, at most 500 ms, instead of failing. */
#ifndef MONITOR_MONITOR_H
#define MONITOR_MONITOR_H

#include <stdint.h>

#include "monitor/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Op bits: which statistics the agent keeps for a report (docs/design.md section 1). */
#define MONITOR_OP_SUM 1
#define MONITOR_OP_MAX 2
#define MONITOR_OP_MIN 4
#define MONITOR_OP_AVG 8
#define MONITOR_OP_FIRST 16
#define MONITOR_OP_LAST 32
#define MONITOR_OP_COUNT 64
#define MONITOR_OP_HIST 128
#define MONITOR_OP_ALL 255

/* Result codes. */
#define MONITOR_OK 0
#define MONITOR_ERR_BAD_NAME (-1)    /* service/attr breaks the naming rule */
#define MONITOR_ERR_RING_FULL (-2)   /* this thread's ring lane is full; report dropped */
#define MONITOR_ERR_UNAVAILABLE (-3) /* shared memory could not be created or mapped */
#define MONITOR_ERR_BAD_OPS (-4)     /* op_mask is 0 or has bits outside MONITOR_OP_ALL */
#define MONITOR_ERR_VERSION (-5)     /* the ring was made by an incompatible libmonitor */
#define MONITOR_ERR_NAMES_FULL (-6)  /* the ring's name table has no room for a new pair */
#define MONITOR_ERR_BAD_TIME (-7)    /* monitor_at with a negative timestamp */

/* Environment variable naming the ring ("/monitor-ring" when unset). */
#define MONITOR_RING_ENV "MONITOR_RING"
#define MONITOR_DEFAULT_RING "/monitor-ring"

/* Binds this process to ring `ring_name` (a POSIX shm name such as "/my-ring";
 * NULL means $MONITOR_RING or the default), creating the ring if no agent has.
 * Optional: the first report does it implicitly. Returns MONITOR_OK, or
 * MONITOR_ERR_UNAVAILABLE / MONITOR_ERR_VERSION. After a success the binding is
 * fixed for the life of the process; a later call with another name fails with
 * MONITOR_ERR_UNAVAILABLE. After a failure the SDK retries at most once a second. */
MONITOR_EXPORT int monitor_init(const char* ring_name);

/* Reports `value` for (service, attr) from `server_id` now. Names follow
 * [A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)+, at most 64 bytes each.
 *
 * C++ code that includes monitor/monitor.hpp uses monitor::report() instead:
 * a global function named `monitor` cannot coexist with namespace `monitor`,
 * so monitor.hpp hides this declaration (include monitor.hpp, not monitor.h,
 * in such files). monitor_report() is the same call under another name. */
#if !defined(__cplusplus) || !defined(MONITOR_CPP_API)
MONITOR_EXPORT int monitor(const char* service, const char* attr, int64_t server_id,
                           int64_t value, int32_t op_mask);
#endif
MONITOR_EXPORT int monitor_report(const char* service, const char* attr, int64_t server_id,
                                  int64_t value, int32_t op_mask);

/* As monitor(), with an explicit event time in ns since the Unix epoch (for
 * replays and back-fills; the agent applies its late window to it). */
MONITOR_EXPORT int monitor_at(const char* service, const char* attr, int64_t server_id,
                              int64_t value, int32_t op_mask, int64_t timestamp_ns);

/* A handle names an interned (service, attr) pair; reporting through it skips
 * hashing and comparing names. Handles belong to the process, not to a ring:
 * one can be had before any ring exists (its reports return
 * MONITOR_ERR_UNAVAILABLE until one does, retried at most once a second), and
 * it stays valid for the life of the process, across a move to a new ring,
 * and may be shared between threads. At most 65535 distinct pairs. */
typedef uint32_t monitor_handle_t;

/* Interns (service, attr). Returns a handle > 0, or MONITOR_ERR_BAD_NAME, or
 * MONITOR_ERR_NAMES_FULL (the process's handles or the ring's name table). */
MONITOR_EXPORT int64_t monitor_intern(const char* service, const char* attr);

/* As monitor_intern, for names that are not NUL-terminated. */
MONITOR_EXPORT int64_t monitor_intern_n(const char* service, uint32_t service_len,
                                        const char* attr, uint32_t attr_len);

/* Reports through a handle from monitor_intern. A handle this process never
 * received gives MONITOR_ERR_BAD_NAME. */
MONITOR_EXPORT int monitor_handle_report(monitor_handle_t handle, int64_t server_id,
                                         int64_t value, int32_t op_mask);

/* What this process's SDK has done since it started (monotonic counters). */
typedef struct monitor_stats {
  uint64_t ring_full;   /* reports dropped: lane full or no lane free */
  uint64_t bad_name;    /* calls rejected for a bad or unknown name */
  uint64_t bad_ops;     /* calls rejected for a bad op mask */
  uint64_t unavailable; /* calls made while no ring could be mapped */
  uint64_t names_full;  /* calls rejected because the name table was full */
  uint64_t bad_time;    /* monitor_at calls rejected for a negative timestamp */
  uint64_t rebinds;     /* moves to a new ring after the agent retired or remade the old one */
} monitor_stats_t;

MONITOR_EXPORT void monitor_get_stats(monitor_stats_t* out);

/* A static English description of a MONITOR_* result code. */
MONITOR_EXPORT const char* monitor_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
