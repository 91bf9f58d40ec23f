#include "agent/forwarder.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "common/hash.hpp"
#include "wire/dictionary.hpp"
#include "net/endpoint.hpp"
#include "wire/frame.hpp"
#include "wire/byte_io.hpp"
#include "wire/spool_record.hpp"
#include "registry/groups.hpp"

namespace monitor::agent {
namespace {

using namespace std::chrono_literals;

}  // namespace

uint64_t default_sender_id(const std::string& ring_name) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string key = std::string(host) + "|" + ring_name;
  return hash_bytes(key.data(), key.size(), 0x5EED) >> 1;  // positive as an int64 too
}

Forwarder::Forwarder(Options options, const NameRegistry& names) : options_(std::move(options)), names_(names) {
  net::BatchSender::Options sending;
  sending.name = "forwarder";
  sending.next_hop_noun = "a proxy";
  sending.no_address = fmt::format("no proxy of {}: none live in the registry", options_.dc);
  sending.spool_dir = options_.spool_dir;
  sending.spool_max_bytes = options_.spool_max_bytes;
  sending.hello = wire::Hello{options_.sender_id, wire::Role::kAgent, options_.sender_name};
  sending.connect_timeout = 5s;
  sending.first_backoff = 500ms;
  sending.max_backoff = 2s;
  sending.seconds_in_order = true;
  sending.tls = options_.tls;
  // Straight to a judger too, as `forward` may name one.
  sending.next_hops = {wire::Role::kClyde, wire::Role::kBonnie, wire::Role::kJudger};
  net::reload_on_sighup(io_, {options_.tls});
  auto sender = net::BatchSender::open(io_, std::move(sending), [this](bool last_failed) {
    return next_address(last_failed);
  });
  if (!sender) {
    throw std::runtime_error(fmt::format("open spool {}: {}", options_.spool_dir, sender.error().message()));
  }
  sender_ = std::move(*sender);
  if (std::FILE* f = std::fopen((options_.spool_dir + "/next-sequence").c_str(), "r")) {
    if (std::fscanf(f, "%" SCNu64, &next_sequence_) != 1) next_sequence_ = 0;
    std::fclose(f);
  } else {
    next_sequence_ = 0;
  }
  saved_next_ = next_sequence_;
  if (next_sequence_ == 0) {
    // No record of the sequences this sender used (a new host, or a lost spool
    // directory): start a new epoch above any it can have used before, so no
    // batch of it is taken for a duplicate. An earlier run started from its
    // own start time the same way and would have needed over 1 024 batches per
    // millisecond since to reach this one (agents send one or two a second).
    // Dense from there on. A wall clock stepped back across the lost spool
    // could collide; that is the one case this does not cover.
    next_sequence_ = static_cast<uint64_t>(realtime_ns() / 1'000'000) << 10;
    spdlog::info("spool {}: no next-sequence file; batches start a new epoch at sequence {}", options_.spool_dir,
                 next_sequence_);
  }
  if (options_.address.empty()) {
    auto reg = registry::open_registry(options_.registry);
    if (!reg) throw std::runtime_error(fmt::format("open registry {}: {}", options_.registry, reg.error().message()));
    registry_ = std::move(*reg);
    // The agent's own live entry: `monitorctl status` lists it, and marks it
    // gone when it stops refreshing. Host name + sender id: unique per agent.
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::string name = fmt::format("{}-{:08x}", host, options_.sender_id & 0xFFFFFFFFu);
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
    }
    if (!registry::is_valid_key(name)) name = fmt::format("agent-{:016x}", options_.sender_id);
    registration_ = std::make_unique<registry::LiveRegistration>(*registry_, "agent", "agents", name,
                                                                 std::chrono::seconds(10));
    host_name_ = host;
    host_ips_ = host_addresses();
    registration_->update(registration_value());
    // Durable, unlike the live entry: a host whose agent stopped stays in the
    // groups its name puts it in, so its rules see it silent.
    std::string error;
    if (!registry::record_host(*registry_, host_name_, options_.server_id, error)) {
      spdlog::warn("could not record host {} as server {} in the registry ({}): groups naming it by host name "
                   "will not hold it until it is recorded",
                   host_name_, options_.server_id, error);
    }
  }
  if (spooled() != 0) {
    spdlog::info("spool {} holds {} batches from before: replaying them first", options_.spool_dir, spooled());
  }
  sender_->start();
  thread_ = std::thread([this] {
    auto work = boost::asio::make_work_guard(io_);
    io_.run();
  });
}

Forwarder::~Forwarder() { stop(); }

std::vector<std::string> Forwarder::host_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (const ifaddrs* a = list; a != nullptr && out.size() < 16; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || (a->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;
      ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    } else {
      continue;
    }
    out.emplace_back(text);
  }
  ::freeifaddrs(list);
  return out;
}

boost::json::object Forwarder::registration_value() const {
  boost::json::array ips;
  for (const auto& ip : host_ips_) ips.emplace_back(ip);
  return boost::json::object{{"dc", options_.dc},
                             {"host", host_name_},
                             {"server_id", options_.server_id},
                             {"ips", std::move(ips)},
                             {"batches_sent", sender_->counters().parts_sent.load()},
                             {"spooled", spooled()},
                             {"last_report_s", realtime_ns() / 1'000'000'000}};
}

void Forwarder::stop(std::chrono::milliseconds drain) {
  const auto deadline = std::chrono::steady_clock::now() + drain;
  while (!stopped_ && spooled() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  if (stopped_.exchange(true)) return;
  // Unacknowledged batches stay in the spool; the loop stops with the sender.
  boost::asio::post(io_, [this] {
    sender_->stop();
    io_.stop();
  });
  if (thread_.joinable()) thread_.join();
}

ForwardCounters Forwarder::counters() const {
  const net::SenderCounters& sent = sender_->counters();
  return ForwardCounters{batches_spooled_.load(),       sent.parts_sent.load(),       sent.parts_skipped.load(),
                         spool_failures_.load(),        sent.spool_corrupt.load() + sent.parts_too_large.load(),
                         too_large_.load(),             sent.connect_failures.load()};
}

void Forwarder::write(const AggregateRecord& r) {
  wire::BatchRecord rec;
  rec.second = r.second;
  rec.name_id = r.name_id;
  rec.server_id = r.server_id;
  rec.ops = static_cast<uint8_t>(r.op);
  rec.stats = *r.stats;
  if (r.hist != nullptr) rec.hist = *r.hist;
  records_.push_back(std::move(rec));
}

void Forwarder::end_second(int64_t second) {
  if (registration_) registration_->update(registration_value());
  if (records_.empty()) return;
  spool_second(second);
  records_.clear();
}

void Forwarder::complete_before(int64_t second) {
  boost::asio::post(io_, [this, second] { sender_->announce(second); });
}

uint64_t Forwarder::first_sequence_for(int64_t second) const {
  std::lock_guard lock(mutex_);
  return reuse_from_ != 0 && reuse_second_ == second ? reuse_from_ : next_sequence_;
}

void Forwarder::reuse_sequences_for(int64_t second, uint64_t first) {
  std::lock_guard lock(mutex_);
  reuse_second_ = second;
  reuse_from_ = first;
}

bool Forwarder::save_next_sequence(uint64_t next) {
  if (next <= saved_next_) return true;  // a reused sequence: the file already says more
  saved_next_ = next;
  const std::string path = options_.spool_dir + "/next-sequence";
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return false;
  const bool written = std::fprintf(f, "%" PRIu64 "\n", next) > 0;
  if (std::fclose(f) != 0 || !written) return false;
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

void Forwarder::spool_second(int64_t second) {
  // A batch's payload is 16 bytes of sender and sequence, a count, records.
  constexpr size_t kBudget = wire::kBatchPayloadBudget - 32;
  {
    std::lock_guard lock(mutex_);
    if (reuse_from_ != 0 && reuse_second_ == second) {
      spdlog::info("second {}: written out again from batch sequence {}, as the killed agent began it ({} was next)",
                   second, reuse_from_, next_sequence_);
      next_sequence_ = reuse_from_;
    }
    reuse_from_ = 0;  // only ever for the one second
  }
  size_t begin = 0;
  while (begin < records_.size()) {
    // Cut: records in order until the next would pass the budget, each named
    // by an id local to its batch (a spooled batch carries its own names).
    std::vector<wire::DictEntry> names;
    wire::Batch batch{options_.sender_id, 0, {}};
    size_t bytes = 0;
    size_t end = begin;
    for (; end < records_.size(); ++end) {
      wire::BatchRecord& rec = records_[end];
      if (local_ids_.size() <= rec.name_id) local_ids_.resize(rec.name_id + 1, 0);
      const uint32_t local = local_ids_[rec.name_id] != 0 ? local_ids_[rec.name_id]
                                                           : static_cast<uint32_t>(names.size() + 1);
      scratch_.clear();
      wire::ByteWriter w(scratch_);
      wire::encode_record(w, rec, local);
      if (end > begin && (bytes + scratch_.size() > kBudget || end - begin >= wire::kMaxBatchRecords)) break;
      bytes += scratch_.size();
      if (local_ids_[rec.name_id] == 0) {
        local_ids_[rec.name_id] = local;
        names.push_back(wire::DictEntry{local, std::string(names_.service(rec.name_id)),
                                        std::string(names_.attr(rec.name_id))});
      }
      batch.records.push_back(std::move(rec));  // a moved-from record keeps its name_id, used below
      batch.records.back().name_id = local;
    }
    // A moved-from record keeps its (registry) name id: reset what this batch used.
    for (size_t i = begin; i < end; ++i) local_ids_[records_[i].name_id] = 0;
    std::lock_guard lock(mutex_);
    const uint64_t sequence = next_sequence_;
    batch.sequence = sequence;
    const std::string bytes_out = wire::encode_spool_record(names, batch);
    if (bytes_out.empty()) {
      ++too_large_;
      spdlog::error("second {}: a batch of {} records does not fit a frame; dropped ({} so far)", second,
                    batch.records.size(), too_large_.load());
    } else if (!save_next_sequence(sequence + 1)) {
      // Without the sequence on disk a restart could hand it out again, and
      // the judger would drop that later batch as a duplicate.
      ++spool_failures_;
      spdlog::error("second {}: cannot write {}/next-sequence: {}; {} aggregates lost", second, options_.spool_dir,
                    std::strerror(errno), batch.records.size());
    } else if (auto appended = sender_->spool(bytes_out); !appended) {
      next_sequence_ = sequence + 1;
      ++spool_failures_;
      spdlog::error("spooling second {} (batch {}, {} aggregates): {}; they are lost ({} batches so far)", second,
                    sequence, batch.records.size(), appended.error().message(), spool_failures_.load());
    } else {
      next_sequence_ = sequence + 1;
      ++batches_spooled_;
    }
    begin = end;
  }
  std::lock_guard lock(mutex_);
  next_sequence_ = std::max(next_sequence_, saved_next_);
}

std::string Forwarder::next_address(bool last_failed) {
  if (!options_.address.empty()) return options_.address;
  const std::string failed = last_failed ? last_address_ : std::string();
  auto proxies = registry_->list("proxies");
  if (!proxies) {
    spdlog::warn("registry: listing proxies: {}", proxies.error().message());
    return {};
  }
  std::vector<std::string> candidates;
  for (const auto& entry : *proxies) {
    const auto* obj = entry.value.if_object();
    const auto* dc = obj == nullptr ? nullptr : obj->if_contains("dc");
    const auto* address = obj == nullptr ? nullptr : obj->if_contains("address");
    if (dc == nullptr || !dc->is_string() || dc->as_string() != options_.dc) continue;
    if (address == nullptr || !address->is_string()) continue;
    candidates.emplace_back(address->as_string());
  }
  // At random, so a data centre's agents spread over its proxies; not the one
  // that just failed while there is another.
  if (candidates.size() > 1) std::erase(candidates, failed);
  if (candidates.empty()) return {};
  static thread_local std::minstd_rand random(std::random_device{}());
  last_address_ = candidates[random() % candidates.size()];
  return last_address_;
}

}  // namespace monitor::agent
