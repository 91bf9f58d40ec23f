// What the end-to-end workload (workload.hpp) should leave in a judger's
// store, and what it did leave, per (attr, server, op); server -1 is the total.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>

#include "e2e/workload.hpp"
#include "judger/minute_store.hpp"
#include "model/op.hpp"
#include "model/stats.hpp"

namespace monitor::e2e {

using Key = std::tuple<std::string, int64_t, uint32_t>;  // attr, server (-1: total), op
using Tally = std::map<Key, model::Stats>;

/// The workload of writer processes `processes` (each run once), per server
/// and in total.
inline Tally expected_workload(const std::vector<int>& processes, int per_thread) {
  Tally out;
  for (const int p : processes) {
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < per_thread; ++i) {
        const Report r = workload_report(p, t, i);
        for (const auto& op : model::kOps) {
          if (!(static_cast<uint32_t>(r.ops) & op.bit)) continue;
          out[{r.attr, r.server_id, op.bit}].add(r.value, i);
          out[{r.attr, -1, op.bit}].add(r.value, i);
        }
      }
    }
  }
  return out;
}

/// Everything the store holds for kService in minutes [from, to]: finished
/// minutes' cells (per server and total) plus records still pending (merged
/// into their server and the total, as the roll-up will).
inline Tally stored_workload(const std::string& db, int64_t from_minute, int64_t to_minute, size_t* pending_records) {
  auto store = judger::MinuteStore::open(db);
  REQUIRE(store.has_value());
  Tally out;
  for (int64_t m = from_minute; m <= to_minute; m += 60) {
    for (const auto& cell : *(*store)->minute_cells(m)) {
      if (cell.service == kService) out[{cell.attr, cell.server_id, cell.op}].merge(cell.stats);
    }
  }
  const auto pending = *(*store)->pending();
  if (pending_records != nullptr) *pending_records = pending.size();
  const auto& names = (*store)->names();
  for (const auto& p : pending) {
    if (names.service(p.name) != kService) continue;
    const std::string& attr = names.attr(p.name);
    for (const auto& op : model::kOps) {
      if (!(p.record.ops & op.bit)) continue;
      out[{attr, p.record.server_id, op.bit}].merge(p.record.stats);
      out[{attr, -1, op.bit}].merge(p.record.stats);
    }
  }
  return out;
}

/// Every op of every series equals what was sent: nothing lost, nothing twice.
/// FIRST and LAST are checked per server only (a total's depends on timing
/// across threads).
inline void check_exact(const Tally& want_all, const Tally& got_all) {
  size_t compared = 0;
  for (const auto& [key, want] : want_all) {
    const auto& [attr, server, op] = key;
    INFO(attr << " server " << server << " op " << model::op_name(op));
    const auto it = got_all.find(key);
    REQUIRE(it != got_all.end());
    const auto& have = it->second;
    CHECK(have.count == want.count);
    if (op == 1 || op == 8) CHECK(have.sum == want.sum);
    if (op == 2) CHECK(have.max == want.max);
    if (op == 4) CHECK(have.min == want.min);
    if (op == 16 && server >= 0) CHECK(have.first == want.first);
    if (op == 32 && server >= 0) CHECK(have.last == want.last);
    ++compared;
  }
  CHECK(compared == want_all.size());
}

}  // namespace monitor::e2e
