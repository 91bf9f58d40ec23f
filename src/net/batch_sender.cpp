#include "net/batch_sender.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "net/endpoint.hpp"
#include "net/spawn.hpp"

namespace monitor::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

boost::system::result<std::unique_ptr<BatchSender>> BatchSender::open(asio::io_context& io, Options options,
                                                                      AddressSource next_address) {
  auto spool = wire::Spool::open(options.spool_dir, {options.spool_max_bytes, 4ull << 20});
  if (!spool) return spool.error();
  return std::unique_ptr<BatchSender>(
      new BatchSender(io, std::move(options), std::move(next_address), std::move(*spool)));
}

BatchSender::BatchSender(asio::io_context& io, Options options, AddressSource next_address,
                         std::unique_ptr<wire::Spool> spool)
    : io_(io), options_(std::move(options)), next_address_(std::move(next_address)), spool_(std::move(spool)),
      retry_(io) {
  if (spool_->records() != 0) {
    spdlog::info("{}: spool holds {} parts from before; they go first", options_.name, spool_->records());
  }
}

BatchSender::~BatchSender() = default;

void BatchSender::start() { net::spawn(io_, run(), options_.name); }

void BatchSender::stop() {
  stopping_ = true;
  retry_.cancel();
  if (connection_) connection_->close();
}

uint64_t BatchSender::spooled() const {
  std::lock_guard lock(spool_mutex_);
  return spool_->records();
}

uint64_t BatchSender::spool_dropped() const {
  std::lock_guard lock(spool_mutex_);
  return spool_->dropped_records();
}

uint32_t BatchSender::name_id(std::string_view service, std::string_view attr) {
  key_.assign(service).append(1, ' ').append(attr);
  const auto [it, fresh] = ids_.try_emplace(key_, static_cast<uint32_t>(names_.size() + 1));
  if (fresh) {
    names_.emplace_back(service, attr);
    defined_.push_back(false);
  }
  return it->second;
}

void BatchSender::submit(wire::Batch part, Done done) {
  if (connection_ && !handing_over_ && spooled() == 0 && unacked_bytes_ < options_.max_unacked_bytes) {
    if (send(part, &done, std::nullopt)) return;
  }
  const bool kept = spool_part(part);
  if (done) done(kept);
  pump();
}

boost::system::result<void> BatchSender::spool(std::string_view record) {
  {
    std::lock_guard lock(spool_mutex_);
    if (auto appended = spool_->append(record); !appended) return appended;
    spool_sent_ = false;
  }
  asio::post(io_, [this] { pump(); });
  return {};
}

void BatchSender::announce(int64_t complete_before) {
  complete_before_ = std::max(complete_before_, complete_before);
  bool all_on_the_wire = false;
  {
    std::lock_guard lock(spool_mutex_);
    all_on_the_wire = spool_sent_;
  }
  // Otherwise pump() tells it once the spool ahead of it is on the wire.
  if (connection_ && !handing_over_ && all_on_the_wire) send_watermark(complete_before_);
}

void BatchSender::send_watermark(int64_t complete_before) {
  if (complete_before <= announced_ || !connection_) return;
  std::string out;
  wire::encode(out, wire::Watermark{options_.hello.sender_id, complete_before});
  if (connection_->send(std::move(out))) announced_ = complete_before;
}

bool BatchSender::send(wire::Batch& part, Done* done, std::optional<wire::Spool::Entry> entry) {
  std::string out;
  std::vector<wire::DictEntry> fresh;
  for (const auto& record : part.records) {
    if (!defined_[record.name_id - 1]) {
      defined_[record.name_id - 1] = true;
      const auto& [service, attr] = names_[record.name_id - 1];
      fresh.push_back(wire::DictEntry{record.name_id, service, attr});
    }
  }
  if (!fresh.empty()) wire::encode(out, fresh);
  if (wire::encode(out, part) != wire::WireError::kOk) {
    // Inbound batches are capped at kMaxRelayedBatchPayload and the agent
    // cuts at kBatchPayloadBudget so that this cannot happen; should it, a
    // live part goes to the spool, whose encoding fails the same way, and is
    // refused upstream; a spooled one could never be sent and is dropped.
    ++counters_.parts_too_large;
    spdlog::error("{}: batch {} of sender {} ({} records) does not fit a frame{}", options_.name, part.sequence,
                  part.sender_id, part.records.size(), entry ? "; dropped" : "");
    for (const auto& entry_name : fresh) defined_[entry_name.id - 1] = false;
    if (entry) in_flight_.push_back(InFlight{part.sender_id, part.sequence, 0, nullptr, std::nullopt, std::move(entry), false});
    return false;
  }
  const size_t bytes = out.size();
  const bool queued = connection_->send(std::move(out));
  if (!queued) {
    // The connection is closing or its queue is full: the names may not have
    // gone out either, so they are sent again on the next connection.
    for (const auto& entry_name : fresh) defined_[entry_name.id - 1] = false;
    if (!entry) return false;
    // Out of the spool already: in flight, so lost() hands it back with the rest.
    connection_->close();
  }
  unacked_bytes_ += bytes;
  InFlight in_flight{part.sender_id, part.sequence, bytes, nullptr, std::nullopt, std::move(entry), true};
  if (done != nullptr) {  // a live part: kept until acknowledged, to spool if the connection fails
    in_flight.done = std::move(*done);
    in_flight.part = std::move(part);
  }
  in_flight_.push_back(std::move(in_flight));
  return queued;
}

bool BatchSender::spool_part(const wire::Batch& part) {
  // Spooled parts carry their own names (renumbered from 1), so any later
  // connection, or this process after a restart, can send them.
  std::vector<wire::DictEntry> names;
  std::unordered_map<uint32_t, uint32_t> local;
  wire::Batch copy{part.sender_id, part.sequence, part.records};
  for (auto& record : copy.records) {
    const auto [it, fresh] = local.try_emplace(record.name_id, static_cast<uint32_t>(names.size() + 1));
    if (fresh) {
      const auto& [service, attr] = names_[record.name_id - 1];
      names.push_back(wire::DictEntry{it->second, service, attr});
    }
    record.name_id = it->second;
  }
  const std::string record = wire::encode_spool_record(names, copy);
  boost::system::result<void> appended =
      boost::system::error_code(EMSGSIZE, boost::system::system_category());
  if (!record.empty()) {
    std::lock_guard lock(spool_mutex_);
    appended = spool_->append(record);
    if (appended) spool_sent_ = false;
  }
  if (!appended) {
    ++counters_.spool_failures;
    spdlog::error("{}: cannot spool batch {} of sender {} ({} records): {}; not acknowledged, so its sender "
                  "keeps it ({} such parts so far)",
                  options_.name, part.sequence, part.sender_id, part.records.size(), appended.error().message(),
                  counters_.spool_failures.load());
    return false;
  }
  ++counters_.parts_spooled;
  return true;
}

void BatchSender::pump() {
  std::unique_lock lock(spool_mutex_);
  while (connection_ && !handing_over_ && unacked_bytes_ < options_.max_unacked_bytes) {
    auto next = spool_->next();
    if (!next) {
      spdlog::error("{}: reading spool: {}", options_.name, next.error().message());
      return;
    }
    if (!*next) {
      spool_sent_ = true;
      break;
    }
    wire::Spool::Entry entry = std::move(**next);
    wire::SpoolRecord record;
    const bool parsed = wire::decode_spool_record(entry.body, record);
    entry.body.clear();
    wire::Batch& part = record.batch;
    // Settled without sending: popped once every part ahead of it is acknowledged.
    if (!parsed || (part.sender_id == options_.hello.sender_id && part.sequence <= skip_through_)) {
      if (!parsed) {
        ++counters_.spool_corrupt;
        spdlog::error("{}: dropping a spooled part that does not parse ({} so far)", options_.name,
                      counters_.spool_corrupt.load());
      } else {
        ++counters_.parts_skipped;
      }
      in_flight_.push_back(InFlight{part.sender_id, part.sequence, 0, nullptr, std::nullopt, std::move(entry), false});
      continue;
    }
    // Once per name of the part, not per record: a record's names are its part's.
    link_ids_.clear();
    for (const auto& names : record.names) link_ids_.push_back(name_id(names.service, names.attr));
    for (auto& r : part.records) r.name_id = link_ids_[r.name_id - 1];
    if (options_.seconds_in_order) {
      // Seconds are spooled in order: every one before this part's oldest
      // went in parts acknowledged already or ahead of it on this connection.
      int64_t oldest = complete_before_;
      for (const auto& r : part.records) oldest = std::min(oldest, r.second);
      send_watermark(oldest);
    }
    if (!send(part, nullptr, std::move(entry))) break;
  }
  lock.unlock();
  // Parts at the front that were never sent leave the spool now.
  while (!in_flight_.empty() && !in_flight_.front().sent) {
    {
      std::lock_guard guard(spool_mutex_);
      (void)spool_->pop(*in_flight_.front().entry);
    }
    in_flight_.pop_front();
  }
  lock.lock();
  const bool all_on_the_wire = spool_sent_;
  lock.unlock();
  if (all_on_the_wire) send_watermark(complete_before_);
}

bool BatchSender::acknowledged(const wire::Ack& ack) {
  if (in_flight_.empty() || !in_flight_.front().sent || in_flight_.front().sender_id != ack.sender_id ||
      in_flight_.front().sequence != ack.sequence) {
    return false;
  }
  InFlight entry = std::move(in_flight_.front());
  in_flight_.pop_front();
  unacked_bytes_ -= std::min(unacked_bytes_, entry.bytes);
  ++counters_.parts_sent;
  if (entry.done) {
    counters_.records_sent += entry.part->records.size();
    entry.done(true);
  } else if (entry.entry) {
    std::lock_guard lock(spool_mutex_);
    if (auto popped = spool_->pop(*entry.entry); !popped) {
      spdlog::error("{}: recording a delivered part in the spool: {}; it will be sent again", options_.name,
                    popped.error().message());
    }
  }
  pump();
  return true;
}

void BatchSender::hand_over(Take take) {
  if (handing_over_) return;
  stop();
  if (connection_) lost();  // in-flight parts go to the spool first: all of them are handed over
  handing_over_ = true;
  spdlog::info("{}: its next hop is gone for good: handing over {} spooled parts", options_.name, spooled());
  hand_over_next(std::make_shared<Take>(std::move(take)));
}

void BatchSender::hand_over_next(std::shared_ptr<Take> take) {
  while (true) {
    std::unique_lock lock(spool_mutex_);
    auto front = spool_->next();
    if (!front || !*front) {
      if (!front) spdlog::error("{}: reading spool to hand it over: {}", options_.name, front.error().message());
      else spdlog::info("{}: spool handed over", options_.name);
      handing_over_ = false;
      return;
    }
    auto entry = std::make_shared<wire::Spool::Entry>(std::move(**front));
    wire::SpoolRecord record;
    if (!wire::decode_spool_record(entry->body, record)) {
      ++counters_.spool_corrupt;
      spdlog::error("{}: dropping a spooled part that does not parse ({} so far)", options_.name,
                    counters_.spool_corrupt.load());
      (void)spool_->pop(*entry);
      continue;
    }
    lock.unlock();
    (*take)(std::move(record), [this, take, entry](bool kept) {
      std::lock_guard guard(spool_mutex_);
      if (!kept) {
        spool_->unsent(*entry);
        handing_over_ = false;
        spdlog::warn("{}: a spooled part could not be kept elsewhere: the hand-over stops; it stays here",
                     options_.name);
        return;
      }
      (void)spool_->pop(*entry);
      // Not from inside the taker's callback: the next part starts afresh on the loop.
      asio::post(io_, [this, take] { hand_over_next(take); });
    });
    return;
  }
}

void BatchSender::lost() {
  connection_.reset();
  address_.clear();
  std::deque<InFlight> unacked;
  unacked.swap(in_flight_);
  unacked_bytes_ = 0;
  {
    // Spooled parts out stay in the spool, unless an overflow dropped them.
    std::lock_guard lock(spool_mutex_);
    const auto first = std::find_if(unacked.begin(), unacked.end(), [](const InFlight& f) { return f.entry; });
    if (first != unacked.end()) spool_->unsent(*first->entry);
    spool_sent_ = false;
  }
  // Live parts not acknowledged go to the spool and count as done: the next
  // hop may have stored some of them, and its ingest drops the duplicates.
  for (auto& entry : unacked) {
    if (!entry.done) continue;
    const bool kept = spool_part(*entry.part);
    entry.done(kept);
  }
}

asio::awaitable<std::shared_ptr<FrameConnection>> BatchSender::connect(const std::string& address) {
  const auto endpoint = net::parse_endpoint(address);
  if (!endpoint) {
    spdlog::error("{}: {} is not a numeric host:port", options_.name, address);
    co_return nullptr;
  }
  tcp::socket socket(io_);
  asio::steady_timer deadline(io_);
  deadline.expires_after(options_.connect_timeout);
  auto outcome = co_await (socket.async_connect(*endpoint, kNoThrow) || deadline.async_wait(kNoThrow));
  if (outcome.index() == 1 || std::get<0>(std::get<0>(outcome))) co_return nullptr;
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  auto connection = std::make_shared<FrameConnection>(std::move(socket), FrameConnection::Limits{64u << 20});
  if (options_.tls) {
    std::string refusal = co_await connection->start_tls(options_.tls->current(), false, options_.connect_timeout);
    if (refusal.empty()) {
      const PeerIdentity& peer = *connection->peer_identity();
      const auto& allowed = options_.next_hops;
      if (std::find(allowed.begin(), allowed.end(), peer.role) == allowed.end()) {
        refusal = fmt::format("its certificate is of {}, not of a part this sends to", peer.text());
      }
    }
    if (!refusal.empty()) {
      ++counters_.tls_refused;
      uint64_t suppressed = 0;
      if (refusal_log_.allow(realtime_ns(), suppressed)) {
        spdlog::warn("{}: refused {}: {} ({} refusals so far)", options_.name, address, refusal,
                     counters_.tls_refused.load());
      }
      connection->close();
      co_return nullptr;
    }
  }
  net::spawn(io_, FrameConnection::write_loop(connection, 10s), options_.name + " writer");
  std::string hello;
  wire::encode(hello, options_.hello);
  connection->send(std::move(hello));
  auto reply = co_await connection->read_frame(options_.heartbeat_timeout);
  wire::HelloAck ack;
  if (reply.kind != ReadResult::Kind::kFrame || reply.type != wire::FrameType::kHelloAck ||
      wire::decode(reply.payload, ack) != wire::WireError::kOk) {
    connection->close();
    co_return nullptr;
  }
  skip_through_ = ack.last_sequence;
  spdlog::debug("{}: {} is {} {}, has our batches up to {}", options_.name, address, wire::role_name(ack.role),
                ack.server_name, ack.last_sequence);
  co_return connection;
}

asio::awaitable<void> BatchSender::heartbeat_loop(std::shared_ptr<FrameConnection> connection) {
  asio::steady_timer timer(io_);
  while (connection->open() && !stopping_) {
    std::string out;
    wire::encode(out, wire::Heartbeat{options_.hello.sender_id, realtime_ns(), {}});
    connection->send(std::move(out));
    timer.expires_after(options_.heartbeat_interval);
    co_await timer.async_wait(kNoThrow);
  }
}

asio::awaitable<void> BatchSender::read_loop(std::shared_ptr<FrameConnection> connection) {
  std::string reason = "peer closed";
  while (connection->open()) {
    auto read = co_await connection->read_frame(options_.heartbeat_timeout);
    if (!read.frame()) {
      if (read.kind == ReadResult::Kind::kTimeout) ++counters_.heartbeat_timeouts;
      if (read.kind == ReadResult::Kind::kBadFrame) ++counters_.bad_frames;
      reason = read.failure("no heartbeat reply in time");
      break;
    }
    if (read.type == wire::FrameType::kAck) {
      wire::Ack ack;
      if (wire::decode(read.payload, ack) != wire::WireError::kOk || !acknowledged(ack)) {
        ++counters_.bad_frames;
        reason = "an ACK for a batch not sent next";
        break;
      }
    } else if (read.type == wire::FrameType::kHeartbeat) {
      wire::Heartbeat heartbeat;
      if (wire::decode(read.payload, heartbeat) != wire::WireError::kOk) {
        ++counters_.bad_frames;
        reason = "bad_payload";
        break;
      }
      if (heartbeat.members.empty() || !on_members_) continue;
      // A member list rewires where this sender goes next: only a Bonnie's counts.
      if (const auto& peer = connection->peer_identity(); peer && peer->role != wire::Role::kBonnie) {
        ++counters_.members_refused;
        uint64_t suppressed = 0;
        if (refusal_log_.allow(realtime_ns(), suppressed)) {
          spdlog::warn("{}: ignored a member list from {} ({}): only a Bonnie's counts", options_.name, address_,
                       peer->text());
        }
        continue;
      }
      on_members_(heartbeat.members);
    } else if (read.type == wire::FrameType::kClose) {
      wire::Close close;
      (void)wire::decode(read.payload, close);
      reason = "peer said: " + close.reason;
      break;
    } else {
      ++counters_.bad_frames;
      reason = "unexpected frame type";
      break;
    }
  }
  connection->close();
  if (!stopping_) spdlog::warn("{}: lost {} ({})", options_.name, address_, reason);
}

asio::awaitable<void> BatchSender::run() {
  bool last_failed = false;
  bool quiet = false;  // a next hop that stays down is logged once, not every attempt
  auto backoff = options_.first_backoff;
  while (!stopping_) {
    const std::string address = next_address_(last_failed);
    last_failed = false;
    std::shared_ptr<FrameConnection> connection;
    if (!address.empty()) connection = co_await connect(address);
    if (stopping_) break;
    if (!connection) {
      if (!address.empty()) {
        ++counters_.connect_failures;
        last_failed = true;
      }
      if (!quiet) {
        spdlog::warn("{}: {}; spooling until {} answers", options_.name,
                     address.empty() ? options_.no_address : fmt::format("{} does not answer", address),
                     options_.next_hop_noun);
      }
      quiet = true;
      retry_.expires_after(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
      co_await retry_.async_wait(kNoThrow);
      continue;
    }
    quiet = false;
    backoff = options_.first_backoff;
    ++counters_.connects;
    connection_ = connection;
    address_ = address;
    announced_ = 0;
    std::fill(defined_.begin(), defined_.end(), false);
    spdlog::info("{}: connected to {}, forwarding to {} ({} spooled parts first)", options_.name, address, address,
                 spooled());
    net::spawn(io_, heartbeat_loop(connection), options_.name + " heartbeats");
    pump();
    co_await read_loop(connection);
    lost();
    last_failed = true;
  }
}

}  // namespace monitor::net
