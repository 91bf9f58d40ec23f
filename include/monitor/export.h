/* Symbol visibility of libmonitor's public API. */
#ifndef MONITOR_EXPORT_H
#define MONITOR_EXPORT_H

/* libmonitor is built with -fvisibility=hidden; only MONITOR_EXPORT symbols are
 * part of the ABI. A static build leaves MONITOR_EXPORT empty. */
#if defined(MONITOR_STATIC)
#define MONITOR_EXPORT
#elif defined(__GNUC__)
#define MONITOR_EXPORT __attribute__((visibility("default")))
#else
#define MONITOR_EXPORT
#endif

#endif
