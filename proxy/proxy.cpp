#include "proxy/proxy.hpp"

#include <algorithm>
#include <fstream>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "common/hash.hpp"
#include "common/process_info.hpp"
#include "net/endpoint.hpp"
#include "net/spawn.hpp"
#include "wire/messages.hpp"

namespace monitor::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr auto kRegistryTtl = 10s;

namespace {

std::vector<std::string> read_bonnie_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("bonnies_file {}: cannot read it", path));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty() || line.front() == '#') continue;
    if (!net::parse_endpoint(line)) throw std::runtime_error(fmt::format("bonnies_file {}: bad address {}", path, line));
    out.push_back(line);
  }
  if (out.empty()) throw std::runtime_error(fmt::format("bonnies_file {}: lists no Bonnie", path));
  return out;
}

uint64_t proxy_id(const std::string& name) {
  const std::string key = "proxy|" + name;
  return hash_bytes(key.data(), key.size(), 0x5EED) >> 1;
}

}  // namespace

/// One upstream session (an agent, or at a Bonnie also a Clyde) and the
/// batches it sent that are not acknowledged yet, oldest first.
class Proxy::Upstream final : public net::SessionPolicy {
 public:
  Upstream(Proxy& proxy, net::BatchSession& own) : proxy_(proxy), session(own) {}

  struct Route {
    uint64_t version = 0;  // of the catalogue it was judged by
    Catalogue::Verdict verdict = Catalogue::Verdict::kUnknownService;
    net::BatchSender* link = nullptr;
    uint32_t link_id = 0;
  };
  struct Unacked {
    uint64_t sender_id;
    uint64_t sequence;
    size_t parts_left;
  };

  wire::HelloAck on_hello(const wire::Hello&) override {
    hello_at_s = realtime_ns() / 1'000'000'000;
    // 0: send everything not acknowledged; the judger drops what it has.
    return wire::HelloAck{proxy_.own_id_, proxy_.config_.is_clyde() ? wire::Role::kClyde : wire::Role::kBonnie,
                          proxy_.config_.name, 0};
  }

  void on_batch(wire::Batch batch) override { proxy_.route(*this, std::move(batch)); }

  void on_watermark(int64_t complete_before) override {
    const bool new_minute = complete_before / 60 != watermark / 60;
    watermark = complete_before;
    marked_at_s = realtime_ns() / 1'000'000'000;
    // A minute's end passed: told at once, not at the next tick (the alarms wait for it).
    if (new_minute) proxy_.announce_watermarks(marked_at_s);
  }

  // A Bonnie's reply carries the live Bonnies: how Clydes learn the members.
  std::vector<std::string> heartbeat_members() override {
    return proxy_.config_.is_clyde() ? std::vector<std::string>{} : proxy_.catalogue_.bonnies();
  }

  bool has_room() const override { return unacked.size() < static_cast<size_t>(proxy_.config_.max_unacked_batches); }

  void on_closed(std::string_view) override {
    if (!unacked.empty()) {
      spdlog::info("{}: {} batches not acknowledged; their sender sends them again", session.peer(), unacked.size());
    }
  }

  /// A part of batch `index` is done: acknowledges, in order, every batch
  /// whose parts are all done. Returns how many were acknowledged.
  uint64_t part_done(uint64_t index) {
    if (index >= first_unacked) --unacked[index - first_unacked].parts_left;
    std::string out;
    uint64_t acked = 0;
    while (!unacked.empty() && unacked.front().parts_left == 0) {
      wire::encode(out, wire::Ack{unacked.front().sender_id, unacked.front().sequence});
      unacked.pop_front();
      ++first_unacked;
      ++acked;
    }
    if (!out.empty()) {
      session.send(std::move(out));
      session.make_room();
    }
    return acked;
  }

 private:
  Proxy& proxy_;

 public:
  net::BatchSession& session;
  std::unordered_map<uint32_t, Route> routes;  // by the upstream's name id
  std::deque<Unacked> unacked;
  uint64_t first_unacked = 0;  // index of unacked.front() among all batches of this connection
  // The sender's watermark: every second before it is routed (sent or
  // spooled on the links) ahead of the frame that said it.
  int64_t watermark = 0;
  int64_t marked_at_s = 0;
  int64_t hello_at_s = 0;
  bool lagging = false;  // told once per episode
};

Proxy::Proxy(ProxyConfig config)
    : config_(std::move(config)),
      own_id_(proxy_id(config_.name)),
      tls_(net::make_tls(net::tls_files(config_), config_.is_clyde() ? wire::Role::kClyde : wire::Role::kBonnie)),
      acceptor_(io_),
      health_("Monitor.Proxy", config_.server_id, config_.self_metrics) {
  config_.validate();
  if (tls_ && tls_->own_identity().name != config_.name) {
    throw std::runtime_error(fmt::format("TLS certificate {} is of {}, not of this proxy's name {}", config_.tls_cert,
                                         tls_->own_identity().text(), config_.name));
  }
  health_.expose(&metrics_);
  if (!config_.metrics_listen.empty()) {
    metrics_server_ = std::make_unique<net::MetricsServer>(config_.metrics_listen, [this] { return metrics_.text(); });
    spdlog::info("metrics: GET /metrics on {}", metrics_server_->address());
  }
  auto reg = registry::open_registry(config_.registry);
  if (!reg) throw std::runtime_error(fmt::format("open registry {}: {}", config_.registry, reg.error().message()));
  registry_ = std::move(*reg);
  if (config_.is_clyde()) {
    bonnies_ = read_bonnie_list(config_.bonnies_file);
    bonnie_index_ = std::random_device{}() % bonnies_.size();
    if (link_to("bonnie") == nullptr) throw std::runtime_error("cannot open the spool of the link to the Bonnies");
  } else {
    registrar_ = std::make_unique<AttrRegistrar>(*registry_);
    // Routes follow the registry as it changes, pushed by the watch; the
    // first read is waited for (bounded) so the first batches are routed.
    catalogue_watch_ = registry_->watch(
        Catalogue::kinds(),
        [this](const std::string& kind, const std::vector<registry::Entry>& entries) {
          bool complete = false;
          {
            std::lock_guard lock(watched_mutex_);
            watched_[kind] = entries;
            complete = watched_.size() == Catalogue::kinds().size();
          }
          if (complete) asio::post(io_, [this] { apply_catalogue(); });
        },
        [](bool up) {
          if (up) spdlog::info("registry: reachable again; routes follow it again");
          else spdlog::warn("registry: unreachable; routing on the last known view until it answers");
        });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    {
      auto waiting = asio::make_work_guard(io_);  // run_for() waits, not returns, while nothing is queued
      while (!catalogue_loaded_ && std::chrono::steady_clock::now() < deadline) io_.run_for(50ms);
    }
    io_.restart();
    if (!catalogue_loaded_) {
      spdlog::warn("registry {}: not read within 5 s; batches are refused (their senders keep them) until it is",
                   config_.registry);
    }
  }
  const tcp::endpoint endpoint = *net::parse_endpoint(config_.listen);
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("listen on {}: {}", config_.listen, ec.message()));
  spdlog::info("{} {} listening on {} (dc {})", config_.role, config_.name, net::format_endpoint(acceptor_.local_endpoint()),
               config_.dc);
  net::BatchListener::Options receiving;
  receiving.own_id = own_id_;
  receiving.max_connections = static_cast<size_t>(config_.max_connections);
  receiving.idle_timeout = std::chrono::seconds(config_.idle_timeout_s);
  receiving.max_batch_payload = wire::kMaxRelayedBatchPayload;
  receiving.tls = tls_;
  receiving.peers = config_.is_clyde() ? std::vector{wire::Role::kAgent} : std::vector{wire::Role::kAgent, wire::Role::kClyde};
  listener_ = std::make_unique<net::BatchListener>(
      acceptor_, std::move(receiving),
      [this](net::BatchSession& session) { return std::make_unique<Upstream>(*this, session); });
  registration_ = std::make_unique<registry::LiveRegistration>(*registry_, "proxy", "proxies", config_.name,
                                                               kRegistryTtl);
}

Proxy::~Proxy() = default;

net::BatchSender* Proxy::link_to(const std::string& next_hop) {
  if (auto it = links_.find(next_hop); it != links_.end()) return it->second.get();
  net::BatchSender::Options options;
  options.name = "link " + next_hop;
  options.spool_dir = std::filesystem::path(config_.data_dir) / "spool" / next_hop;
  options.spool_max_bytes = config_.spool_max_bytes;
  options.hello = wire::Hello{own_id_, config_.is_clyde() ? wire::Role::kClyde : wire::Role::kBonnie, config_.name};
  options.heartbeat_interval = std::chrono::milliseconds(config_.heartbeat_interval_ms);
  options.heartbeat_timeout = std::chrono::milliseconds(config_.heartbeat_timeout_ms);
  options.tls = tls_;
  options.next_hops = {config_.is_clyde() ? wire::Role::kBonnie : wire::Role::kJudger};
  net::BatchSender::AddressSource source;
  if (config_.is_clyde()) {
    source = [this](bool last_failed) { return next_bonnie(last_failed); };
  } else {
    source = [this, next_hop](bool) { return catalogue_.judger_address(next_hop); };
  }
  const std::string spool_dir = options.spool_dir.string();
  auto opened = net::BatchSender::open(io_, std::move(options), std::move(source));
  if (!opened) {
    ++counters_.link_failures;
    const int64_t now = realtime_ns();
    int64_t& next_log = link_failure_log_[next_hop];
    if (now >= next_log) {
      next_log = now + 60'000'000'000;
      spdlog::error("link {}: cannot open its spool {}: {}; its reports are not acknowledged until it can ({} such "
                    "failures so far)",
                    next_hop, spool_dir, opened.error().message(), counters_.link_failures);
    }
    return nullptr;
  }
  auto& link = links_[next_hop];
  link = std::move(*opened);
  if (config_.is_clyde()) link->on_members([this](const auto& members) { update_bonnie_list(members); });
  link->start();
  return link.get();
}

std::string Proxy::next_bonnie(bool last_failed) {
  if (last_failed) bonnie_index_ = (bonnie_index_ + 1) % bonnies_.size();
  return bonnies_[bonnie_index_];
}

void Proxy::update_bonnie_list(const std::vector<std::string>& members) {
  std::vector<std::string> now = members, before = bonnies_;
  std::sort(now.begin(), now.end());
  std::sort(before.begin(), before.end());
  if (now == before) return;
  std::erase_if(now, [](const std::string& a) { return !net::parse_endpoint(a); });
  if (now.empty()) return;
  const std::string current = bonnies_[bonnie_index_];
  const std::string tmp = fmt::format("{}.tmp.{}", config_.bonnies_file, ::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "# Bonnies, rewritten by monitor-proxy " << config_.name << " from heartbeat replies\n";
    for (const auto& address : now) out << address << '\n';
    out.flush();
    if (!out) {
      spdlog::error("cannot write {}: the Bonnie list stays as it was", tmp);
      return;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, config_.bonnies_file, ec);
  if (ec) {
    spdlog::error("cannot replace {}: {}", config_.bonnies_file, ec.message());
    return;
  }
  bonnies_ = std::move(now);
  const auto keep = std::find(bonnies_.begin(), bonnies_.end(), current);
  bonnie_index_ = keep == bonnies_.end() ? 0 : static_cast<size_t>(keep - bonnies_.begin());
  ++counters_.bonnie_list_updates;
  spdlog::info("Bonnie list changed: {} (written to {})", fmt::join(bonnies_, ", "), config_.bonnies_file);
}

void Proxy::apply_catalogue() {
  std::map<std::string, std::vector<registry::Entry>> watched;
  {
    std::lock_guard lock(watched_mutex_);
    watched = watched_;
  }
  std::vector<std::string> problems;
  Catalogue loaded = Catalogue::build(watched, problems);
  const bool first = !catalogue_loaded_;
  catalogue_loaded_ = true;
  if (!first && loaded == catalogue_) return;
  for (const auto& problem : problems) spdlog::warn("registry: {}", problem);
  catalogue_ = std::move(loaded);
  ++catalogue_version_;  // every upstream's routes are judged again
  registrar_->drop_registered(
      [&](const std::string& service, const std::string& attr) { return catalogue_.has_attr(service, attr); });
  // Connected before the first report needs them (a judger name is a registry key: a safe directory name).
  for (const auto& judger : catalogue_.assigned_judgers()) link_to(judger);
  spdlog::info("registry: {} services, Bonnies {}", catalogue_.services(), fmt::join(catalogue_.bonnies(), ", "));
  hand_over_retired();
}

void Proxy::hand_over_retired() {
  if (config_.is_clyde()) return;
  for (auto& [name, link] : links_) {
    if (link->handing_over() || link->spooled() == 0 || !catalogue_.judger_retired(name)) continue;
    link->hand_over([this, from = name](wire::SpoolRecord part, net::BatchSender::Finished finished) {
      reroute(from, std::move(part), std::move(finished));
    });
  }
}

void Proxy::reroute(const std::string& from, wire::SpoolRecord spooled, net::BatchSender::Finished finished) {
  // The part keeps its origin (sender, sequence): a judger that already has
  // some service's records of it drops those as duplicates.
  std::vector<std::pair<net::BatchSender*, wire::Batch>> parts;
  for (auto& record : spooled.batch.records) {
    const auto& names = spooled.names[record.name_id - 1];  // checked by decode_spool_record()
    std::string judger;
    const auto verdict = judge(names.service, names.attr, judger);
    if (verdict != Catalogue::Verdict::kRoute || judger == from) {
      ++(verdict == Catalogue::Verdict::kUnknownService ? counters_.dropped_unknown_service
         : verdict == Catalogue::Verdict::kUnknownAttr  ? counters_.dropped_unknown_attr
                                                        : counters_.dropped_unassigned);
      continue;
    }
    net::BatchSender* link = link_to(judger);
    if (link == nullptr) {
      finished(false);  // stays in the old spool; tried again at the next registry change
      return;
    }
    record.name_id = link->name_id(names.service, names.attr);
    auto part = std::find_if(parts.begin(), parts.end(), [&](const auto& p) { return p.first == link; });
    if (part == parts.end()) {
      parts.emplace_back(link, wire::Batch{spooled.batch.sender_id, spooled.batch.sequence, {}});
      part = std::prev(parts.end());
    }
    part->second.records.push_back(std::move(record));
  }
  if (parts.empty()) {
    finished(true);
    return;
  }
  auto left = std::make_shared<size_t>(parts.size());
  auto all_kept = std::make_shared<bool>(true);
  auto finish = std::make_shared<net::BatchSender::Finished>(std::move(finished));
  for (auto& [link, part] : parts) {
    counters_.records_handed_over += part.records.size();
    link->submit(std::move(part), [left, all_kept, finish](bool kept) {
      *all_kept = *all_kept && kept;
      if (--*left == 0) (*finish)(*all_kept);
    });
  }
}

void Proxy::refuse(Upstream& upstream, uint64_t index, uint64_t sender, uint64_t sequence, std::string_view why) {
  // Acknowledging the batch would lose it. ACKs go in order, so the whole
  // connection closes and its sender sends the batch again from its own
  // spool; what reached a judger meanwhile is dropped there as a duplicate.
  ++counters_.batches_refused;
  // Never done, whatever its other parts report: no ACK can be owed for it.
  if (index >= upstream.first_unacked) upstream.unacked[index - upstream.first_unacked].parts_left = SIZE_MAX;
  if (!upstream.session.open()) return;  // refused already, through another part
  spdlog::error("{}: closing: batch {} of sender {} {}; the sender keeps it ({} refused so far)",
                upstream.session.peer(), sequence, sender, why, counters_.batches_refused);
  upstream.session.close(fmt::format("refused batch {} of sender {}", sequence, sender));
}

Catalogue::Verdict Proxy::judge(std::string_view service, std::string_view attr, std::string& judger) {
  const Catalogue::Verdict verdict = catalogue_.judge(service, attr, judger);
  if (verdict != Catalogue::Verdict::kNewAttr) return verdict;
  const bool admitted = registrar_->admit(std::string(service), std::string(attr), catalogue_.attr_count(service),
                                          catalogue_.auto_attrs(service));
  return admitted ? Catalogue::Verdict::kRoute : Catalogue::Verdict::kUnknownAttr;
}

void Proxy::route(Upstream& upstream, wire::Batch batch) {
  ++counters_.batches_in;
  counters_.records_in += batch.records.size();
  const uint64_t index = upstream.first_unacked + upstream.unacked.size();
  upstream.unacked.push_back({batch.sender_id, batch.sequence, 0});
  if (!config_.is_clyde() && !catalogue_loaded_) {
    refuse(upstream, index, batch.sender_id, batch.sequence, "arrived before the registry could be read");
    return;
  }
  std::vector<std::pair<net::BatchSender*, wire::Batch>> parts;  // few: one per judger the batch touches
  for (auto& record : batch.records) {
    Upstream::Route& route = upstream.routes[record.name_id];
    if (route.version != catalogue_version_) {
      std::string_view service, attr;
      upstream.session.dictionary().lookup(record.name_id, service, attr);
      std::string judger;
      route.verdict = config_.is_clyde() ? Catalogue::Verdict::kRoute : judge(service, attr, judger);
      route.link = nullptr;
      if (route.verdict == Catalogue::Verdict::kRoute) {
        route.link = link_to(config_.is_clyde() ? std::string("bonnie") : judger);
        if (route.link != nullptr) route.link_id = route.link->name_id(service, attr);
      } else {
        spdlog::warn("{}: dropping reports of {} {}: {}", upstream.session.peer(), service, attr,
                     route.verdict == Catalogue::Verdict::kUnknownService ? "service not registered"
                     : route.verdict == Catalogue::Verdict::kUnknownAttr  ? "attr not registered"
                                                                          : "service assigned to no judger");
      }
      route.version = catalogue_version_;
    }
    if (route.verdict == Catalogue::Verdict::kRoute && route.link == nullptr) {
      // Its link cannot keep anything: refuse the whole batch and ask the
      // link again for the next one.
      route.version = 0;
      refuse(upstream, index, batch.sender_id, batch.sequence, "has reports for a judger whose link cannot be opened");
      return;
    }
    switch (route.verdict) {
      case Catalogue::Verdict::kRoute: break;
      case Catalogue::Verdict::kUnknownService: ++counters_.dropped_unknown_service; continue;
      case Catalogue::Verdict::kUnknownAttr: ++counters_.dropped_unknown_attr; continue;
      case Catalogue::Verdict::kUnassigned: ++counters_.dropped_unassigned; continue;
      case Catalogue::Verdict::kNewAttr: break;  // judge() turned it into kRoute or kUnknownAttr
    }
    auto part = std::find_if(parts.begin(), parts.end(), [&](const auto& p) { return p.first == route.link; });
    if (part == parts.end()) {
      parts.emplace_back(route.link, wire::Batch{batch.sender_id, batch.sequence, {}});
      part = std::prev(parts.end());
    }
    record.name_id = route.link_id;
    part->second.records.push_back(std::move(record));
  }
  upstream.unacked.back().parts_left = parts.size() + 1;  // + 1 until every part is handed over
  for (auto& [link, part] : parts) {
    counters_.records_routed += part.records.size();
    // The session may be gone when the part is done.
    std::weak_ptr<net::BatchSession> weak = upstream.session.weak_from_this();
    link->submit(std::move(part), [this, weak, index, sender = batch.sender_id, sequence = batch.sequence](bool kept) {
      auto session = weak.lock();
      if (!session) return;
      auto& u = static_cast<Upstream&>(session->policy());
      if (kept) {
        counters_.batches_acked += u.part_done(index);
        return;
      }
      refuse(u, index, sender, sequence, "has a part that could be neither delivered nor spooled");
    });
  }
  counters_.batches_acked += upstream.part_done(index);
}

void Proxy::register_self() {
  boost::system::error_code ec;
  const auto bound = acceptor_.local_endpoint(ec);
  boost::json::object value{{"address", ec ? config_.listen : net::format_endpoint(bound)},
                            {"role", config_.role},
                            {"dc", config_.dc},
                            {"records_in", counters_.records_in}};
  registration_->update(std::move(value));
}

namespace {

struct LinkTotals {
  uint64_t spooled = 0, dropped = 0, unacked = 0, peers_refused = 0;
};

template <class Links>
LinkTotals link_totals(const Links& links) {
  LinkTotals t;
  for (const auto& [name, link] : links) {
    t.spooled += link->spooled();
    t.dropped += link->spool_dropped() + link->counters().spool_corrupt;
    t.peers_refused += link->counters().tls_refused + link->counters().members_refused;
    t.unacked += link->unacked();
  }
  return t;
}

}  // namespace

const health::HealthTable<Proxy>& Proxy::health_table() {
  using P = Proxy;
  static const health::HealthTable<Proxy> table = [] {
    health::HealthTable<Proxy> t;
    t.counter("Reports.In", "", "", [](const P& p) { return p.counters_.records_in; })
        .counter("Reports.Forwarded", "", "", [](const P& p) { return p.counters_.records_routed; })
        .counter("Reports.Dropped", "", "",
                 [](const P& p) {
                   return p.counters_.dropped_unknown_service + p.counters_.dropped_unknown_attr +
                          p.counters_.dropped_unassigned;
                 })
        .counter("Frames.Bad", "", "", [](const P& p) { return p.listener_->counters().bad_frames; })
        .counter("Spool.Dropped", "", "", [](const P& p) { return link_totals(p.links_).dropped; })
        .counter("Batches.Refused", "", "", [](const P& p) { return p.counters_.batches_refused; })
        .counter("Connections.Refused", "", "", [](const P& p) { return p.listener_->counters().connections_refused; })
        // TLS: handshakes that failed and certificates refused, both ways, and
        // member lists from a next hop that is not a Bonnie.
        .counter("Peers.Refused", "", "",
                 [](const P& p) {
                   const auto& in = p.listener_->counters();
                   return in.tls_failures + in.identity_refused + link_totals(p.links_).peers_refused;
                 })
        .counter("Reports.HandedOver", "", "", [](const P& p) { return p.counters_.records_handed_over; })
        // A Bonnie's; zeros at a Clyde, so every registered attr is always reported.
        .counter("AutoAttrs.Registered", "", "",
                 [](const P& p) { return p.registrar_ ? p.registrar_->registered() : uint64_t{0}; })
        .counter("AutoAttrs.Refused", "", "", [](const P& p) { return p.registrar_ ? p.registrar_->refused() : uint64_t{0}; })
        .gauge("AutoAttrs.Waiting", "", "",
               [](const P& p) { return p.registrar_ ? static_cast<int64_t>(p.registrar_->waiting()) : int64_t{0}; })
        .gauge("Spool.Batches", "", "", [](const P& p) { return static_cast<int64_t>(link_totals(p.links_).spooled); })
        .gauge("Queue.Unacked", "", "", [](const P& p) { return static_cast<int64_t>(link_totals(p.links_).unacked); })
        .gauge("Connections.Live", "", "", [](const P& p) { return static_cast<int64_t>(p.listener_->sessions().size()); })
        .resident_memory()
        .gauge("Registry.Reachable", "", "", [](const P& p) { return p.registration_->reachable() ? 1 : 0; })
        .counter("Registry.Failures", "", "", [](const P& p) { return p.registration_->failures(); });
    return t;
  }();
  return table;
}

std::vector<std::string> Proxy::health_attrs() { return health_table().attrs(); }

void Proxy::report_health() { health_table().report(*this, health_); }

void Proxy::log_health() {
  std::string links;
  for (const auto& [name, link] : links_) {
    const auto& c = link->counters();
    links += fmt::format("; {} {}: {} parts sent, {} spooled now, {} spool drops, {} connect failures, "
                         "{} heartbeat timeouts",
                         name, link->connected() ? link->address() : std::string("down"), c.parts_sent,
                         link->spooled(), link->spool_dropped() + c.spool_failures, c.connect_failures,
                         c.heartbeat_timeouts);
  }
  // Finer than the table: drops by reason, and each next hop's link.
  spdlog::info("health: {} connections, {} batches in, {} records in, {} routed, dropped {} unknown service / "
               "{} unknown attr / {} unassigned, {} bad frames, {} batches acknowledged, "
               "{} own health reports refused by the SDK{}",
               listener_->counters().connections, counters_.batches_in, counters_.records_in, counters_.records_routed,
               counters_.dropped_unknown_service, counters_.dropped_unknown_attr, counters_.dropped_unassigned,
               listener_->counters().bad_frames, counters_.batches_acked, health_.failures(), links);
}

void Proxy::announce_watermarks(int64_t now_s) {
  // With no sender it has nothing to deliver: up to its own clock, less an
  // agent's late window, so a sender that connects now is not passed by.
  constexpr int64_t kIdleLagS = 3;
  constexpr int64_t kFreshS = 5;     // a watermark older than this no longer counts
  constexpr int64_t kLaggingS = 10;  // a sender further behind is not waited for (a backlog, a wrong clock)
  int64_t relayed = INT64_MAX;
  for (const auto& session : listener_->sessions()) {
    if (!session->hello()) continue;
    auto* upstream = static_cast<Upstream*>(&session->policy());
    if (upstream->watermark == 0 || now_s - upstream->marked_at_s > kFreshS) {
      // One that says nothing (an earlier version, or a spool it is still
      // sending): the next hop cannot be told, and falls back to its grace.
      if (now_s - upstream->hello_at_s > kFreshS) return;
      continue;  // just connected: its first watermark is on its way
    }
    if (upstream->watermark < now_s - kLaggingS) {
      if (!upstream->lagging) {
        spdlog::warn("{}: {} {} has sent only up to second {}, {} s behind this proxy's clock: not waited for; what "
                     "it sends later amends the minutes at the judgers",
                     session->peer(), wire::role_name(session->hello()->role), session->hello()->sender_name,
                     upstream->watermark, now_s - upstream->watermark);
      }
      upstream->lagging = true;
      continue;
    }
    upstream->lagging = false;
    relayed = std::min(relayed, upstream->watermark);
  }
  if (relayed == INT64_MAX) relayed = now_s - kIdleLagS;
  for (auto& [hop, link] : links_) link->announce(relayed);
}

asio::awaitable<void> Proxy::tick_loop() {
  asio::steady_timer timer(io_);
  for (int ticks = 0; !stopping_; ++ticks) {
    // Each step survives its own failure: a tick loop that died would stop
    // re-registering and reporting without a word.
    if (ticks % 3 == 0) net::guarded("registering", [&] { register_self(); });
    if (ticks % 5 == 0) net::guarded("handing over retired spools", [&] { hand_over_retired(); });
    if (ticks % 5 == 0) net::guarded("reporting health", [&] { report_health(); });
    if (ticks % 60 == 59) net::guarded("logging health", [&] { log_health(); });
    announce_watermarks(realtime_ns() / 1'000'000'000);
    timer.expires_after(1s);
    co_await timer.async_wait(kNoThrow);
  }
}

int Proxy::run() {
  asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code&, int sig) {
    spdlog::info("signal {}: stopping", sig);
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    listener_->stop();
    for (const auto& [name, link] : links_) link->stop();
    io_.stop();
  });
  net::reload_on_sighup(io_, {tls_});
  register_self();
  listener_->start();
  net::spawn(io_, tick_loop(), "the tick loop");
  io_.run();
  // Unacknowledged batches are resent by their senders; spooled parts wait on disk.
  catalogue_watch_.reset();
  registration_.reset();  // removes our entry: agents and Clydes stop picking us
  log_health();
  return 0;
}

}  // namespace monitor::proxy
