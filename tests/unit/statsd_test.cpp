// statsd and DogStatsD lines through the agent's Ingest and Aggregator: the
// mapping of docs/socket.md, checked on what the aggregator writes out.
#include <map>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <catch2/catch.hpp>

#include "agent/aggregator.hpp"
#include "agent/ingest.hpp"
#include "agent/line_parser.hpp"
#include "agent/name_registry.hpp"
#include "agent/stream_receiver.hpp"
#include "support/temp_names.hpp"
#include "monitor/monitor.hpp"

using monitor::agent::AggregateRecord;
using monitor::agent::AggregateSink;
using monitor::agent::Aggregator;
using monitor::agent::Ingest;
using monitor::agent::LineError;
using monitor::agent::LineKind;
using monitor::agent::LineParser;
using monitor::agent::NameRegistry;
using monitor::agent::ParsedLine;
using monitor::agent::statsd_name_transform;
using monitor::agent::StatsdOptions;
using monitor::agent::StatsdRule;

namespace {

constexpr int64_t kNow = 1'700'000'000;
constexpr int64_t kNs = 1'000'000'000;

struct Out {
  monitor::model::Stats stats;
  uint64_t hist_total = 0;
};

// What the agent writes out, keyed "service attr server op".
class NamedSink final : public AggregateSink {
 public:
  explicit NamedSink(const NameRegistry& names) : names_(names) {}
  void write(const AggregateRecord& r) override {
    const std::string key = std::string(names_.service(r.name_id)) + " " + std::string(names_.attr(r.name_id)) + " " +
                            std::to_string(r.server_id) + " " + std::to_string(r.op);
    out[key] = Out{*r.stats, r.hist != nullptr ? r.hist->total() : 0};
  }
  void end_second(int64_t) override {}
  std::map<std::string, Out> out;

 private:
  const NameRegistry& names_;
};

// One agent's ingest path, fed datagrams, written out on demand.
struct Harness {
  explicit Harness(const StatsdOptions& options = {})
      : aggregator({}, kNow), ingest(aggregator, names, nullptr, 5, options), sink(names) {
    ingest.set_now(kNow);
  }
  void send(const std::string& datagram) { ingest.on_datagram(datagram, false, kNow * kNs + 1000); }
  const Out& get(const std::string& key) {
    if (!flushed) {
      aggregator.flush_until(kNow + 10, sink);
      flushed = true;
    }
    const auto it = sink.out.find(key);
    if (it == sink.out.end()) {
      std::string have;
      for (const auto& [k, v] : sink.out) have += k + "; ";
      FAIL("no record " << key << " among: " << have);
    }
    return it->second;
  }
  NameRegistry names;
  Aggregator aggregator;
  Ingest ingest;
  NamedSink sink;
  bool flushed = false;
};

std::string repeat(const std::string& line, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += line + "\n";
  return s;
}

std::string transform(std::string_view text) {
  char buf[64];
  const size_t n = statsd_name_transform(text, "Statsd", buf, sizeof buf);
  return std::string(buf, n);
}

}  // namespace

TEST_CASE("statsd names are transformed into the naming rule as documented", "[statsd]") {
  CHECK(transform("web.requests.count") == "Web.Requests.Count");
  CHECK(transform("http.2xx") == "Http.N2xx");
  CHECK(transform("queue_depth.now") == "QueueDepth.Now");
  CHECK(transform("checkout-api") == "Statsd.CheckoutApi");  // one segment: under the prefix
  CHECK(transform("requests") == "Statsd.Requests");
  CHECK(transform("a..b") == "A.B");  // empty segments are skipped
  CHECK(transform("api/v1 latency.p") == "ApiV1Latency.P");
  CHECK(transform("___") == "");
  CHECK(transform(std::string(70, 'a')) == "");  // does not fit in 64 bytes
}

TEST_CASE("the service comes from a rule, else the service: tag, else the default, else the name", "[statsd]") {
  StatsdOptions options;
  options.rules.push_back(StatsdRule{"http.*.requests", "Shop.Web", "Requests.$1"});
  options.rules.push_back(StatsdRule{"db.query_*.ms", "Shop.Db", "Query.$1"});
  options.default_service = "Shop.Default";
  LineParser parser(0, options);
  ParsedLine p;
  REQUIRE(parser.parse("http.2xx.requests:1|c|#service:checkout", p) == LineError::kOk);
  CHECK(p.service == "Shop.Web");
  CHECK(p.attr == "Requests.N2xx");
  REQUIRE(parser.parse("db.query_select.ms:3|ms", p) == LineError::kOk);
  CHECK(p.service == "Shop.Db");
  CHECK(p.attr == "Query.Select");
  REQUIRE(parser.parse("http.2xx.responses:1|c|#env:prod,service:checkout-api,version:1.2", p) == LineError::kOk);
  CHECK(p.service == "Statsd.CheckoutApi");
  CHECK(p.attr == "Http.N2xx.Responses");
  REQUIRE(parser.parse("web.requests.count:1|c", p) == LineError::kOk);
  CHECK(p.service == "Shop.Default");
  CHECK(p.attr == "Web.Requests.Count");

  LineParser plain(0);
  REQUIRE(plain.parse("shop.api.queue.depth:1|c", p) == LineError::kOk);
  CHECK(p.service == "Shop.Api");
  CHECK(p.attr == "Queue.Depth");
  CHECK(plain.parse("web.requests.count:1|c", p) == LineError::kNoService);

  StatsdOptions bad;
  bad.rules.push_back(StatsdRule{"a.**.b", "S.S", "A.A"});
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("at most one *"));
  bad.rules = {StatsdRule{"a..b", "S.S", "A.A"}};
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("empty segment"));
  bad.rules = {};
  bad.default_service = "shop";
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("not a valid service name"));
}

TEST_CASE("a DogStatsD event longer than a line's limit is still an event, and a long report is too long", "[statsd]") {
  Harness h;
  const std::string text(3000, 'x');
  h.send("_e{5," + std::to_string(text.size()) + "}:title|" + text + "|#service:svc.one\n" +
         "svc.a.b.c:1|c|#" + std::string(1100, 't') + "\n" + "_e{5,3000}" + text + "\n");
  CHECK(h.ingest.counters().statsd_events == 1);
  CHECK(h.ingest.counters().bad_lines[static_cast<size_t>(LineError::kTooLong)] == 1);
  CHECK(h.ingest.counters().bad_lines[static_cast<size_t>(LineError::kBadFormat)] == 1);  // no ':' after the header
}

TEST_CASE("DogStatsD fields the agent does not use are skipped, and events and service checks are counted", "[statsd]") {
  Harness h;
  h.send("a.b.c.d:2|c|c:83c0a99c0a5|e:it-false,cn-x|card:high|x:whatever|#service:svc.one\n"
         "_e{5,4}:title|text|#service:svc.one\n"
         "_sc|svc.check|0|#service:svc.one\n"
         "_sc|other|2\n");
  CHECK(h.ingest.counters().statsd_events == 1);
  CHECK(h.ingest.counters().statsd_service_checks == 2);
  CHECK(h.ingest.counters().bad_lines_total() == 0);
  CHECK(h.get("Svc.One A.B.C.D 5 1").stats.sum == 2);
}

TEST_CASE("sampled counts are scaled exactly in the aggregate, not per line", "[statsd]") {
  Harness h;
  // Per-line rounding made 100 x 1 @0.75 into 100 (133 expected) and @0.4 into 200 (250).
  h.send(repeat("svc.a.hits.t75:1|c|@0.75", 100) + repeat("svc.a.hits.t40:1|c|@0.4", 100) +
         repeat("svc.a.hits.t10:3|c|@0.1", 7));
  CHECK(h.get("Svc.A Hits.T75 5 1").stats.sum == 133);  // round(100 / 0.75)
  CHECK(h.get("Svc.A Hits.T75 5 64").stats.count == 133);
  CHECK(h.get("Svc.A Hits.T40 5 1").stats.sum == 250);
  CHECK(h.get("Svc.A Hits.T10 5 1").stats.sum == 210);
  CHECK(h.get("Svc.A Hits.T10 5 64").stats.count == 70);
}

TEST_CASE("timer, histogram and distribution rates count every event", "[statsd]") {
  for (const char* type : {"ms", "h", "d"}) {
    Harness h;
    // 10 values at @0.5 stand for 20 events, 3 unsampled for 3.
    std::string lines;
    for (int v = 1; v <= 10; ++v) lines += "svc.a.latency.x:" + std::to_string(v * 10) + "|" + type + "|@0.5\n";
    lines += repeat(std::string("svc.a.latency.x:1000|") + type, 3);
    h.send(lines);
    INFO("type " << type);
    CHECK(h.get("Svc.A Latency.X 5 64").stats.count == 23);
    CHECK(h.get("Svc.A Latency.X 5 8").stats.sum == 2 * 550 + 3000);  // AVG = sum / count
    CHECK(h.get("Svc.A Latency.X 5 2").stats.max == 1000);
    CHECK(h.get("Svc.A Latency.X 5 4").stats.min == 10);
    CHECK(h.get("Svc.A Latency.X 5 128").hist_total == 23);
  }
}

TEST_CASE("gauges keep their last value and take +/- deltas, and negative values are kept", "[statsd]") {
  Harness h;
  h.send("svc.a.queue.depth:10|g\nsvc.a.queue.depth:+5|g\nsvc.a.queue.depth:-20|g\n"
         "svc.a.temp.c:0|g\nsvc.a.temp.c:-7|g\n"
         "svc.a.fresh.g:-3|g\n");
  CHECK(h.get("Svc.A Queue.Depth 5 32").stats.last == -5);
  CHECK(h.get("Svc.A Queue.Depth 5 2").stats.max == 15);
  CHECK(h.get("Svc.A Queue.Depth 5 4").stats.min == -5);
  CHECK(h.get("Svc.A Temp.C 5 32").stats.last == -7);
  CHECK(h.get("Svc.A Fresh.G 5 2").stats.max == -3);  // a delta from nothing starts at 0

  StatsdOptions dogstatsd;
  dogstatsd.signed_gauge_is_delta = false;
  Harness d(dogstatsd);
  d.send("svc.a.queue.depth:10|g\nsvc.a.queue.depth:-4|g\n");
  CHECK(d.get("Svc.A Queue.Depth 5 32").stats.last == -4);
  CHECK(d.get("Svc.A Queue.Depth 5 2").stats.max == 10);
}

TEST_CASE("a gauge set to 0 and then a negative delta in one datagram is one negative value", "[statsd]") {
  // statsd cannot set a gauge below zero in one line; python-statsd's
  // gauge(-7) sends "0|g" then "-7|g" together. Read line by line, the
  // second's MAX would be 0, a value the service never had.
  Harness h;
  h.send("svc.a.temp.c:0|g\nsvc.a.temp.c:-7|g\n");
  CHECK(h.get("Svc.A Temp.C 5 2").stats.max == -7);
  CHECK(h.get("Svc.A Temp.C 5 4").stats.min == -7);
  CHECK(h.get("Svc.A Temp.C 5 32").stats.last == -7);
  CHECK(h.get("Svc.A Temp.C 5 2").stats.count == 1);

  // Packed values after the pair go on from the negative value set.
  Harness p;
  p.send("svc.a.p.g:0|g\nsvc.a.p.g:-3:-2|g\n");
  CHECK(p.get("Svc.A P.G 5 32").stats.last == -5);
  CHECK(p.get("Svc.A P.G 5 2").stats.max == -3);
  CHECK(p.get("Svc.A P.G 5 4").stats.min == -5);
  CHECK(p.get("Svc.A P.G 5 2").stats.count == 2);

  // Anything else after the 0 leaves it a 0: another series, a positive
  // delta, a bad line, the datagram's end; and the gauge goes on from there.
  Harness o;
  o.send("svc.a.a.g:0|g\nsvc.a.b.g:-1|g\nsvc.a.a.g:-2|g\n");  // not adjacent
  o.send("svc.a.c.g:0|g\nsvc.a.c.g:+4|g\n");
  o.send("svc.a.d.g:0|g\nnonsense\nsvc.a.d.g:-4|g\n");
  o.send("svc.a.e.g:0|g\n");
  o.send("svc.a.e.g:-6|g\n");  // the next datagram
  o.send("svc.a.f.g:0|g\nsvc.a.f.g:-3|g|#server:9\n");  // another server
  CHECK(o.get("Svc.A A.G 5 2").stats.max == 0);
  CHECK(o.get("Svc.A A.G 5 32").stats.last == -2);
  CHECK(o.get("Svc.A C.G 5 4").stats.min == 0);
  CHECK(o.get("Svc.A C.G 5 32").stats.last == 4);
  CHECK(o.get("Svc.A D.G 5 2").stats.max == 0);
  CHECK(o.get("Svc.A D.G 5 32").stats.last == -4);
  CHECK(o.get("Svc.A E.G 5 2").stats.max == 0);
  CHECK(o.get("Svc.A E.G 5 32").stats.last == -6);
  CHECK(o.get("Svc.A F.G 5 2").stats.max == 0);
  CHECK(o.get("Svc.A F.G 9 32").stats.last == -3);
  CHECK(o.ingest.counters().socket_lines == 11);

  // With DogStatsD's rule "-7|g" is a value, so there is no pair to make.
  StatsdOptions dogstatsd;
  dogstatsd.signed_gauge_is_delta = false;
  Harness d(dogstatsd);
  d.send("svc.a.temp.c:0|g\nsvc.a.temp.c:-7|g\n");
  CHECK(d.get("Svc.A Temp.C 5 2").stats.max == 0);
  CHECK(d.get("Svc.A Temp.C 5 4").stats.min == -7);
}

TEST_CASE("packed DogStatsD values are each a report, and a line with one bad value is refused whole", "[statsd]") {
  Harness h;
  h.send("svc.a.lat.ms:1:2:3|d\nsvc.a.hits.n:1:2|c|@0.5\nsvc.a.depth.g:5:+2:-10|g\nsvc.a.users.s:a:b|s\n"
         "svc.a.bad.v:1:x|d\nsvc.a.bad.v:1:|d\nsvc.a.bad.v::1|d\nsvc.a.bad.v:1::2|d\n");
  CHECK(h.get("Svc.A Lat.Ms 5 64").stats.count == 3);
  CHECK(h.get("Svc.A Lat.Ms 5 2").stats.max == 3);
  CHECK(h.get("Svc.A Lat.Ms 5 4").stats.min == 1);
  CHECK(h.get("Svc.A Lat.Ms 5 128").hist_total == 3);
  CHECK(h.get("Svc.A Hits.N 5 1").stats.sum == 6);  // (1 + 2) / 0.5
  CHECK(h.get("Svc.A Hits.N 5 64").stats.count == 4);
  CHECK(h.get("Svc.A Depth.G 5 32").stats.last == -3);  // 5, then +2, then -10
  CHECK(h.get("Svc.A Depth.G 5 2").stats.max == 7);
  CHECK(h.get("Svc.A Depth.G 5 4").stats.min == -3);
  CHECK(h.get("Svc.A Users.S 5 1").stats.sum == 1);  // a set's member may hold ':'
  CHECK(h.ingest.counters().bad_lines[static_cast<size_t>(LineError::kBadNumber)] == 4);
  CHECK(h.sink.out.count("Svc.A Bad.V 5 64") == 0);
}

TEST_CASE("sets count distinct members per second and series", "[statsd]") {
  Harness h;
  h.send("svc.a.users.seen:alice|s\nsvc.a.users.seen:bob|s\nsvc.a.users.seen:alice|s|@0.5\n"
         "svc.a.users.seen:alice|s|#server:9\nsvc.a.users.seen:carol|s|#server:9\nsvc.a.users.seen:carol|s|#server:9\n");
  CHECK(h.get("Svc.A Users.Seen 5 1").stats.sum == 2);
  CHECK(h.get("Svc.A Users.Seen 9 1").stats.sum == 2);
}

TEST_CASE("what cannot be mapped is counted per reason", "[statsd][failure]") {
  Harness h;
  h.send("web.requests.count:1|c\nweb.requests.count:1|c\n###:1|c|#service:x.y\nsvc.a.b.c:1|zz\n");
  const auto& bad = h.ingest.counters().bad_lines;
  CHECK(bad[static_cast<size_t>(LineError::kNoService)] == 2);
  CHECK(bad[static_cast<size_t>(LineError::kBadName)] == 1);
  CHECK(bad[static_cast<size_t>(LineError::kBadType)] == 1);
  CHECK(h.ingest.counters().socket_lines == 0);
}

namespace {

int connect_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

// True once the agent's side closed: a read sees the end of the stream.
bool closed_by_peer(int fd) {
  char byte;
  return ::recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
}

}  // namespace

TEST_CASE("issue 23: the statsd stream socket closes a client silent for idle_timeout_s, its last line taken",
          "[statsd][issue23]") {
  monitor::test::TempDir dir;
  auto bound = monitor::agent::StreamReceiver::bind(dir.file("statsd.sock"), static_cast<gid_t>(-1), 4);
  REQUIRE(bound.has_value());
  monitor::agent::StreamReceiver& receiver = *bound;
  std::string taken;
  auto take = [&](std::string_view lines) { taken.append(lines); };
  constexpr int64_t kSecond = 1'000'000'000;

  const int talker = connect_unix(dir.file("statsd.sock"));
  const int silent = connect_unix(dir.file("statsd.sock"));
  REQUIRE(::send(talker, "a:1|c\n", 6, 0) == 6);
  receiver.receive(0, take);
  REQUIRE(receiver.connections() == 2);
  REQUIRE(::send(talker, "b:1|c\npart", 10, 0) == 10);
  receiver.receive(5 * kSecond, take);
  CHECK(taken == "a:1|c\nb:1|c\n");

  // At 8 s with a 6 s timeout: the silent one (since 0 s) goes, the talker (5 s) stays.
  CHECK(receiver.close_idle(8 * kSecond, 6 * kSecond, take) == 1);
  CHECK(receiver.connections() == 1);
  CHECK(closed_by_peer(silent));
  CHECK_FALSE(closed_by_peer(talker));
  // At 12 s the talker has been silent 7 s: closed, and its partial line is a line.
  CHECK(receiver.close_idle(12 * kSecond, 6 * kSecond, take) == 1);
  CHECK(taken == "a:1|c\nb:1|c\npart");
  CHECK(receiver.connections() == 0);
  CHECK(receiver.idle_closed() == 2);
  ::close(talker);
  ::close(silent);
}
