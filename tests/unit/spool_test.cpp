#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/catch_result.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"
#include "wire/spool.hpp"

using monitor::test::TempDir;
using monitor::wire::Spool;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<Spool> open_spool(const TempDir& dir, Spool::Options options = {}) {
  auto s = Spool::open(dir.path() + "/spool", options);
  REQUIRE(s.has_value());
  return std::move(*s);
}

std::string record(int i) { return "batch-" + std::to_string(i) + std::string(static_cast<size_t>(i % 7) * 10, 'x'); }

std::vector<std::string> drain(Spool& spool) {
  std::vector<std::string> out;
  while (true) {
    auto f = spool.next();
    REQUIRE(f.has_value());
    if (!*f) break;
    out.push_back((*f)->body);
    REQUIRE(spool.pop(**f).has_value());
  }
  return out;
}

std::vector<fs::path> segments(const TempDir& dir) {
  std::vector<fs::path> out;
  for (const auto& f : fs::directory_iterator(dir.path() + "/spool")) {
    if (f.path().extension() == ".seg") out.push_back(f.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("records come back oldest first across segments", "[spool]") {
  TempDir dir;
  auto spool = open_spool(dir, {1 << 20, 256});  // small segments: many rollovers
  for (int i = 0; i < 100; ++i) REQUIRE(spool->append(record(i)).has_value());
  CHECK(spool->records() == 100);
  CHECK(segments(dir).size() > 10);
  const auto got = drain(*spool);
  REQUIRE(got.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(got[static_cast<size_t>(i)] == record(i));
  CHECK(spool->records() == 0);
  CHECK(segments(dir).size() <= 2);  // consumed segments are deleted
}

TEST_CASE("a reopened spool resumes after the last pop", "[spool]") {
  TempDir dir;
  {
    auto spool = open_spool(dir, {1 << 20, 300});
    for (int i = 0; i < 30; ++i) REQUIRE(spool->append(record(i)).has_value());
    for (int i = 0; i < 12; ++i) {
      auto f = spool->next();
      REQUIRE(f.has_value());
      REQUIRE(spool->pop(**f).has_value());
    }
    REQUIRE(spool->next().has_value());  // read but not popped: delivered again after a restart
  }
  auto spool = open_spool(dir, {1 << 20, 300});
  CHECK(spool->records() == 18);
  REQUIRE(spool->append(record(30)).has_value());
  const auto got = drain(*spool);
  REQUIRE(got.size() == 19);
  CHECK(got.front() == record(12));
  CHECK(got.back() == record(30));
}

TEST_CASE("a record torn by a crash is cut when the spool opens", "[spool][failure][crash]") {
  TempDir dir;
  {
    auto spool = open_spool(dir);
    for (int i = 0; i < 5; ++i) REQUIRE(spool->append(record(i)).has_value());
  }
  const auto files = segments(dir);
  REQUIRE_FALSE(files.empty());
  fs::path last;
  for (const auto& f : files) {
    if (fs::file_size(f) > 0) last = f;
  }
  std::ofstream(last, std::ios::app | std::ios::binary) << std::string("\x20\x00\x00\x00\x01\x02", 6);  // half a header
  auto spool = open_spool(dir);
  CHECK(spool->corrupt_records() == 1);
  CHECK(spool->records() == 5);
  REQUIRE(spool->append(record(5)).has_value());
  const auto got = drain(*spool);
  REQUIRE(got.size() == 6);
  CHECK(got.back() == record(5));
}

TEST_CASE("a damaged record costs the rest of its segment, not the spool", "[spool][failure]") {
  TempDir dir;
  {
    auto spool = open_spool(dir, {1 << 20, 200});
    for (int i = 0; i < 20; ++i) REQUIRE(spool->append(record(i)).has_value());
  }
  const auto files = segments(dir);
  REQUIRE(files.size() >= 3);
  {
    std::fstream f(files[1], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x7F');  // a body byte: the CRC no longer matches
  }
  auto spool = open_spool(dir, {1 << 20, 200});
  CHECK(spool->corrupt_records() == 1);  // the damaged segment is cut at the bad record
  const auto got = drain(*spool);
  CHECK(got.size() < 20);
  CHECK(got.front() == record(0));
  CHECK(got.back() == record(19));
  for (size_t i = 1; i < got.size(); ++i) CHECK(std::stoi(got[i].substr(6)) > std::stoi(got[i - 1].substr(6)));  // in order
}

TEST_CASE("a full spool drops its oldest records and counts them", "[spool][failure]") {
  TempDir dir;
  auto spool = open_spool(dir, {2000, 400});
  for (int i = 0; i < 200; ++i) REQUIRE(spool->append(record(i)).has_value());
  CHECK(spool->bytes() <= 2000 + 400);
  CHECK(spool->dropped_records() > 0);
  CHECK(spool->records() + spool->dropped_records() == 200);
  const auto got = drain(*spool);
  REQUIRE(got.size() == 200 - spool->dropped_records());
  CHECK(got.back() == record(199));  // the newest survive
  for (size_t i = 1; i < got.size(); ++i) {
    CHECK(std::stoi(got[i].substr(6)) == std::stoi(got[i - 1].substr(6)) + 1);  // contiguous
  }
}

TEST_CASE("a full disk fails the append with an error and leaves the spool usable", "[spool][failure]") {
  TempDir dir;
  auto child = monitor::test::ChildProcess::fork_run([&] {
    signal(SIGXFSZ, SIG_IGN);  // writes past the limit fail with EFBIG instead of killing us
    rlimit limit{4096, 4096};
    setrlimit(RLIMIT_FSIZE, &limit);
    auto opened = Spool::open(dir.path() + "/spool", {1 << 20, 1 << 20});
    if (!opened) return 1;
    Spool& spool = **opened;
    int failures = 0;
    const std::string big(500, 'z');
    for (int i = 0; i < 20; ++i) failures += spool.append(big).has_value() ? 0 : 1;
    if (failures == 0) return 2;  // the limit must have bitten
    int read_back = 0;
    while (true) {
      auto f = spool.next();
      if (!f || !*f) break;
      if ((*f)->body != big) return 3;  // no torn record is ever returned
      ++read_back;
      if (!spool.pop(**f)) break;
    }
    return read_back == 20 - failures ? 0 : 4;
  });
  CHECK(child.wait_for(std::chrono::seconds(20)) == 0);
}

// Issue 7, item 3: append() dropping the front segment while front()'s record
// is out used to make the next pop() consume a record that was never sent.
TEST_CASE("issue 7: an overflow while a record is out never makes pop consume an unsent one, and drops count once",
          "[spool][issue7][failure]") {
  TempDir dir;
  auto spool = open_spool(dir, {2000, 400});  // a few records a segment, a few segments in all
  int appended = 0;
  for (; appended < 10; ++appended) REQUIRE(spool->append(record(appended)).has_value());
  auto out = spool->next();
  REQUIRE(out.has_value());
  REQUIRE(out->has_value());
  const Spool::Entry sent = **out;
  CHECK(sent.body == record(0));
  // While record 0 is in flight, the spool overflows and drops its segment.
  for (; appended < 60; ++appended) REQUIRE(spool->append(record(appended)).has_value());
  REQUIRE(spool->dropped_records() > 0);

  std::vector<std::string> delivered;
  SECTION("the record in flight is acknowledged") {
    REQUIRE(spool->pop(sent).has_value());
    delivered.push_back(sent.body);
  }
  SECTION("the record in flight is not delivered") {
    const uint64_t dropped_before = spool->dropped_records();
    spool->unsent(sent);
    CHECK(spool->dropped_records() == dropped_before + 1);  // lost now, counted now
  }
  for (const auto& body : drain(*spool)) delivered.push_back(body);
  // Every record is delivered or counted as dropped, exactly once, in order.
  CHECK(delivered.size() + spool->dropped_records() == static_cast<size_t>(appended));
  for (size_t i = 1; i < delivered.size(); ++i) {
    CHECK(std::stoi(delivered[i].substr(6)) > std::stoi(delivered[i - 1].substr(6)));
  }
  CHECK(delivered.back() == record(appended - 1));
}

TEST_CASE("issue 7: pop of a record next() did not hand out consumes nothing", "[spool][issue7][failure]") {
  TempDir dir;
  auto spool = open_spool(dir);
  for (int i = 0; i < 3; ++i) REQUIRE(spool->append(record(i)).has_value());
  auto first = spool->next();
  REQUIRE(first.has_value());
  Spool::Entry forged = **first;
  forged.offset += 1;
  CHECK_FALSE(spool->pop(forged).has_value());
  CHECK(spool->records() == 3);
  REQUIRE(spool->pop(**first).has_value());
  CHECK(drain(*spool) == std::vector<std::string>{record(1), record(2)});
}

// Issue 22: a sender keeps a window of spooled records in flight, not one.
TEST_CASE("issue 22: records handed out as a window across segments are popped in order, or all come back", "[spool][issue22]") {
  TempDir dir;
  auto spool = open_spool(dir, {1 << 20, 200});  // a record or two a segment: the window spans segments
  for (int i = 0; i < 20; ++i) REQUIRE(spool->append(record(i)).has_value());
  std::vector<Spool::Entry> window;
  for (int i = 0; i < 8; ++i) {
    auto e = spool->next();
    REQUIRE(e.has_value());
    REQUIRE(e->has_value());
    CHECK((*e)->body == record(i));
    window.push_back(**e);
  }
  CHECK(spool->out() == 8);
  CHECK_FALSE(spool->pop(window[1]).has_value());  // not the oldest out: nothing consumed
  CHECK(spool->records() == 20);
  for (int i = 0; i < 3; ++i) REQUIRE(spool->pop(window[static_cast<size_t>(i)]).has_value());
  CHECK(spool->records() == 17);

  SECTION("the link fails: the rest of the window is handed out again, in order") {
    spool->unsent(window[3]);
    CHECK(spool->out() == 0);
    const auto rest = drain(*spool);
    REQUIRE(rest.size() == 17);
    for (size_t i = 0; i < rest.size(); ++i) CHECK(rest[i] == record(static_cast<int>(i) + 3));
  }
  SECTION("a restart resumes after the last pop, not after the window") {
    spool.reset();
    auto reopened = open_spool(dir, {1 << 20, 200});
    CHECK(reopened->records() == 17);
    const auto rest = drain(*reopened);
    REQUIRE(rest.size() == 17);
    CHECK(rest.front() == record(3));
  }
  SECTION("the window keeps reading ahead while it is acknowledged") {
    std::vector<std::string> delivered;
    for (size_t i = 3; i < window.size(); ++i) {
      REQUIRE(spool->pop(window[i]).has_value());
      delivered.push_back(window[i].body);
    }
    for (const auto& body : drain(*spool)) delivered.push_back(body);
    REQUIRE(delivered.size() == 17);
    for (size_t i = 0; i < delivered.size(); ++i) CHECK(delivered[i] == record(static_cast<int>(i) + 3));
    CHECK(spool->records() == 0);
  }
}

TEST_CASE("issue 22: an overflow under a window of records out counts each record once, delivered or dropped",
          "[spool][issue22][failure]") {
  TempDir dir;
  auto spool = open_spool(dir, {2000, 400});
  int appended = 0;
  for (; appended < 10; ++appended) REQUIRE(spool->append(record(appended)).has_value());
  std::vector<Spool::Entry> window;
  for (int i = 0; i < 6; ++i) window.push_back(**spool->next());
  for (; appended < 80; ++appended) REQUIRE(spool->append(record(appended)).has_value());  // drops the window's segments
  REQUIRE(spool->dropped_records() > 0);

  std::vector<std::string> delivered;
  SECTION("the window is acknowledged") {
    for (const auto& e : window) {
      REQUIRE(spool->pop(e).has_value());
      delivered.push_back(e.body);
    }
  }
  SECTION("the window is not delivered") { spool->unsent(window.front()); }
  for (const auto& body : drain(*spool)) delivered.push_back(body);
  CHECK(delivered.size() + spool->dropped_records() == static_cast<size_t>(appended));
  for (size_t i = 1; i < delivered.size(); ++i) {
    CHECK(std::stoi(delivered[i].substr(6)) > std::stoi(delivered[i - 1].substr(6)));
  }
  CHECK(delivered.back() == record(appended - 1));
}
