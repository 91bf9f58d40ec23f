#include "judger/minute_rollup.hpp"

#include "common/clock.hpp"
#include "common/hash.hpp"
#include "judger/op_values.hpp"
#include "model/op.hpp"

namespace monitor::judger {

size_t MinuteRollup::KeyHash::operator()(const Key& k) const noexcept {
  // The table takes the low bits: finish with splitmix64's mixer so every
  // input bit reaches them (a bare multiply left long probe chains).
  uint64_t x = (static_cast<uint64_t>(k.name) << 32 | k.ops) * 0x9E3779B97F4A7C15ULL ^
               static_cast<uint64_t>(k.server) * 0xC2B2AE3D27D4EB4FULL;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 29;
  return x;
}

MinuteRollup::Minute* MinuteRollup::open_minute(int64_t minute, int64_t now_s) {
  if (now_s - minute > options_.max_age_s) {
    ++too_late_;
    return nullptr;
  }
  auto [it, opened] = minutes_.try_emplace(minute);
  Minute& m = it->second;
  if (opened && loader_ && (now_s >= minute + 60 + options_.grace_s || minute + 60 <= complete_before_)) {
    // Possibly finished and stored before (then forgotten, or lost in a
    // restart): start from the stored state so the amendment is exact.
    for (auto& cell : loader_(minute)) {
      m.cells[Key{names_.intern(cell.service, cell.attr), cell.op, cell.server_id}] =
          Cell{cell.stats, std::move(cell.hist)};
      m.finished = true;
    }
  }
  m.dirty = true;
  return &m;
}

MinuteRollup::AddResult MinuteRollup::add(const PendingRecord& p, int64_t now_s) {
  const auto& r = p.record;
  Minute* m = open_minute(minute_of(r.second), now_s);
  if (m == nullptr) return AddResult::kTooLate;
  for (const int64_t server : {r.server_id, int64_t{-1}}) {
    Cell& cell = m->cells[Key{p.name, r.ops, server}];
    cell.stats.merge(r.stats);
    if (r.ops & 128u) cell.hist.merge(r.hist);
  }
  return AddResult::kAccepted;
}

void MinuteRollup::append_points(int64_t minute, const Key& key, const Cell& cell,
                                 std::vector<MinutePoint>& out) const {
  const std::string& service = names_.service(key.name);
  const std::string& attr = names_.attr(key.name);
  const uint32_t op = key.ops;
  const int64_t server = key.server;
  auto emit = [&](uint32_t code, double value) { out.push_back(MinutePoint{service, attr, code, server, minute, value}); };
  for_each_op_value(op, cell.stats, cell.hist, emit);
}

std::vector<FinishedMinute> MinuteRollup::due(int64_t now_s, int64_t complete_before) {
  std::vector<FinishedMinute> out;
  complete_before_ = std::max(complete_before_, complete_before);
  for (auto it = minutes_.begin(); it != minutes_.end();) {
    const int64_t minute = it->first;
    Minute& m = it->second;
    if (minute + 60 > complete_before_) break;  // this and later minutes still open
    if (m.dirty) {
      FinishedMinute f{minute, {}, {}, m.finished};
      Cells per_op;  // the live cells split by op: one point (and one stored cell) per op
      m.cells.for_each([&](const Key& key, const Cell& cell) {
        for (const auto& op : model::kOps) {
          if ((key.ops & op.bit) == 0) continue;
          Cell& merged = per_op[Key{key.name, op.bit, key.server}];
          merged.stats.merge(cell.stats);
          if (op.bit == 128u) merged.hist.merge(cell.hist);
        }
      });
      per_op.for_each([&](const Key& key, const Cell& cell) {
        append_points(minute, key, cell, f.points);
        f.cells.push_back(
            MinuteCell{names_.service(key.name), names_.attr(key.name), key.ops, key.server, cell.stats, cell.hist});
      });
      out.push_back(std::move(f));
      m.finished = true;
      m.dirty = false;
      m.unstored = true;
    }
    // A minute not known to be stored stays: forgetting it would lose it, and
    // a late record would rebuild it from stale stored state.
    if (now_s >= minute + 60 + options_.grace_s + options_.late_window_s && !m.dirty && !m.unstored) {
      it = minutes_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void MinuteRollup::stored(int64_t minute) {
  if (auto it = minutes_.find(minute); it != minutes_.end()) it->second.unstored = false;
}

void MinuteRollup::store_failed(int64_t minute) {
  if (auto it = minutes_.find(minute); it != minutes_.end()) it->second.dirty = true;
}

}  // namespace monitor::judger
