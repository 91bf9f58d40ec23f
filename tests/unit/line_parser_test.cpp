#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/line_parser.hpp"
#include "monitor/monitor.hpp"

using monitor::agent::for_each_line;
using monitor::agent::LineError;
using monitor::agent::LineParser;
using monitor::agent::ParsedLine;
using monitor::agent::parse_int64;

TEST_CASE("integer fields parse exactly to the ends of int64", "[parser]") {
  int64_t v = 0;
  const std::vector<std::pair<std::string, int64_t>> good = {
      {"0", 0}, {"-0", 0}, {"+7", 7}, {"-42", -42}, {"123456789012345678", 123456789012345678},
      {"-999999999999999999", -999999999999999999}, {"9223372036854775807", INT64_MAX},
      {"-9223372036854775808", INT64_MIN}, {"+9223372036854775807", INT64_MAX},
      {"0000000000000000000000001", 1}};
  for (const auto& [text, expected] : good) {
    INFO(text);
    REQUIRE(parse_int64(text, v));
    CHECK(v == expected);
  }
  for (const std::string text : {"", "+", "-", "+-5", "-+5", "--5", "1a", "a1", " 1", "1 ", "1.5",
                                 "9223372036854775808", "-9223372036854775809", "99999999999999999999",
                                 "+-9223372036854775807"}) {
    INFO(text);
    CHECK_FALSE(parse_int64(text, v));
  }
}

TEST_CASE("native lines carry all six fields", "[parser]") {
  LineParser parser(99);
  ParsedLine p;
  REQUIRE(parser.parse("Shop.Api Queue.Count 7 -42 SUM,MAX 1732176000123456789", p) == LineError::kOk);
  CHECK(p.service == "Shop.Api");
  CHECK(p.attr == "Queue.Count");
  CHECK(p.server_id == 7);
  CHECK(p.value == -42);
  CHECK(p.ops == (monitor::kSum | monitor::kMax));
  CHECK(p.time_ns == 1732176000123456789);

  REQUIRE(parser.parse("Shop.Api Queue.Count 0 1 255 0", p) == LineError::kOk);
  CHECK(p.ops == 255u);
  CHECK(p.time_ns == 0);  // stamped by the agent
}

TEST_CASE("statsd and DogStatsD lines map onto ops", "[parser]") {
  LineParser parser(99);
  ParsedLine p;
  SECTION("counter: SUM and COUNT; the sample rate goes with the value, to be scaled in the aggregate") {
    REQUIRE(parser.parse("shop.api.orders.placed:3|c|@0.5", p) == LineError::kOk);
    CHECK(p.service == "Shop.Api");
    CHECK(p.attr == "Orders.Placed");
    CHECK(p.value == 3);
    CHECK(p.rate_ppm == 500000);
    CHECK(p.ops == (monitor::kSum | monitor::kCount));
    CHECK(p.server_id == 99);
  }
  SECTION("gauge: LAST, MAX, MIN; a signed gauge is a delta") {
    REQUIRE(parser.parse("shop.api.queue_depth.now:17|g", p) == LineError::kOk);
    CHECK(p.kind == monitor::agent::LineKind::kGauge);
    REQUIRE(parser.parse("shop.api.queue_depth.now:-17|g", p) == LineError::kOk);
    CHECK(p.kind == monitor::agent::LineKind::kGaugeDelta);
    CHECK(p.attr == "QueueDepth.Now");
    CHECK(p.value == -17);
    CHECK(p.ops == (monitor::kLast | monitor::kMax | monitor::kMin));
  }
  SECTION("timers, histograms and distributions: HIST, AVG, MAX, MIN, COUNT") {
    for (const char* type : {"ms", "h", "d"}) {
      const std::string line = std::string("shop.api.request.latency:12.6|") + type;
      REQUIRE(parser.parse(line, p) == LineError::kOk);
      CHECK(p.value == 13);  // decimals round to nearest
      CHECK(p.ops == (monitor::kHist | monitor::kAvg | monitor::kMax | monitor::kMin | monitor::kCount));
    }
  }
  SECTION("tags: server_id, service; others ignored; T sets the time") {
    REQUIRE(parser.parse("request.latency:5|ms|#env:prod,server_id:12,service:shop.api|T1732176000", p) ==
            LineError::kOk);
    CHECK(p.service == "Shop.Api");
    CHECK(p.attr == "Request.Latency");
    CHECK(p.server_id == 12);
    CHECK(p.time_ns == 1732176000LL * 1'000'000'000);
  }
  SECTION("names already in our form pass unchanged") {
    REQUIRE(parser.parse("Shop.Api.Queue.TotalProcessCount:1|c", p) == LineError::kOk);
    CHECK(p.service == "Shop.Api");
    CHECK(p.attr == "Queue.TotalProcessCount");
  }
}

TEST_CASE("malformed lines are rejected with a reason", "[parser][failure]") {
  LineParser parser(0);
  ParsedLine p;
  const std::string oversized = "Shop.Api Queue.Count 1 1 SUM 0" + std::string(2000, ' ');
  const std::string binary("Shop.Api\0Queue.Count 1 1 SUM 0", 30);
  const std::vector<std::pair<std::string, LineError>> corpus = {
      {oversized, LineError::kTooLong},
      {binary, LineError::kBadFormat},
      {"\x01\x02\x03\xff", LineError::kBadFormat},
      {"Shop.Api Queue.Count 1 1 SUM", LineError::kBadFormat},      // truncated: 5 fields
      {"Shop.Api Queue.Count 1 1 SUM 0 9", LineError::kBadFormat},  // 7 fields
      {"Shop.Api  Queue.Count 1 1 SUM 0", LineError::kBadFormat},   // doubled space
      {"Shop.Api Queue.Count 1 1 SUM 0 ", LineError::kBadFormat},   // trailing space
      {"shop.api Queue.Count 1 1 SUM 0", LineError::kBadName},
      {"Shop.Api Queue 1 1 SUM 0", LineError::kBadName},
      {"Shop.Api Queue.Count x 1 SUM 0", LineError::kBadNumber},
      {"Shop.Api Queue.Count -1 1 SUM 0", LineError::kBadNumber},
      {"Shop.Api Queue.Count 1 99999999999999999999 SUM 0", LineError::kBadNumber},
      {"Shop.Api Queue.Count 1 1.5 SUM 0", LineError::kBadNumber},
      {"Shop.Api Queue.Count 1 1 SUM -4", LineError::kBadNumber},
      {"Shop.Api Queue.Count 1 1 TOTAL 0", LineError::kBadType},
      {"Shop.Api Queue.Count 1 1 0 0", LineError::kBadType},
      {"Shop.Api Queue.Count 1 1 512 0", LineError::kBadType},
      {"shop.api.hits:1", LineError::kBadFormat},        // no type
      {":1|c", LineError::kBadFormat},                   // no name
      {"shop.api.hits.total:|c", LineError::kBadNumber},
      {"shop.api.hits.total:abc|c", LineError::kBadNumber},
      {"shop.api.hits.total:nan|c", LineError::kBadNumber},
      {"shop.api.hits.total:1e400|c", LineError::kBadNumber},
      {"shop.api.hits.total:1|zz", LineError::kBadType},
      {"shop.api.hits.total:1|c|@0", LineError::kBadNumber},
      {"shop.api.hits.total:1|c|@2", LineError::kBadNumber},
      {"shop.api.hits.total:1|c|@x", LineError::kBadNumber},
      {"shop.api.hits.total:1|c|#server_id:-3", LineError::kBadNumber},
      {"shop.api.hits.total:1|c|#server_id:x", LineError::kBadNumber},
      {"shop.api.hits.total:1|c|T-5", LineError::kBadNumber},
      {"shop.api.hits:1|c", LineError::kNoService},  // no tag, rule or default; too short to carry one
      {"hits.total:1|c|#service:$$$", LineError::kBadName},
      {"shop.api.hits.total:1|c|@0.0000001", LineError::kBadNumber},
      {"shop.api.hits.total:|s", LineError::kBadNumber},
      {std::string("shop.api.") + std::string(80, 'a') + ".b:1|c", LineError::kBadName},  // too long after mapping
  };
  for (const auto& [line, expected] : corpus) {
    INFO("line: " << line);
    CHECK(parser.parse(line, p) == expected);
  }
}

TEST_CASE("random bytes never crash the parser", "[parser][failure]") {
  LineParser parser(0);
  ParsedLine p;
  std::mt19937_64 rng(Catch::rngSeed());
  const std::string alphabet = "Shop.Api Queue:|#@,T0123456789-+.cgmshd\n\x01\xff";
  // A tenth under ASan, where each line costs ~100 times more (263 s of the
  // sanitizer leg for this test alone): the line-parser fuzzer covers the
  // parser under ASan at length.
#if defined(__SANITIZE_ADDRESS__)
  constexpr int kLines = 20000;
#else
  constexpr int kLines = 200000;
#endif
  for (int i = 0; i < kLines; ++i) {
    std::string line(rng() % 80, ' ');
    for (auto& c : line) c = alphabet[rng() % alphabet.size()];
    const LineError e = parser.parse(line, p);
    // Parsing in place inside a larger buffer (as the agent does within a
    // datagram) must see exactly the line and nothing after it.
    const std::string buffer = line + "\n" + line + std::string(rng() % 70, ':');
    ParsedLine in_place;
    LineParser second(0);
    REQUIRE(second.parse(std::string_view(buffer.data(), line.size()), buffer.size(), in_place) == e);
    if (e == LineError::kOk) {
      REQUIRE(in_place.service == p.service);
      REQUIRE(in_place.attr == p.attr);
      REQUIRE(in_place.value == p.value);
      REQUIRE(in_place.ops == p.ops);
      REQUIRE(monitor::is_valid_name(p.service));
      REQUIRE(monitor::is_valid_name(p.attr));
      REQUIRE(p.ops != 0);
    }
  }
}

TEST_CASE("a datagram splits into lines skipping empty ones and CRs", "[parser]") {
  std::vector<std::string> lines;
  std::vector<size_t> readable;
  for_each_line("a\r\n\nb\nc", [&](std::string_view l, size_t r) {
    lines.emplace_back(l);
    readable.push_back(r);
  });
  CHECK(lines == std::vector<std::string>{"a", "b", "c"});
  CHECK(readable == std::vector<size_t>{7, 3, 1});
  lines.clear();
  const std::string long_datagram = std::string(40, 'x') + "\n" + std::string(20, 'y') + "\n\n" + std::string(17, 'z');
  for_each_line(long_datagram, [&](std::string_view l, size_t) { lines.emplace_back(l); });
  CHECK(lines == std::vector<std::string>{std::string(40, 'x'), std::string(20, 'y'), std::string(17, 'z')});
}

TEST_CASE("the vectorised name check agrees with is_valid_name", "[parser][property]") {
  LineParser parser(0);
  ParsedLine p;
  std::mt19937_64 rng(Catch::rngSeed());
  const std::string alphabet = "AZaz09..._-:";
  auto random_name = [&] {
    std::string name(rng() % 70, 'A');
    for (auto& c : name) c = alphabet[rng() % alphabet.size()];
    if (rng() % 3 == 0 && !name.empty()) name[0] = 'S';
    return name;
  };
  int accepted = 0;
  for (int i = 0; i < 100000; ++i) {
    const std::string service = rng() % 2 ? random_name() : "Shop.Api";
    const std::string attr = rng() % 2 ? random_name() : "Queue.Count";
    if (service.find(':') != std::string::npos || attr.find(':') != std::string::npos) continue;  // statsd form
    const std::string line = service + " " + attr + " 1 1 SUM 0";
    const bool expected = monitor::is_valid_name(service) && monitor::is_valid_name(attr);
    const LineError e = parser.parse(line, p);
    INFO("line: " << line);
    if (expected) {
      REQUIRE(e == LineError::kOk);
      ++accepted;
    } else if (!service.empty() && !attr.empty() && service.find(' ') == std::string::npos) {
      REQUIRE(e != LineError::kOk);
    }
  }
  CHECK(accepted > 1000);
}
