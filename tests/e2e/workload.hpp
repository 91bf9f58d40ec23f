// The known reports the end-to-end writers send and the test expects back.
#pragma once

#include <cstdint>

#include "monitor/monitor.hpp"

namespace monitor::e2e {

inline constexpr int kThreads = 2;
inline constexpr const char* kService = "E2e.Test";

enum class Path { kHandle, kNames, kSocketNative, kSocketStatsd };

struct Report {
  const char* attr;
  int64_t server_id;
  int64_t value;
  int32_t ops;
  Path path;
};

/// Report i of thread t in writer process p.
inline Report workload_report(int p, int t, int i) {
  const int64_t value = static_cast<int64_t>((p * 7919 + t * 104729 + i * 31) % 20011) - 10000;
  const int64_t server = i % 3 + 1;
  switch (i % 5) {
    case 0: return {"Sdk.Handle", server, value, kSum | kMax | kMin | kAvg | kCount | kHist, Path::kHandle};
    case 1: return {"Sdk.Names", server, value, kSum | kCount | kMax, Path::kNames};
    case 2: return {"Socket.Native", server, value, kSum | kMin | kCount | kHist, Path::kSocketNative};
    case 3: return {"Socket.Statsd", server, value, kSum | kCount, Path::kSocketStatsd};
    default: return {"Seq.Order", 100 + p * kThreads + t, i, kFirst | kLast | kCount, Path::kHandle};
  }
}

}  // namespace monitor::e2e
