#include "agent/aggregator.hpp"

#include <algorithm>
#include <cmath>

#include "agent/recovery_journal.hpp"
#include "common/clock.hpp"
#include "common/hash.hpp"
#include "model/op.hpp"

namespace monitor::agent {
namespace {
constexpr size_t kInitialIndex = 1024;
constexpr uint32_t kHistBit = 128;

inline uint64_t cell_hash(uint32_t name_id, int64_t server_id, uint32_t ops) noexcept {
  return mix64((uint64_t{name_id} << 8 | ops) ^ 0x9E3779B97F4A7C15ULL,
               static_cast<uint64_t>(server_id) ^ 0xD6E8FEB86659FD93ULL);
}

}  // namespace

Aggregator::Aggregator(Options options, int64_t now_s, size_t extra_open_seconds)
    : options_(options),
      watermark_(now_s - options.late_window_s - 1),
      tables_(static_cast<size_t>(options.late_window_s + options.future_window_s + 3)),
      max_tables_(tables_.size() + extra_open_seconds) {
  // Tables are handed out by pointer (the cache, a flush in progress): they
  // must never move, so the vector gets all the room it may need now.
  tables_.reserve(max_tables_);
}

Aggregator::SecondTable* Aggregator::table_for(int64_t second) {
  // Free tables are a pool: a new second takes the free table with the most
  // room, so only as many tables grow large as there are seconds open at once
  // (about late window + 2), not every table in turn.
  SecondTable* free_table = nullptr;
  for (SecondTable& t : tables_) {
    if (t.second == second) return &t;
    if (t.second == -1 && (free_table == nullptr || t.index.size() > free_table->index.size())) free_table = &t;
  }
  if (free_table == nullptr) {
    // Every table holds an open second: the watermark is held back (a stall
    // being caught up), or the caller's clock jumped. Grow, within the bound.
    if (tables_.size() >= max_tables_) return nullptr;
    free_table = &tables_.emplace_back();
  }
  free_table->second = second;
  if (free_table->index.empty()) free_table->index.assign(kInitialIndex, 0);
  return free_table;
}

void Aggregator::update(SecondTable& t, Cell& cell, int64_t value, uint32_t ops, int64_t time_ns) {
  cell.stats.add(value, time_ns);
  const uint32_t rate_ppm = ops >> kRateShift;
  if (rate_ppm == 0 || rate_ppm >= kRateOne) {
    if (ops & kHistBit) {
      if (cell.hist == 0) cell.hist = new_hist();
      hists_[cell.hist - 1].add(value);
    }
    return;
  }
  // The report stands for 1/rate reports: the add above took one, the
  // table's sums keep the rest, exactly, until the second is emitted.
  if (cell.sampled == 0) {
    t.sampled.emplace_back();
    cell.sampled = static_cast<uint32_t>(t.sampled.size());
  }
  SampledSums& extra = t.sampled[cell.sampled - 1];
  const double weight = static_cast<double>(kRateOne) / static_cast<double>(rate_ppm);
  extra.sum += static_cast<double>(value) * (weight - 1.0);
  extra.count += weight - 1.0;
  if (ops & kHistBit) {
    if (cell.hist == 0) cell.hist = new_hist();
    extra.hist_carry += weight;
    const double copies = std::floor(extra.hist_carry);
    extra.hist_carry -= copies;
    if (copies >= 1.0) {
      hists_[cell.hist - 1].add_to_bucket(model::LogHistogram::bucket_key(value), static_cast<uint64_t>(copies));
    }
  }
}

namespace {
// Nearest integer, saturated: a sum of huge sampled values must not be UB.
int64_t round_saturated(double x) noexcept {
  if (!(x > -9.2e18)) return x != x ? 0 : INT64_MIN;
  if (!(x < 9.2e18)) return INT64_MAX;
  return std::llround(x);
}
}  // namespace

void Aggregator::settle_sampled(SecondTable& t) {
  if (t.sampled.empty()) return;
  for (Cell& c : t.cells) {
    if (c.sampled == 0) continue;
    const SampledSums& extra = t.sampled[c.sampled - 1];
    c.stats.count += static_cast<uint64_t>(round_saturated(extra.count));
    c.stats.sum = static_cast<int64_t>(static_cast<uint64_t>(c.stats.sum) +
                                       static_cast<uint64_t>(round_saturated(extra.sum)));
    c.sampled = 0;
  }
  t.sampled.clear();
}

Aggregator::AddResult Aggregator::add(uint32_t name_id, int64_t server_id, int64_t value, uint32_t ops,
                                      int64_t time_ns, int64_t now_s, CellHint* hint) {
  const int64_t second = second_of_ns(time_ns);
  if (second <= watermark_) return AddResult::kLate;
  if (second > now_s + options_.future_window_s) return AddResult::kFuture;
  SecondTable* t = cached_table_for(second);
  if (t == nullptr) return AddResult::kFuture;
  return place(*t, Input{name_id, ops, server_id, value, time_ns}, hint) ? AddResult::kAccepted
                                                                         : AddResult::kOverLimit;
}

bool Aggregator::place(SecondTable& t, const Input& in, CellHint* hint) {
  const uint32_t ops = in.ops & kOpBits;
  Cell* cell = nullptr;
  if (hint != nullptr && hint->table == &t && hint->cell != 0 && hint->cell <= t.cells.size()) {
    // A cell is unique per series in its table, so a match is the series' cell.
    Cell& c = t.cells[hint->cell - 1];
    if (c.name_id == in.name_id && c.server_id == in.server_id && c.ops == ops) cell = &c;
  }
  if (cell == nullptr) {
    cell = find_or_insert(t, in.name_id, in.server_id, ops);
    if (cell == nullptr) return false;
    if (hint != nullptr) *hint = CellHint{&t, static_cast<uint32_t>(cell - t.cells.data()) + 1};
  }
  update(t, *cell, in.value, in.ops, in.time_ns);
  if (journal_ != nullptr) journal_->add(in);
  return true;
}

bool Aggregator::add_recovered(const Input& in) {
  const int64_t second = second_of_ns(in.time_ns);
  if (second <= watermark_) return true;  // written out already: nothing to do
  SecondTable* t = cached_table_for(second);
  return t != nullptr && place(*t, in);
}

Aggregator::Rejected Aggregator::add_batch(const Input* in, size_t n, int64_t now_s) {
  Rejected rejected;
  SecondTable* tables[kMaxBatch];
  size_t slots[kMaxBatch];
  n = std::min(n, kMaxBatch);
  // Pass 1: place each report and prefetch its hash slot.
  for (size_t i = 0; i < n; ++i) {
    const int64_t second = second_of_ns(in[i].time_ns);
    SecondTable* t = nullptr;
    if (second <= watermark_) {
      ++rejected.late;
    } else if (second > now_s + options_.future_window_s || (t = cached_table_for(second)) == nullptr) {
      ++rejected.future;
    }
    tables[i] = t;
    if (t != nullptr) {
      slots[i] = cell_hash(in[i].name_id, in[i].server_id, in[i].ops & kOpBits) & (t->index.size() - 1);
      __builtin_prefetch(&t->index[slots[i]]);
    }
  }
  // Pass 2: the slots are in cache now; prefetch the cells they name.
  for (size_t i = 0; i < n; ++i) {
    if (tables[i] == nullptr) continue;
    const uint32_t cell = tables[i]->index[slots[i]];
    if (cell != 0) __builtin_prefetch(&tables[i]->cells[cell - 1]);
  }
  // Pass 3: the real work, in order (a later insert may grow a table, so
  // nothing computed above is reused beyond the table pointer).
  for (size_t i = 0; i < n; ++i) {
    if (tables[i] == nullptr) continue;
    if (!place(*tables[i], in[i])) {
      ++rejected.over_limit;
      rejected.over_limit_name = in[i].name_id;
    }
  }
  return rejected;
}

Aggregator::Cell* Aggregator::find_or_insert(SecondTable& t, uint32_t name_id, int64_t server_id,
                                             uint32_t ops) {
  size_t mask = t.index.size() - 1;
  size_t i = cell_hash(name_id, server_id, ops) & mask;
  while (true) {
    const uint32_t n = t.index[i];
    if (n == 0) break;
    Cell& c = t.cells[n - 1];
    if (c.name_id == name_id && c.server_id == server_id && c.ops == ops) return &c;
    i = (i + 1) & mask;
  }
  if (series_limit_ != 0) {
    const uint32_t service = name_id < service_of_name_->size() ? (*service_of_name_)[name_id] : 0;
    if (t.service_cells.size() <= service) t.service_cells.resize(service + 1, 0);
    if (t.service_cells[service] >= series_limit_) return nullptr;
    ++t.service_cells[service];
  }
  if ((t.cells.size() + 1) * 2 > t.index.size()) {
    grow(t);
    mask = t.index.size() - 1;
    i = cell_hash(name_id, server_id, ops) & mask;
    while (t.index[i] != 0) i = (i + 1) & mask;
  }
  t.cells.push_back(Cell{name_id, ops, server_id, model::Stats{}, 0});
  t.index[i] = static_cast<uint32_t>(t.cells.size());
  return &t.cells.back();
}

void Aggregator::grow(SecondTable& t) {
  std::vector<uint32_t> index(t.index.size() * 2, 0);
  const size_t mask = index.size() - 1;
  for (uint32_t n = 1; n <= t.cells.size(); ++n) {
    const Cell& c = t.cells[n - 1];
    size_t i = cell_hash(c.name_id, c.server_id, c.ops) & mask;
    while (index[i] != 0) i = (i + 1) & mask;
    index[i] = n;
  }
  t.index.swap(index);
}

uint32_t Aggregator::new_hist() {
  if (!free_hists_.empty()) {
    const uint32_t n = free_hists_.back();
    free_hists_.pop_back();
    return n;
  }
  hists_.emplace_back();
  return static_cast<uint32_t>(hists_.size());
}

void Aggregator::flush_until(int64_t up_to_second, AggregateSink& sink,
                             const std::function<void()>& between_chunks) {
  if (up_to_second <= watermark_) return;
  // Tables are few (late + future + 3): collect the due ones and emit in order.
  std::vector<SecondTable*> due;
  for (auto& t : tables_) {
    if (t.second > watermark_ && t.second <= up_to_second) due.push_back(&t);
  }
  std::sort(due.begin(), due.end(), [](auto* a, auto* b) { return a->second < b->second; });
  watermark_ = up_to_second;
  // Reports for these seconds are now behind the watermark, so nothing that
  // between_chunks adds can land in a table being emitted.
  for (SecondTable* t : due) emit(*t, sink, between_chunks);
}

void Aggregator::emit(SecondTable& t, AggregateSink& sink, const std::function<void()>& between_chunks) {
  settle_sampled(t);
  // Group cells of one (name, server) so differing op masks merge per op.
  order_.resize(t.cells.size());
  for (uint32_t i = 0; i < order_.size(); ++i) order_[i] = i;
  std::sort(order_.begin(), order_.end(), [&](uint32_t a, uint32_t b) {
    const Cell& x = t.cells[a];
    const Cell& y = t.cells[b];
    // A strict order (ops break the tie), so the same reports emit the same
    // records in the same batches: a second written out again after a crash
    // reuses its batch sequences exactly.
    if (x.name_id != y.name_id) return x.name_id < y.name_id;
    return x.server_id != y.server_id ? x.server_id < y.server_id : x.ops < y.ops;
  });
  if (between_chunks) between_chunks();  // the sort above takes milliseconds for 100 000 series
  model::Stats merged;
  model::LogHistogram merged_hist;
  size_t next_break = kEmitChunk;
  for (size_t begin = 0; begin < order_.size();) {
    if (begin >= next_break) {
      next_break = begin + kEmitChunk;
      // order_ and this table stay untouched by what the callback adds, but
      // hists_ may grow: no pointer into it is held across this call.
      if (between_chunks) between_chunks();
    }
    const Cell& head = t.cells[order_[begin]];
    size_t end = begin + 1;
    uint32_t ops_union = head.ops;
    while (end < order_.size() && t.cells[order_[end]].name_id == head.name_id &&
           t.cells[order_[end]].server_id == head.server_id) {
      ops_union |= t.cells[order_[end]].ops;
      ++end;
    }
    for (const auto& op : model::kOps) {
      if ((ops_union & op.bit) == 0) continue;
      const model::Stats* stats = &head.stats;
      const model::LogHistogram* hist = nullptr;
      if (end - begin > 1) {
        merged = model::Stats{};
        merged_hist.clear();
        for (size_t k = begin; k < end; ++k) {
          const Cell& c = t.cells[order_[k]];
          if ((c.ops & op.bit) == 0) continue;
          merged.merge(c.stats);
          if (op.bit == kHistBit && c.hist != 0) merged_hist.merge(hists_[c.hist - 1]);
        }
        stats = &merged;
        if (op.bit == kHistBit) hist = &merged_hist;
      } else if (op.bit == kHistBit) {
        hist = &hists_[head.hist - 1];
      }
      sink.write(AggregateRecord{t.second, head.name_id, head.server_id, op.bit, stats, hist});
    }
    begin = end;
  }
  sink.end_second(t.second);

  for (Cell& c : t.cells) {
    if (c.hist != 0) {
      hists_[c.hist - 1].clear();
      free_hists_.push_back(c.hist);
    }
  }
  t.cells.clear();
  std::fill(t.index.begin(), t.index.end(), 0);
  std::fill(t.service_cells.begin(), t.service_cells.end(), 0);
  t.second = -1;
}

size_t Aggregator::live_cells() const noexcept {
  size_t n = 0;
  for (const auto& t : tables_) n += t.cells.size();
  return n;
}

size_t Aggregator::memory_bytes() const noexcept {
  size_t bytes = 0;
  for (const auto& t : tables_) bytes += t.index.capacity() * 4 + t.cells.capacity() * sizeof(Cell);
  for (const auto& h : hists_) bytes += h.memory_bytes() + sizeof(h);
  return bytes;
}

}  // namespace monitor::agent
