// What the Bonnie benches send (bench/proxy_bench.cpp, bench/proxy_tls_bench.cpp):
// one agent's HELLO and names, and a batch of one agent second.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "wire/frame.hpp"
#include "wire/messages.hpp"

namespace monitor::bench {

constexpr int kProxyNames = 100;  // attrs of Bench.Proxy
constexpr int kProxyServers = 10;
constexpr int kRecordsPerBatch = 1000;  // an agent's second of 1 000 series
constexpr uint64_t kProxySender = 42;

inline std::string proxy_hello_and_names() {
  std::string out;
  wire::encode(out, wire::Hello{kProxySender, wire::Role::kAgent, "bench-agent"});
  std::vector<wire::DictEntry> names;
  for (int i = 0; i < kProxyNames; ++i) {
    names.push_back({static_cast<uint32_t>(i + 1), "Bench.Proxy", "Attr.N" + std::to_string(i)});
  }
  wire::encode(out, names);
  return out;
}

// One agent second: 1 000 series with SUM, COUNT, MAX and MIN of 3 reports each.
inline std::string proxy_batch_frame(uint64_t sequence) {
  wire::Batch batch{kProxySender, sequence, {}};
  const int64_t second = 1'795'000'000;
  for (int i = 0; i < kRecordsPerBatch; ++i) {
    wire::BatchRecord r;
    r.second = second;
    r.name_id = static_cast<uint32_t>(i % kProxyNames + 1);
    r.server_id = i / kProxyNames % kProxyServers;
    r.ops = 1 | 2 | 4 | 64;
    for (int v = 0; v < 3; ++v) r.stats.add(i * 7 + v, second * 1'000'000'000 + v);
    batch.records.push_back(r);
  }
  std::string out;
  if (wire::encode(out, batch) != wire::WireError::kOk) std::abort();  // the bench builds batches under the limit
  return out;
}

}  // namespace monitor::bench
