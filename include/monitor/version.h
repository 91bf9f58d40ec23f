/* libmonitor's version, for code that checks it at compile time. */
#ifndef MONITOR_VERSION_H
#define MONITOR_VERSION_H

#define MONITOR_VERSION_MAJOR 0
#define MONITOR_VERSION_MINOR 1
#define MONITOR_VERSION_PATCH 0

#endif
