#include "ring/name_table.hpp"

#include <unistd.h>

#include <atomic>
#include <cstring>

#include "common/hash.hpp"
#include "monitor/monitor.h"

namespace monitor::ring {

namespace {
// Linear probing longer than this means the table is effectively full; giving
// up keeps a call's worst case bounded.
constexpr uint32_t kMaxProbe = 512;

bool same_names(const NameEntry& e, uint64_t hash, std::string_view service,
                std::string_view attr) noexcept {
  return e.hash == hash && e.service_len == service.size() && e.attr_len == attr.size() &&
         std::memcmp(e.service, service.data(), service.size()) == 0 &&
         std::memcmp(e.attr, attr.data(), attr.size()) == 0;
}
}  // namespace

InternResult NameTable::intern(std::string_view service, std::string_view attr) const noexcept {
  const uint64_t hash = hash_name_pair(service, attr);
  uint32_t index = static_cast<uint32_t>(hash) & mask_;
  for (uint32_t probe = 0; probe < kMaxProbe && probe <= mask_; ++probe, index = (index + 1) & mask_) {
    NameEntry& e = entries_[index];
    uint64_t state = atomic_field(e.state).load(std::memory_order_acquire);
    if (state == kNameReady) {
      if (same_names(e, hash, service, attr)) return {index + 1, 0};
      continue;
    }
    if (state != kNameEmpty) continue;  // being inserted by someone else, or abandoned
    const uint64_t claim = kNameClaimed | (static_cast<uint64_t>(getpid()) << 8);
    if (!atomic_field(e.state).compare_exchange_strong(state, claim, std::memory_order_acq_rel)) {
      if (state == kNameReady && same_names(e, hash, service, attr)) return {index + 1, 0};
      continue;
    }
    e.hash = hash;
    e.service_len = static_cast<uint8_t>(service.size());
    e.attr_len = static_cast<uint8_t>(attr.size());
    std::memcpy(e.service, service.data(), service.size());
    std::memcpy(e.attr, attr.data(), attr.size());
    atomic_field(e.state).store(kNameReady, std::memory_order_release);
    return {index + 1, 0};
  }
  atomic_field(header_->names_full_drops).fetch_add(1, std::memory_order_relaxed);
  return {0, MONITOR_ERR_NAMES_FULL};
}

uint32_t NameTable::find(std::string_view service, std::string_view attr) const noexcept {
  const uint64_t hash = hash_name_pair(service, attr);
  uint32_t index = static_cast<uint32_t>(hash) & mask_;
  for (uint32_t probe = 0; probe < kMaxProbe && probe <= mask_; ++probe, index = (index + 1) & mask_) {
    NameEntry& e = entries_[index];
    const uint64_t state = atomic_field(e.state).load(std::memory_order_acquire);
    if (state == kNameEmpty) return 0;
    if (state == kNameReady && same_names(e, hash, service, attr)) return index + 1;
  }
  return 0;
}

bool NameTable::resolve(uint32_t id, std::string_view& service, std::string_view& attr) const noexcept {
  if (id == 0 || id - 1 > mask_) return false;
  NameEntry& e = entries_[id - 1];
  if (atomic_field(e.state).load(std::memory_order_acquire) != kNameReady) return false;
  // Read each length once: another process may rewrite it between a check and
  // a second read, and the view must stay inside the entry.
  const uint32_t service_len = std::atomic_ref<uint8_t>(e.service_len).load(std::memory_order_relaxed);
  const uint32_t attr_len = std::atomic_ref<uint8_t>(e.attr_len).load(std::memory_order_relaxed);
  if (service_len > kMaxNameBytes || attr_len > kMaxNameBytes) return false;
  service = std::string_view(e.service, service_len);
  attr = std::string_view(e.attr, attr_len);
  return true;
}

}  // namespace monitor::ring
