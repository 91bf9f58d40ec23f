// A proxy's connection to one next hop (a Bonnie for a Clyde, a judger for a
// Bonnie), at least once: a part handed to submit() is either acknowledged by
// the next hop or written to this link's on-disk spool before its `done` runs,
// and the proxy acknowledges a batch upstream only when every part of it is
// done. So a proxy that dies holds nothing its senders dropped, and a next hop
// that is down costs disk, not data.
//
// Modes: live (connected, spool empty): parts are sent at once, many in
// flight. Spooling (not connected, the spool not empty, or too much in
// flight): parts are appended to the spool, whose oldest record is sent one at
// a time and popped when acknowledged, so order is kept; the link is live
// again once the spool is empty. A next hop that does not answer a heartbeat
// within the timeout is dropped and the next address is tried.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include "net/frame_connection.hpp"
#include "wire/messages.hpp"
#include "wire/spool.hpp"
#include "wire/spool_record.hpp"

namespace monitor::proxy {

struct LinkCounters {
  uint64_t parts_sent = 0;       // acknowledged by the next hop
  uint64_t parts_spooled = 0;
  uint64_t records_sent = 0;
  uint64_t spool_failures = 0;   // a part that could not be spooled either: not acknowledged upstream
  uint64_t spool_corrupt = 0;    // spooled parts that did not parse, dropped
  uint64_t parts_too_large = 0;  // parts whose frame would pass kMaxPayload (refused upstream)
  uint64_t connects = 0;
  uint64_t connect_failures = 0;
  uint64_t heartbeat_timeouts = 0;
  uint64_t bad_frames = 0;
};

class Link {
 public:
  struct Options {
    std::string name;  // for logs
    std::filesystem::path spool_dir;
    uint64_t spool_max_bytes = 256ull << 20;
    wire::Hello hello;  // who this proxy is
    std::chrono::milliseconds heartbeat_interval{1000};
    std::chrono::milliseconds heartbeat_timeout{5000};
    size_t max_unacked_bytes = 8u << 20;  // beyond this, parts go to the spool
  };
  /// The address to connect to next ("" while there is none). `last_failed`
  /// says the previous one failed or died, so a list can move on.
  using AddressSource = std::function<std::string(bool last_failed)>;
  /// Runs once per part: true when the part was acknowledged downstream or
  /// is on disk, false when it is neither (it must not be acknowledged
  /// upstream: its sender keeps it and sends it again).
  using Done = std::function<void(bool kept)>;
  using MembersHandler = std::function<void(const std::vector<std::string>&)>;

  /// Opens the link's spool; an error names the directory and the reason.
  /// The link is idle until start().
  [[nodiscard]] static boost::system::result<std::unique_ptr<Link>> open(boost::asio::io_context& io, Options options,
                                                                         AddressSource next_address);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  /// Connects and keeps connecting until stop().
  void start();
  void stop();

  /// This link's id for a name, the id its parts' records must use.
  uint32_t name_id(std::string_view service, std::string_view attr);

  /// Delivers a part (a batch, records named by name_id()), at least once;
  /// `done(true)` runs once it is acknowledged or spooled, `done(false)` if
  /// it could be neither (a full spool disk while the next hop is down).
  void submit(wire::Batch part, Done done);

  /// Tells the next hop that every second before `complete_before` is
  /// among the parts submitted so far; only while live (a spool still to
  /// send holds earlier parts, which the frame must not overtake).
  void announce(int64_t complete_before);

  /// Hands the spooled parts over, oldest first, to `take`, for a next hop
  /// that is gone for good (a judger removed from the registry): stops the
  /// link, then for each part calls take(part, finished); the part leaves
  /// this spool only once finished(true) says it is kept elsewhere, so a
  /// crash in between sends it again rather than losing it. finished(false)
  /// stops the hand-over (the part stays). Runs on the event loop.
  using Finished = std::function<void(bool kept)>;
  using Take = std::function<void(wire::SpoolRecord part, Finished finished)>;
  void hand_over(Take take);
  bool handing_over() const noexcept { return handing_over_; }

  /// Called with the member list of each heartbeat reply.
  void on_members(MembersHandler handler) { on_members_ = std::move(handler); }

  const std::string& name() const noexcept { return options_.name; }
  bool connected() const noexcept { return connection_ != nullptr; }
  const std::string& address() const noexcept { return address_; }
  uint64_t spooled() const noexcept { return spool_->records(); }
  uint64_t spool_dropped() const noexcept { return spool_->dropped_records(); }
  size_t unacked() const noexcept { return in_flight_.size(); }
  const LinkCounters& counters() const noexcept { return counters_; }

 private:
  struct InFlight {
    uint64_t sender_id;
    uint64_t sequence;
    size_t bytes;
    Done done;                        // live parts only
    std::optional<wire::Batch> part;  // live parts only
  };

  Link(boost::asio::io_context& io, Options options, AddressSource next_address, std::unique_ptr<wire::Spool> spool);
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<std::shared_ptr<net::FrameConnection>> connect(const std::string& address);
  boost::asio::awaitable<void> heartbeat_loop(std::shared_ptr<net::FrameConnection> connection);
  boost::asio::awaitable<void> read_loop(std::shared_ptr<net::FrameConnection> connection);
  // Sends now; on success a live part (non-null `done`) is moved into the
  // in-flight entry with its `done`, to spool if the link fails.
  bool send(wire::Batch& part, Done* done);
  bool spool_part(const wire::Batch& part);  // false: not on disk, logged and counted
  void pump();
  void lost();

  boost::asio::io_context& io_;
  const Options options_;
  AddressSource next_address_;
  MembersHandler on_members_;
  std::unique_ptr<wire::Spool> spool_;
  std::optional<wire::Spool::Entry> spool_front_;  // the spooled part in flight

  // Names: ids stable for the link's life; which were defined on this connection.
  std::vector<std::pair<std::string, std::string>> names_;  // id - 1 -> names
  std::unordered_map<std::string, uint32_t> ids_;
  std::string key_;
  std::vector<bool> defined_;

  std::shared_ptr<net::FrameConnection> connection_;
  std::string address_;
  std::deque<InFlight> in_flight_;
  size_t unacked_bytes_ = 0;
  boost::asio::steady_timer retry_;
  bool stopping_ = false;
  bool handing_over_ = false;
  void hand_over_next(std::shared_ptr<Take> take);
  LinkCounters counters_;
};

}  // namespace monitor::proxy
