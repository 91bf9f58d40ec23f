#include "proxy/link.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "net/endpoint.hpp"
#include "net/spawn.hpp"
#include "wire/spool_record.hpp"

namespace monitor::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

boost::system::result<std::unique_ptr<Link>> Link::open(asio::io_context& io, Options options,
                                                        AddressSource next_address) {
  auto spool = wire::Spool::open(options.spool_dir, {options.spool_max_bytes, 4ull << 20});
  if (!spool) return spool.error();
  return std::unique_ptr<Link>(new Link(io, std::move(options), std::move(next_address), std::move(*spool)));
}

Link::Link(asio::io_context& io, Options options, AddressSource next_address, std::unique_ptr<wire::Spool> spool)
    : io_(io), options_(std::move(options)), next_address_(std::move(next_address)), spool_(std::move(spool)),
      retry_(io) {
  if (spool_->records() != 0) {
    spdlog::info("link {}: spool holds {} parts from before; they go first", options_.name, spool_->records());
  }
}

Link::~Link() = default;

void Link::start() { net::spawn(io_, run(), "link " + options_.name); }

void Link::stop() {
  stopping_ = true;
  retry_.cancel();
  if (connection_) connection_->close();
}

uint32_t Link::name_id(std::string_view service, std::string_view attr) {
  key_.assign(service).append(1, ' ').append(attr);
  const auto [it, fresh] = ids_.try_emplace(key_, static_cast<uint32_t>(names_.size() + 1));
  if (fresh) {
    names_.emplace_back(service, attr);
    defined_.push_back(false);
  }
  return it->second;
}

void Link::submit(wire::Batch part, Done done) {
  if (connection_ && spool_->records() == 0 && unacked_bytes_ < options_.max_unacked_bytes) {
    if (send(part, &done)) return;
  }
  const bool kept = spool_part(part);
  if (done) done(kept);
  pump();
}

void Link::announce(int64_t complete_before) {
  if (!connection_ || handing_over_ || spool_front_ || spool_->records() != 0) return;
  std::string out;
  wire::encode(out, wire::Watermark{options_.hello.sender_id, complete_before});
  (void)connection_->send(std::move(out));  // a full queue drops it: the next one says as much
}

bool Link::send(wire::Batch& part, Done* done) {
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
    // Inbound batches are capped at kMaxRelayedBatchPayload so that this
    // cannot happen; should it, the part goes to the spool, whose encoding
    // fails the same way, and the part is refused upstream.
    ++counters_.parts_too_large;
    spdlog::error("link {}: batch {} of sender {} ({} records) does not fit a frame", options_.name, part.sequence,
                  part.sender_id, part.records.size());
    for (const auto& entry_name : fresh) defined_[entry_name.id - 1] = false;
    return false;
  }
  const size_t bytes = out.size();
  if (!connection_->send(std::move(out))) {
    // The connection is closing or its queue is full: the names may not have
    // gone out either, so they are sent again on the next connection.
    for (const auto& entry_name : fresh) defined_[entry_name.id - 1] = false;
    return false;
  }
  unacked_bytes_ += bytes;
  InFlight entry{part.sender_id, part.sequence, bytes, nullptr, std::nullopt};
  if (done != nullptr) {  // a live part: kept until acknowledged, to spool if the link fails
    entry.done = std::move(*done);
    entry.part = std::move(part);
  }
  in_flight_.push_back(std::move(entry));
  return true;
}

bool Link::spool_part(const wire::Batch& part) {
  // Spooled parts carry their own names (renumbered from 1), so any later
  // connection, or this proxy after a restart, can send them.
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
  auto appended = record.empty() ? boost::system::result<void>(boost::system::error_code(EMSGSIZE, boost::system::system_category()))
                                 : spool_->append(record);
  if (!appended) {
    ++counters_.spool_failures;
    spdlog::error("link {}: cannot spool batch {} of sender {} ({} records): {}; not acknowledged, so its sender "
                  "keeps it ({} such parts so far)",
                  options_.name, part.sequence, part.sender_id, part.records.size(), appended.error().message(),
                  counters_.spool_failures);
    return false;
  }
  ++counters_.parts_spooled;
  return true;
}

void Link::pump() {
  while (connection_ && !spool_front_ && spool_->records() > 0) {
    auto front = spool_->next();
    if (!front || !*front) {
      if (!front) spdlog::error("link {}: reading spool: {}", options_.name, front.error().message());
      return;
    }
    wire::Spool::Entry entry = std::move(**front);
    wire::SpoolRecord record;
    if (!wire::decode_spool_record(entry.body, record)) {
      ++counters_.spool_corrupt;
      spdlog::error("link {}: dropping a spooled part that does not parse ({} so far)", options_.name,
                    counters_.spool_corrupt);
      (void)spool_->pop(entry);
      continue;
    }
    for (auto& r : record.batch.records) {
      const auto& names = record.names[r.name_id - 1];
      r.name_id = name_id(names.service, names.attr);
    }
    if (!send(record.batch, nullptr)) {
      spool_->unsent(entry);
      return;
    }
    entry.body.clear();
    spool_front_ = std::move(entry);
  }
}

void Link::hand_over(Take take) {
  if (handing_over_) return;
  stop();
  if (connection_) lost();  // in-flight parts go to the spool first: all of them are handed over
  handing_over_ = true;
  spdlog::info("link {}: its next hop is gone for good: handing over {} spooled parts", options_.name,
               spool_->records());
  hand_over_next(std::make_shared<Take>(std::move(take)));
}

void Link::hand_over_next(std::shared_ptr<Take> take) {
  while (true) {
    auto front = spool_->next();
    if (!front || !*front) {
      if (!front) spdlog::error("link {}: reading spool to hand it over: {}", options_.name, front.error().message());
      else spdlog::info("link {}: spool handed over", options_.name);
      handing_over_ = false;
      return;
    }
    auto entry = std::make_shared<wire::Spool::Entry>(std::move(**front));
    wire::SpoolRecord record;
    if (!wire::decode_spool_record(entry->body, record)) {
      ++counters_.spool_corrupt;
      spdlog::error("link {}: dropping a spooled part that does not parse ({} so far)", options_.name,
                    counters_.spool_corrupt);
      (void)spool_->pop(*entry);
      continue;
    }
    (*take)(std::move(record), [this, take, entry](bool kept) {
      if (!kept) {
        spool_->unsent(*entry);
        handing_over_ = false;
        spdlog::warn("link {}: a spooled part could not be kept elsewhere: the hand-over stops; it stays here",
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

void Link::lost() {
  connection_.reset();
  address_.clear();
  if (spool_front_) spool_->unsent(*spool_front_);  // it stays in the spool, unless an overflow dropped it
  spool_front_.reset();
  // Live parts not acknowledged go to the spool and count as done: the next
  // hop may have stored some of them, and its ingest drops the duplicates.
  std::deque<InFlight> unacked;
  unacked.swap(in_flight_);
  unacked_bytes_ = 0;
  for (auto& entry : unacked) {
    if (!entry.done) continue;
    const bool kept = spool_part(*entry.part);
    entry.done(kept);
  }
}

asio::awaitable<std::shared_ptr<net::FrameConnection>> Link::connect(const std::string& address) {
  const auto endpoint = net::parse_endpoint(address);
  if (!endpoint) {
    spdlog::error("link {}: {} is not a numeric host:port", options_.name, address);
    co_return nullptr;
  }
  tcp::socket socket(io_);
  asio::steady_timer deadline(io_);
  deadline.expires_after(3s);
  auto outcome = co_await (socket.async_connect(*endpoint, kNoThrow) || deadline.async_wait(kNoThrow));
  if (outcome.index() == 1 || std::get<0>(std::get<0>(outcome))) co_return nullptr;
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  auto connection = std::make_shared<net::FrameConnection>(std::move(socket), net::FrameConnection::Limits{64u << 20});
  net::spawn(io_, net::FrameConnection::write_loop(connection, 10s), "link " + options_.name + " writer");
  std::string hello;
  wire::encode(hello, options_.hello);
  connection->send(std::move(hello));
  auto reply = co_await connection->read_frame(options_.heartbeat_timeout);
  wire::HelloAck ack;
  if (reply.kind != net::ReadResult::Kind::kFrame || reply.type != wire::FrameType::kHelloAck ||
      wire::decode(reply.payload, ack) != wire::WireError::kOk) {
    connection->close();
    co_return nullptr;
  }
  spdlog::debug("link {}: {} is {} {}", options_.name, address, wire::role_name(ack.role), ack.server_name);
  co_return connection;
}

asio::awaitable<void> Link::heartbeat_loop(std::shared_ptr<net::FrameConnection> connection) {
  asio::steady_timer timer(io_);
  while (connection->open() && !stopping_) {
    std::string out;
    wire::encode(out, wire::Heartbeat{options_.hello.sender_id, realtime_ns(), {}});
    connection->send(std::move(out));
    timer.expires_after(options_.heartbeat_interval);
    co_await timer.async_wait(kNoThrow);
  }
}

asio::awaitable<void> Link::read_loop(std::shared_ptr<net::FrameConnection> connection) {
  std::string reason = "peer closed";
  while (connection->open()) {
    auto read = co_await connection->read_frame(options_.heartbeat_timeout);
    if (!read.frame()) {
      if (read.kind == net::ReadResult::Kind::kTimeout) ++counters_.heartbeat_timeouts;
      if (read.kind == net::ReadResult::Kind::kBadFrame) ++counters_.bad_frames;
      reason = read.failure("no heartbeat reply in time");
      break;
    }
    if (read.type == wire::FrameType::kAck) {
      wire::Ack ack;
      if (wire::decode(read.payload, ack) != wire::WireError::kOk || in_flight_.empty() ||
          in_flight_.front().sender_id != ack.sender_id || in_flight_.front().sequence != ack.sequence) {
        ++counters_.bad_frames;
        reason = "an ACK for a batch not sent next";
        break;
      }
      InFlight entry = std::move(in_flight_.front());
      in_flight_.pop_front();
      unacked_bytes_ -= std::min(unacked_bytes_, entry.bytes);
      ++counters_.parts_sent;
      if (entry.done) {
        counters_.records_sent += entry.part->records.size();
        entry.done(true);
      } else if (spool_front_) {
        if (auto popped = spool_->pop(*spool_front_); !popped) {
          spdlog::error("link {}: recording a delivered part in the spool: {}; it will be sent again",
                        options_.name, popped.error().message());
        }
        spool_front_.reset();
      }
      pump();
    } else if (read.type == wire::FrameType::kHeartbeat) {
      wire::Heartbeat heartbeat;
      if (wire::decode(read.payload, heartbeat) != wire::WireError::kOk) {
        ++counters_.bad_frames;
        reason = "bad_payload";
        break;
      }
      if (on_members_ && !heartbeat.members.empty()) on_members_(heartbeat.members);
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
  if (!stopping_) spdlog::warn("link {}: lost {} ({})", options_.name, address_, reason);
}

asio::awaitable<void> Link::run() {
  bool last_failed = false;
  bool quiet = false;  // a next hop that stays down is logged once, not every second
  while (!stopping_) {
    const std::string address = next_address_(last_failed);
    last_failed = false;
    std::shared_ptr<net::FrameConnection> connection;
    if (!address.empty()) connection = co_await connect(address);
    if (stopping_) break;
    if (!connection) {
      if (!address.empty()) {
        ++counters_.connect_failures;
        last_failed = true;
      }
      if (!quiet) {
        spdlog::warn("link {}: {}; spooling until it answers", options_.name,
                     address.empty() ? "no address known" : fmt::format("{} does not answer", address));
      }
      quiet = true;
      retry_.expires_after(500ms);
      co_await retry_.async_wait(kNoThrow);
      continue;
    }
    quiet = false;
    ++counters_.connects;
    connection_ = connection;
    address_ = address;
    std::fill(defined_.begin(), defined_.end(), false);
    spdlog::info("link {}: connected to {}, {} spooled parts to send first", options_.name, address,
                 spool_->records());
    net::spawn(io_, heartbeat_loop(connection), "link " + options_.name + " heartbeats");
    pump();
    co_await read_loop(connection);
    lost();
    last_failed = true;
  }
}

}  // namespace monitor::proxy
