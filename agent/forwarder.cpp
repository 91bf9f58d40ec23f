#include "agent/forwarder.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/hash.hpp"
#include "wire/dictionary.hpp"
#include "net/endpoint.hpp"
#include "wire/frame.hpp"
#include "wire/spool_record.hpp"

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
  if (options_.address.empty()) {
    auto reg = registry::open_registry(options_.registry);
    if (!reg) throw std::runtime_error(fmt::format("open registry {}: {}", options_.registry, reg.error().message()));
    registry_ = std::move(*reg);
  }
  if (spool_->records() != 0) {
    spdlog::info("spool {} holds {} batches from before: replaying them first", options_.spool_dir, spool_->records());
  }
  thread_ = std::thread([this] { sender_loop(); });
}

Forwarder::~Forwarder() { stop(); }

void Forwarder::stop(std::chrono::milliseconds drain) {
  const auto deadline = std::chrono::steady_clock::now() + drain;
  while (!stop_ && spooled() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  if (stop_.exchange(true)) return;
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Forwarder::write(const AggregateRecord& r) {
  if (local_ids_.size() <= r.name_id) local_ids_.resize(r.name_id + 1, 0);
  uint32_t& local = local_ids_[r.name_id];
  if (local == 0) {
    record_names_.push_back(wire::DictEntry{static_cast<uint32_t>(record_names_.size() + 1),
                                            std::string(names_.service(r.name_id)), std::string(names_.attr(r.name_id))});
    local = static_cast<uint32_t>(record_names_.size());
  }
  wire::BatchRecord rec;
  rec.second = r.second;
  rec.name_id = local;
  rec.server_id = r.server_id;
  rec.ops = static_cast<uint8_t>(r.op);
  rec.stats = *r.stats;
  if (r.hist != nullptr) rec.hist = *r.hist;
  records_.push_back(std::move(rec));
}

void Forwarder::end_second(int64_t second) {
  if (records_.empty()) return;
  {
    std::lock_guard lock(mutex_);
    // Sequences keep rising across restarts even with an empty spool: they
    // start from the second, shifted to leave room for several per second.
    const uint64_t sequence = std::max(next_sequence_, static_cast<uint64_t>(second) << 10);
    next_sequence_ = sequence + 1;
    const std::string bytes =
        wire::encode_spool_record(record_names_, wire::Batch{options_.sender_id, sequence, std::move(records_)});
    if (auto appended = spool_->append(bytes); !appended) {
      ++counters_.spool_failures;
      spdlog::error("spooling second {}: {}; its aggregates are lost", second, appended.error().message());
    } else {
      ++counters_.batches_spooled;
    }
  }
  wake_.notify_all();
  records_.clear();
  record_names_.clear();
  std::fill(local_ids_.begin(), local_ids_.end(), 0);
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
  while (!stop_) {
    std::optional<wire::Spool::Entry> entry;
    {
      std::unique_lock lock(mutex_);
      auto front = spool_->front();
      if (!front) {
        spdlog::error("reading spool: {}", front.error().message());
        return false;
      }
      if (!*front) {
        wake_.wait_for(lock, 200ms);
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
    for (auto& rec : batch.records) {
      const auto& names = spooled_batch.names[rec.name_id - 1];
      rec.name_id = dictionary.id_for(names.service, names.attr);
    }
    std::string out;
    dictionary.flush(out);
    wire::encode(out, batch);
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
