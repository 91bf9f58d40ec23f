// What the end-to-end workload (workload.hpp) should leave in a judger, and
// what its HTTP query API serves, per (attr, server, op); server -1 is the
// total. Read as a user reads it: final minutes through the API, never the
// store's tables.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "e2e/query_oracle.hpp"
#include "e2e/workload.hpp"
#include "model/op.hpp"
#include "model/stats.hpp"
#include "support/wire_client.hpp"

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

/// The ops the query API serves as one value per minute that fold exactly
/// over minutes: SUM and COUNT add up, MAX and MIN are extremes, FIRST is the
/// earliest minute's, LAST the latest's. (AVG and the HIST quantiles are not
/// foldable; their series' SUM and COUNT are checked.)
inline bool foldable(uint32_t op) { return op == 1 || op == 2 || op == 4 || op == 16 || op == 32 || op == 64; }

/// What the judger's query API on `query_port` serves for every key of `want`
/// over [from, to), folded into Stats by each op's rule.
inline Tally served_workload(int query_port, const Tally& want, int64_t from, int64_t to) {
  Tally out;
  for (const auto& [key, ignored] : want) {
    const auto& [attr, server, op] = key;
    if (!foldable(op)) continue;
    const std::string target = "/api/series?service=" + std::string(kService) + "&attr=" + attr +
                               "&op=" + std::string(model::op_name(op)) +
                               "&server=" + (server < 0 ? std::string("total") : std::to_string(server)) +
                               "&from=" + std::to_string(from) + "&to=" + std::to_string(to);
    const auto reply = test::http_get(query_port, target);
    if (reply.status != 200) continue;
    boost::json::value body;
    try {
      body = boost::json::parse(reply.body);
    } catch (const std::exception&) {
      continue;
    }
    model::Stats folded;
    const auto& points = body.at("points").as_array();
    for (size_t i = 0; i < points.size(); ++i) {
      const auto value = points[i].as_array().at(1).to_number<int64_t>();
      switch (op) {
        case 1: folded.sum += value; break;
        case 64: folded.count += static_cast<uint64_t>(value); break;
        case 2: folded.max = i == 0 ? value : std::max(folded.max, value); break;
        case 4: folded.min = i == 0 ? value : std::min(folded.min, value); break;
        case 16: if (i == 0) folded.first = value; break;
        case 32: folded.last = value; break;
      }
    }
    if (!points.empty()) out[key] = folded;
  }
  return out;
}

/// Every foldable op of every series served equals what was sent: nothing
/// lost, nothing twice. FIRST and LAST are checked per server only (a total's
/// depends on timing across threads).
inline bool served_exactly(const Tally& want_all, const Tally& got_all, bool report) {
  bool all = true;
  for (const auto& [key, want] : want_all) {
    const auto& [attr, server, op] = key;
    if (!foldable(op) || (server < 0 && (op == 16 || op == 32))) continue;
    const auto it = got_all.find(key);
    bool same = it != got_all.end();
    if (same) {
      const model::Stats& have = it->second;
      switch (op) {
        case 1: same = have.sum == want.sum; break;
        case 64: same = have.count == want.count; break;
        case 2: same = have.max == want.max; break;
        case 4: same = have.min == want.min; break;
        case 16: same = have.first == want.first; break;
        case 32: same = have.last == want.last; break;
      }
    }
    if (!same && report) {
      INFO(attr << " server " << server << " op " << model::op_name(op));
      CHECK(same);
    }
    all = all && same;
  }
  return all;
}

/// Waits, bounded, until the judger serves the workload `want` exactly over
/// [from_second, the end of last_second's minute): each minute is served once
/// final, so this is until the last one is (its end + grace) and every path
/// (spool replays, failovers) has delivered. Then checks, reporting each
/// series that differs.
inline void check_served_exactly(int query_port, const Tally& want, int64_t from_second, int64_t last_second,
                                 std::chrono::seconds margin = std::chrono::seconds(30)) {
  const int64_t from = from_second - from_second % 60;
  const int64_t to = last_second - last_second % 60 + 60;
  const int64_t give_up = std::max(to, unix_now_s()) + margin.count();
  Tally got;
  while (!served_exactly(want, got = served_workload(query_port, want, from, to), false) && unix_now_s() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a poll interval, not a wait for an event
  }
  CHECK(served_exactly(want, got, true));
}

}  // namespace monitor::e2e
