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
#include "common/registry/groups.hpp"

namespace monitor::agent {
namespace {

using namespace std::chrono_literals;

// Connects to host:port (numeric IPv4 or IPv6) with send/receive timeouts; -1 on failure.
int connect_to(const std::string& address, std::chrono::seconds timeout) {
  const auto endpoint = net::parse_endpoint(address);
  if (!endpoint) return -1;
  const int fd = ::socket(endpoint->protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, endpoint->data(), static_cast<socklen_t>(endpoint->size())) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// The next frame from a blocking socket whose reads time out; false on
// timeout, a closed peer or a bad frame.
bool read_frame(int fd, wire::FrameDecoder& decoder, wire::FrameType& type, std::string& payload) {
  char buffer[4096];
  while (true) {
    wire::Frame frame{};
    const auto status = decoder.next(frame);
    if (status == wire::FrameDecoder::Status::kFrame) {
      type = frame.type;
      payload.assign(frame.payload);
      return true;
    }
    if (status == wire::FrameDecoder::Status::kError) return false;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    decoder.feed(std::string_view(buffer, static_cast<size_t>(n)));
  }
}

}  // namespace

uint64_t default_sender_id(const std::string& ring_name) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string key = std::string(host) + "|" + ring_name;
  return hash_bytes(key.data(), key.size(), 0x5EED) >> 1;  // positive as an int64 too
}

Forwarder::Forwarder(Options options, const NameRegistry& names) : options_(std::move(options)), names_(names) {
  auto spool = wire::Spool::open(options_.spool_dir, {options_.spool_max_bytes, 4ull << 20});
  if (!spool) {
    throw std::runtime_error(fmt::format("open spool {}: {}", options_.spool_dir, spool.error().message()));
  }
  spool_ = std::move(*spool);
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
  if (spool_->records() != 0) {
    spdlog::info("spool {} holds {} batches from before: replaying them first", options_.spool_dir, spool_->records());
  }
  thread_ = std::thread([this] { sender_loop(); });
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
                             {"batches_sent", counters_.batches_sent.load()},
                             {"spooled", spooled()},
                             {"last_report_s", realtime_ns() / 1'000'000'000}};
}

void Forwarder::stop(std::chrono::milliseconds drain) {
  const auto deadline = std::chrono::steady_clock::now() + drain;
  while (!stop_ && spooled() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  if (stop_.exchange(true)) return;
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
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
  wake_.notify_all();
  records_.clear();
}

void Forwarder::complete_before(int64_t second) {
  {
    std::lock_guard lock(mutex_);
    if (second <= complete_before_) return;
    complete_before_ = second;
  }
  wake_.notify_all();
}

bool Forwarder::announce(int fd, int64_t complete_before, int64_t& announced) {
  if (complete_before <= announced) return true;
  std::string out;
  wire::encode(out, wire::Watermark{options_.sender_id, complete_before});
  if (!send_all(fd, out)) return false;
  announced = complete_before;
  return true;
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
      ++counters_.too_large;
      spdlog::error("second {}: a batch of {} records does not fit a frame; dropped ({} so far)", second,
                    batch.records.size(), counters_.too_large.load());
    } else if (!save_next_sequence(sequence + 1)) {
      // Without the sequence on disk a restart could hand it out again, and
      // the judger would drop that later batch as a duplicate.
      ++counters_.spool_failures;
      spdlog::error("second {}: cannot write {}/next-sequence: {}; {} aggregates lost", second, options_.spool_dir,
                    std::strerror(errno), batch.records.size());
    } else if (auto appended = spool_->append(bytes_out); !appended) {
      next_sequence_ = sequence + 1;
      ++counters_.spool_failures;
      spdlog::error("spooling second {} (batch {}, {} aggregates): {}; they are lost ({} batches so far)", second,
                    sequence, batch.records.size(), appended.error().message(), counters_.spool_failures.load());
    } else {
      next_sequence_ = sequence + 1;
      ++counters_.batches_spooled;
    }
    begin = end;
  }
  std::lock_guard lock(mutex_);
  next_sequence_ = std::max(next_sequence_, saved_next_);
}

uint64_t Forwarder::spooled() const {
  std::lock_guard lock(mutex_);
  return spool_->records();
}

uint64_t Forwarder::spool_dropped() const {
  std::lock_guard lock(mutex_);
  return spool_->dropped_records();
}

bool Forwarder::send_pending(int fd, uint64_t& acked) {
  wire::SendDictionary dictionary;  // names travel once per connection
  wire::FrameDecoder decoder;
  int64_t announced = 0;  // the watermark this connection was last told
  while (!stop_) {
    std::optional<wire::Spool::Entry> entry;
    int64_t complete_before = 0;
    {
      std::unique_lock lock(mutex_);
      auto front = spool_->next();
      if (!front) {
        spdlog::error("reading spool: {}", front.error().message());
        return false;
      }
      complete_before = complete_before_;
      if (!*front) {
        // Everything written out is acknowledged: the receiver has every
        // second before the agent's watermark.
        lock.unlock();
        if (!announce(fd, complete_before, announced)) return false;
        lock.lock();
        if (complete_before_ == complete_before && spool_->records() == 0) wake_.wait_for(lock, 200ms);
        continue;
      }
      entry = std::move(**front);
    }
    // Whatever happens below, the entry is popped or handed back: never left
    // out, so an overflow meanwhile is counted exactly once.
    auto hand_back = [&] {
      std::lock_guard lock(mutex_);
      spool_->unsent(*entry);
    };
    wire::SpoolRecord spooled_batch;
    const bool parsed = wire::decode_spool_record(entry->body, spooled_batch);
    wire::Batch& batch = spooled_batch.batch;
    if (!parsed || batch.sequence <= acked) {
      std::lock_guard lock(mutex_);
      (void)spool_->pop(*entry);
      if (!parsed) {
        ++counters_.spool_corrupt;
        spdlog::error("dropping a spool record that does not parse ({} so far)", counters_.spool_corrupt.load());
      } else {
        ++counters_.batches_skipped;
      }
      continue;
    }
    // Seconds are written out in order, so every one before this batch's
    // oldest went in batches acknowledged already (a replay after an outage
    // tells the receiver how far it has caught up).
    for (const auto& rec : batch.records) complete_before = std::min(complete_before, rec.second);
    if (!announce(fd, complete_before, announced)) {
      hand_back();
      return false;
    }
    for (auto& rec : batch.records) {
      const auto& names = spooled_batch.names[rec.name_id - 1];
      rec.name_id = dictionary.id_for(names.service, names.attr);
    }
    std::string out;
    dictionary.flush(out);
    if (wire::encode(out, batch) != wire::WireError::kOk) {
      // Cut under the budget when spooled; renumbering cannot grow it past a
      // frame. Should it ever, sending it again would fail again.
      std::lock_guard lock(mutex_);
      (void)spool_->pop(*entry);
      ++counters_.too_large;
      spdlog::error("batch {} does not fit a frame; dropped ({} so far)", batch.sequence, counters_.too_large.load());
      continue;
    }
    if (!send_all(fd, out)) {
      hand_back();
      return false;
    }
    wire::FrameType type{};
    std::string payload;
    wire::Ack ack;
    if (!read_frame(fd, decoder, type, payload) || type != wire::FrameType::kAck ||
        wire::decode(payload, ack) != wire::WireError::kOk || ack.sequence != batch.sequence) {
      hand_back();
      return false;
    }
    acked = ack.sequence;
    std::lock_guard lock(mutex_);
    (void)spool_->pop(*entry);
    ++counters_.batches_sent;
  }
  return true;
}

std::string Forwarder::next_address(const std::string& failed) {
  if (!options_.address.empty()) return options_.address;
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
  return candidates[random() % candidates.size()];
}

void Forwarder::sender_loop() {
  bool warned = false;  // a next hop that stays away is logged once, not every second
  std::string address, failed, last_connected;
  while (!stop_) {
    address = next_address(failed);
    const int fd = address.empty() ? -1 : connect_to(address, 5s);
    bool ok = fd >= 0;
    uint64_t acked = 0;
    if (ok) {
      std::string hello;
      wire::encode(hello, wire::Hello{options_.sender_id, wire::Role::kAgent, options_.sender_name});
      wire::FrameDecoder decoder;
      wire::FrameType type{};
      std::string payload;
      wire::HelloAck ack;
      ok = send_all(fd, hello) && read_frame(fd, decoder, type, payload) && type == wire::FrameType::kHelloAck &&
           wire::decode(payload, ack) == wire::WireError::kOk;
      if (ok) {
        acked = ack.last_sequence;
        if (warned || address != last_connected) {
          spdlog::info("forwarding to {} ({} batches waiting)", address, spooled());
        }
        last_connected = address;
        warned = false;
        ok = send_pending(fd, acked);
      }
    }
    if (fd >= 0) ::close(fd);
    if (stop_) break;
    failed = ok ? std::string() : address;
    if (!ok) {
      ++counters_.connect_failures;
      if (!warned) {
        spdlog::warn("forwarding to {} failed; spooling until a proxy answers",
                     address.empty() ? "a proxy of " + options_.dc + " (none live in the registry)" : address);
      }
      warned = true;
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, 1s, [this] { return stop_.load(); });
    }
  }
}

}  // namespace monitor::agent
