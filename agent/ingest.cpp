#include "agent/ingest.hpp"

#include <spdlog/spdlog.h>

#include "common/hash.hpp"
#include "monitor/monitor.hpp"

namespace monitor::agent {

uint64_t AgentCounters::bad_lines_total() const noexcept {
  uint64_t n = truncated_datagrams;
  for (auto v : bad_lines) n += v;
  return n;
}

Ingest::Ingest(Aggregator& aggregator, NameRegistry& names, const ring::NameTable* ring_names,
               int64_t default_server_id, const StatsdOptions& statsd)
    : aggregator_(aggregator), names_(names), parser_(default_server_id, statsd) {
  set_ring_names(ring_names);
}

void Ingest::set_ring_names(const ring::NameTable* ring_names) {
  ring_names_ = ring_names;
  ring_ids_.assign(ring_names_ != nullptr ? size_t{ring_names_->capacity()} + 1 : 0, 0);
}

uint32_t Ingest::resolve_ring_id(uint32_t ring_id) {
  std::string_view service, attr;
  if (ring_id >= ring_ids_.size() || !ring_names_->resolve(ring_id, service, attr)) return 0;
  // Bytes from another process: check them like any input.
  if (!is_valid_name(service) || !is_valid_name(attr)) return 0;
  return ring_ids_[ring_id] = names_.intern(service, attr);
}

void Ingest::reject_slot(const ring::Slot& slot) {
  ++counters_.bad_slots;
  uint64_t suppressed = 0;
  if (bad_slot_log_.allow(realtime_ns(), suppressed)) {
    spdlog::warn("skipped a ring slot with name id {} and ops {:#x} ({} bad slots so far)", slot.name_id(), slot.ops(),
                 counters_.bad_slots);
  }
}

void Ingest::count_outside_window(Aggregator::Rejected rejected) {
  counters_.late += rejected.late;
  counters_.future += rejected.future;
  if (rejected.over_limit != 0) {
    counters_.series_over_limit += rejected.over_limit;
    const uint32_t service = names_.service_of_names()[rejected.over_limit_name];
    if (warned_services_.size() <= service) warned_services_.resize(service + 1, false);
    if (!warned_services_[service]) {
      warned_services_[service] = true;
      spdlog::warn("service {} has more series in one second than series_per_service allows: new series are "
                   "dropped and counted as Series.OverLimit (told once per service)",
                   names_.service(rejected.over_limit_name));
    }
    if (rejected.late + rejected.future == 0) return;
  }
  uint64_t suppressed = 0;
  if (window_log_.allow(realtime_ns(), suppressed)) {
    spdlog::warn("dropped a report outside the time window ({} late, {} future so far; window {} s back, {} s ahead)",
                 counters_.late, counters_.future, aggregator_.late_window_s(), aggregator_.future_window_s());
  }
}

size_t Ingest::SeriesKeyHash::operator()(const SeriesKey& k) const noexcept {
  return mix64(uint64_t{k.name_id} ^ 0x9E3779B97F4A7C15ULL, static_cast<uint64_t>(k.server_id) ^ 0xD6E8FEB86659FD93ULL);
}

std::optional<int64_t> Ingest::gauge_value(uint32_t id, int64_t server_id, int64_t value, bool delta) {
  const SeriesKey key{id, server_id};
  auto it = gauges_.find(key);
  if (it == gauges_.end()) {
    if (gauges_.size() >= kMaxGauges) {
      // An absolute value needs no memory; a delta on a gauge we cannot remember would be wrong.
      if (!delta) return value;
      ++counters_.gauges_over_limit;
      uint64_t suppressed = 0;
      if (limit_log_.allow(realtime_ns(), suppressed)) {
        spdlog::warn("dropped a gauge delta of {} {}: {} gauges remembered already ({} dropped so far, "
                     "Statsd.GaugesOverLimit)", names_.service(id), names_.attr(id), kMaxGauges,
                     counters_.gauges_over_limit);
      }
      return std::nullopt;
    }
    it = gauges_.emplace(key, 0).first;  // statsd: a delta to an unseen gauge starts from 0
  }
  if (delta) {
    it->second = static_cast<int64_t>(static_cast<uint64_t>(it->second) + static_cast<uint64_t>(value));
  } else {
    it->second = value;
  }
  return it->second;
}

void Ingest::add_gauge(uint32_t id, int64_t server_id, int64_t value, bool delta, uint32_t ops, int64_t time_ns) {
  const auto gauge = gauge_value(id, server_id, value, delta);
  if (!gauge) return;
  last_name_ = id;
  count(aggregator_.add(id, server_id, *gauge, ops, time_ns, now_s_));
}

void Ingest::flush_held_zero() {
  if (!held_zero_) return;
  const HeldZero z = *held_zero_;
  held_zero_.reset();
  add_gauge(z.id, z.server_id, 0, false, z.ops, z.time_ns);
}

bool Ingest::first_in_second(uint32_t id, const ParsedLine& line, int64_t time_ns) {
  // Seconds the aggregator has written out are settled: forget their members.
  while (!set_members_.empty() && set_members_.begin()->first <= aggregator_.watermark()) {
    set_member_count_ -= set_members_.begin()->second.size();
    set_members_.erase(set_members_.begin());
  }
  const int64_t second = second_of_ns(time_ns);
  const uint64_t key = mix64(line.member_hash ^ (uint64_t{id} << 1), static_cast<uint64_t>(line.server_id) + 0x51ED27ULL);
  auto& members = set_members_[second];
  if (members.contains(key)) return false;
  if (set_member_count_ >= kMaxSetMembers) {
    ++counters_.sets_over_limit;
    uint64_t suppressed = 0;
    if (limit_log_.allow(realtime_ns(), suppressed)) {
      spdlog::warn("dropped a set member of {} {}: {} distinct members held in the open seconds already ({} "
                   "dropped so far, Statsd.SetsOverLimit)", names_.service(id), names_.attr(id), kMaxSetMembers,
                   counters_.sets_over_limit);
    }
    return false;
  }
  members.insert(key);
  ++set_member_count_;
  return true;
}

void Ingest::on_line(std::string_view line, size_t readable, int64_t received_ns) {
  ParsedLine& parsed = parsed_;  // a member: constructing one per line cost a `rep stos`
  const LineError error = parser_.parse(line, readable, parsed);
  // A held "0|g" pairs only with a negative delta right after it; any other line lets it go now.
  if (held_zero_ && (error != LineError::kOk || parsed.kind != LineKind::kGaugeDelta || parsed.value >= 0)) {
    flush_held_zero();
  }
  if (error != LineError::kOk) {
    ++counters_.bad_lines[static_cast<size_t>(error)];
    uint64_t suppressed = 0;
    if (bad_line_log_.allow(realtime_ns(), suppressed)) {
      std::string printable;
      for (char c : line.substr(0, 120)) printable += (c >= 0x20 && c < 0x7F) ? c : '?';
      spdlog::warn("bad line ({}): \"{}\"{} [{} more bad lines not shown]", line_error_name(error), printable,
                   line.size() > 120 ? "..." : "", suppressed);
    }
    return;
  }
  if (parsed.kind == LineKind::kEvent || parsed.kind == LineKind::kServiceCheck) {
    ++(parsed.kind == LineKind::kEvent ? counters_.statsd_events : counters_.statsd_service_checks);
    return;
  }
  ++counters_.socket_lines;
  const int64_t time_ns = parsed.time_ns != 0 ? parsed.time_ns : received_ns;
  uint32_t id = parsed.name_id_cache != nullptr ? *parsed.name_id_cache : 0;
  if (id == 0) {
    id = names_.intern(parsed.service, parsed.attr, NameSource::kLines);
    if (parsed.name_id_cache != nullptr) *parsed.name_id_cache = id;
  }
  if (id == 0) {
    uint64_t suppressed = 0;
    if (names_full_log_.allow(realtime_ns(), suppressed)) {
      spdlog::warn("dropped a line of {} {}: the agent holds max_names ({}) names already, or max_line_names ({}) "
                   "first seen in lines ({} refused so far, counted as Names.Refused)",
                   parsed.service, parsed.attr, names_.max_names(), names_.max_line_names(), names_.refused());
    }
    return;
  }
  const uint32_t ops = Aggregator::with_rate(parsed.ops, parsed.rate_ppm);
  bool sets_negative = false;
  if (held_zero_) {
    const HeldZero& z = *held_zero_;
    // "0|g" then "-7|g": statsd's only way to set a negative gauge (what
    // python-statsd sends for gauge(-7)), so one value, -7, not 0 then -7.
    sets_negative = z.id == id && z.server_id == parsed.server_id && z.time_ns == time_ns;
    if (sets_negative) {
      held_zero_.reset();
    } else {
      flush_held_zero();
    }
  }
  if (parsed.kind == LineKind::kGauge || parsed.kind == LineKind::kGaugeDelta) {
    // Gauges remember their value, so "+3|g" lands on the last one set.
    const bool delta = parsed.kind == LineKind::kGaugeDelta && !sets_negative;
    if (parsed.kind == LineKind::kGauge && parsed.value == 0 && parsed.packed_values.empty()) {
      held_zero_ = HeldZero{id, parsed.server_id, ops, time_ns};  // until the next line says what it is
      return;
    }
    add_gauge(id, parsed.server_id, parsed.value, delta, ops, time_ns);
    for (const PackedValue& v : parsed.packed_values) {
      add_gauge(id, parsed.server_id, v.value, v.gauge_delta, ops, time_ns);
    }
    return;
  }
  if (parsed.kind == LineKind::kSetMember && !first_in_second(id, parsed, time_ns)) return;
  last_name_ = id;
  count(aggregator_.add(id, parsed.server_id, parsed.value, ops, time_ns, now_s_, parsed.cell_hint));
  for (const PackedValue& v : parsed.packed_values) {
    count(aggregator_.add(id, parsed.server_id, v.value, ops, time_ns, now_s_, parsed.cell_hint));
  }
}

void Ingest::on_datagram(std::string_view bytes, bool truncated, int64_t received_ns) {
  ++counters_.socket_datagrams;
  if (truncated) {
    // The datagram's tail is gone, so its last line is cut: keep whole lines only.
    ++counters_.truncated_datagrams;
    const size_t last_newline = bytes.rfind('\n');
    bytes = last_newline == std::string_view::npos ? std::string_view{} : bytes.substr(0, last_newline);
  }
  for_each_line(bytes, [&](std::string_view line, size_t readable) { on_line(line, readable, received_ns); });
  flush_held_zero();  // a pair is two lines of one datagram
}

}  // namespace monitor::agent
