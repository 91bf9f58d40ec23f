// One suite, both backends: every case runs on file: and on a real etcd.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "registry/placement.hpp"
#include "registry/file_registry.hpp"
#include "support/catch_result.hpp"
#include "support/child_process.hpp"
#include "support/etcd_server.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"
#include "registry/etcd_gateway.hpp"
#include "registry/etcd_reply.hpp"

using namespace monitor::registry;
using namespace std::chrono_literals;
using boost::json::value;
using monitor::test::TempDir;
using monitor::test::wait_until;

namespace {

struct FileBackend {
  TempDir dir;
  std::string address() const { return "file:" + dir.path() + "/registry"; }
};

struct EtcdBackend {
  monitor::test::EtcdServer etcd;
  std::string address() const { return etcd.address(); }
};

std::unique_ptr<Registry> open(const std::string& address) {
  auto r = open_registry(address);
  REQUIRE(r.has_value());
  return std::move(*r);
}

// What a watch reported, kept for the test thread.
class Seen {
 public:
  Registry::OnChange callback() {
    return [this](const std::string& kind, const std::vector<Entry>& entries) {
      std::vector<std::string> names;
      for (const auto& e : entries) names.push_back(e.name + "=" + boost::json::serialize(e.value));
      std::lock_guard lock(mutex_);
      reports_.push_back(kind + ":" + fmt_list(names));
    };
  }
  std::vector<std::string> reports() const {
    std::lock_guard lock(mutex_);
    return reports_;
  }
  std::string last() const {
    std::lock_guard lock(mutex_);
    return reports_.empty() ? "" : reports_.back();
  }
  bool wait_for_last(const std::string& expected) const {
    return wait_until([&] { return last() == expected; }, 10s);
  }

 private:
  static std::string fmt_list(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) {
      out.append(out.empty() ? "" : ",");
      out.append(n);
    }
    return "[" + out + "]";
  }
  mutable std::mutex mutex_;
  std::vector<std::string> reports_;
};

}  // namespace

TEMPLATE_TEST_CASE("static entries are written, read, listed and removed", "[registry]", FileBackend, EtcdBackend) {
  TestType backend;
  auto reg = open(backend.address());
  REQUIRE(reg->put("services", "Shop.Api", boost::json::parse(R"({"id": 1, "attrs": {"Orders.Placed": 1}})")));
  REQUIRE(reg->put("services", "Pay.Gateway", boost::json::parse(R"({"id": 2, "attrs": {}})")));
  auto got = reg->get("services", "Shop.Api");
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK((*got)->value.at("id").as_int64() == 1);
  CHECK_FALSE((*got)->live);
  CHECK((*got)->version == 1);

  auto all = reg->list("services");
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].name == "Pay.Gateway");  // sorted by name
  CHECK((*all)[1].name == "Shop.Api");

  REQUIRE(reg->put("services", "Shop.Api", value(7)));  // replace
  CHECK((*reg->get("services", "Shop.Api"))->value == value(7));
  CHECK((*reg->get("services", "Shop.Api"))->version == 2);
  REQUIRE(reg->remove("services", "Shop.Api"));
  REQUIRE(reg->remove("services", "Shop.Api"));  // absent: fine
  CHECK_FALSE(reg->get("services", "Shop.Api")->has_value());
  CHECK(reg->list("no-such-kind")->empty());
  // A kind is not a prefix of another: "service" does not list "services".
  CHECK(reg->list("service")->empty());
}

TEMPLATE_TEST_CASE("a live entry vanishes when its owner stops refreshing it", "[registry]", FileBackend,
                   EtcdBackend) {
  TestType backend;
  auto reg = open(backend.address());
  const auto address = boost::json::parse(R"({"address": "127.0.0.1:7300"})");
  REQUIRE(reg->put_live("judgers", "judger-1", address, 2s));
  REQUIRE(reg->get("judgers", "judger-1")->has_value());
  CHECK((*reg->get("judgers", "judger-1"))->live);
  const auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - started < 3s) {  // refreshed well within its TTL: stays
    std::this_thread::sleep_for(300ms);
    REQUIRE(reg->put_live("judgers", "judger-1", address, 2s));
    REQUIRE(reg->list("judgers")->size() == 1);
  }
  // The owner stops refreshing: gone within the TTL (and etcd's lease granularity).
  CHECK(wait_until([&] { return !reg->get("judgers", "judger-1")->has_value(); }, 5s));
  CHECK(reg->list("judgers")->empty());
  // The owner comes back: the entry is created again.
  REQUIRE(reg->put_live("judgers", "judger-1", address, 2s));
  CHECK(reg->get("judgers", "judger-1")->has_value());
}

TEMPLATE_TEST_CASE("a live entry of a killed process expires", "[registry][crash]", FileBackend, EtcdBackend) {
  TestType backend;
  const std::string address = backend.address();
  auto owner = monitor::test::ChildProcess::fork_run([&] {
    auto reg = open_registry(address);
    if (!reg) return 1;
    for (;;) {
      if (!(*reg)->put_live("proxies", "bonnie-a", value("127.0.0.1:7200"), 2s)) return 2;
      std::this_thread::sleep_for(300ms);
    }
  });
  auto reg = open(address);
  REQUIRE(wait_until([&] { return reg->get("proxies", "bonnie-a")->has_value(); }, 5s));
  owner.signal(SIGKILL);
  REQUIRE(owner.wait_for(5s) == 128 + SIGKILL);
  CHECK(wait_until([&] { return !reg->get("proxies", "bonnie-a")->has_value(); }, 5s));
}

TEMPLATE_TEST_CASE("a stopping owner's remove() takes its live entry at once", "[registry]", FileBackend,
                   EtcdBackend) {
  TestType backend;
  auto reg = open(backend.address());
  REQUIRE(reg->put_live("judgers", "judger-1", value(1), 30s));
  REQUIRE(reg->remove("judgers", "judger-1"));
  CHECK_FALSE(reg->get("judgers", "judger-1")->has_value());
  REQUIRE(reg->put_live("judgers", "judger-1", value(2), 30s));  // and can register again
  CHECK((*reg->get("judgers", "judger-1"))->value == value(2));
}

TEMPLATE_TEST_CASE("commit writes all or nothing, only if every version matches", "[registry]", FileBackend,
                   EtcdBackend) {
  TestType backend;
  auto reg = open(backend.address());
  // Create-if-absent.
  auto created = reg->commit({{"services", "Shop.Api", 0}}, {{"services", "Shop.Api", value(1)}, {"counters", "ids", value(2)}});
  REQUIRE(created.has_value());
  CHECK(*created);
  auto again = reg->commit({{"services", "Shop.Api", 0}}, {{"services", "Shop.Api", value(99)}, {"counters", "ids", value(99)}});
  REQUIRE(again.has_value());
  CHECK_FALSE(*again);
  CHECK((*reg->get("services", "Shop.Api"))->value == value(1));
  CHECK((*reg->get("counters", "ids"))->value == value(2));  // nothing of a failed commit
  // Compare-and-set on the version read.
  const int64_t version = (*reg->get("counters", "ids"))->version;
  CHECK(*reg->commit({{"counters", "ids", version}}, {{"counters", "ids", value(3)}}));
  CHECK_FALSE(*reg->commit({{"counters", "ids", version}}, {{"counters", "ids", value(4)}}));  // stale
  CHECK((*reg->get("counters", "ids"))->value == value(3));
  // Removal inside a commit.
  CHECK(*reg->commit({{"services", "Shop.Api", 1}}, {{"services", "Shop.Api", std::nullopt}}));
  CHECK_FALSE(reg->get("services", "Shop.Api")->has_value());
}

TEMPLATE_TEST_CASE("two processes allocating ids by compare-and-set never take one twice", "[registry]",
                   FileBackend, EtcdBackend) {
  TestType backend;
  const std::string address = backend.address();
  constexpr int kPerProcess = 40;
  std::vector<monitor::test::ChildProcess> allocators;
  for (int p = 0; p < 2; ++p) {
    allocators.push_back(monitor::test::ChildProcess::fork_run([&, p] {
      auto reg = open_registry(address);
      if (!reg) return 1;
      for (int i = 0; i < kPerProcess;) {
        auto counter = (*reg)->get("counters", "ids");
        if (!counter) return 2;
        const int64_t version = *counter ? (*counter)->version : 0;
        const int64_t next = *counter ? (*counter)->value.as_int64() : 1;
        const std::string owner = fmt::format("p{}-{}", p, i), id = fmt::format("id-{}", next);
        auto done = (*reg)->commit({{"counters", "ids", version}, {"ids", id, 0}},
                                   {{"counters", "ids", value(next + 1)}, {"ids", id, value(owner)}});
        if (!done) return 3;
        if (*done) ++i;
      }
      return 0;
    }));
  }
  for (auto& a : allocators) REQUIRE(a.wait_for(60s) == 0);
  auto reg = open(address);
  auto ids = reg->list("ids");
  REQUIRE(ids.has_value());
  std::set<std::string> owners;
  for (const auto& e : *ids) owners.insert(std::string(e.value.as_string()));
  CHECK(ids->size() == 2 * kPerProcess);     // every allocation has an id of its own...
  CHECK(owners.size() == 2 * kPerProcess);   // ...and no id was handed to two
  CHECK((*reg->get("counters", "ids"))->value.as_int64() == 2 * kPerProcess + 1);
}

TEMPLATE_TEST_CASE("a watch reports additions, changes, removals and expiry but not refreshes", "[registry]",
                   FileBackend, EtcdBackend) {
  TestType backend;
  auto reg = open(backend.address());
  REQUIRE(reg->put("services", "Shop.Api", value(1)));
  Seen seen;
  auto watch = reg->watch({"judgers", "services"}, seen.callback(), {}, 50ms);
  REQUIRE(wait_until([&] { return seen.reports().size() >= 2; }, 10s));  // both kinds, once read
  CHECK(seen.reports()[0] == "judgers:[]");
  CHECK(seen.reports()[1] == "services:[Shop.Api=1]");
  REQUIRE(reg->put_live("judgers", "j1", value(1), 2s));
  REQUIRE(seen.wait_for_last("judgers:[j1=1]"));
  for (int i = 0; i < 3; ++i) REQUIRE(reg->put_live("judgers", "j1", value(1), 2s));  // refreshes only
  REQUIRE(reg->put_live("judgers", "j1", value(2), 2s));  // a new value
  REQUIRE(seen.wait_for_last("judgers:[j1=2]"));
  REQUIRE(reg->put("judgers", "j2", value(3)));
  REQUIRE(seen.wait_for_last("judgers:[j1=2,j2=3]"));
  REQUIRE(reg->remove("judgers", "j2"));
  REQUIRE(seen.wait_for_last("judgers:[j1=2]"));
  REQUIRE(reg->put("other", "x", value(0)));  // a kind nobody follows: not reported
  REQUIRE(seen.wait_for_last("judgers:[]"));  // j1 expires
  const std::vector<std::string> expected = {"judgers:[]", "services:[Shop.Api=1]", "judgers:[j1=1]", "judgers:[j1=2]",
                                             "judgers:[j1=2,j2=3]", "judgers:[j1=2]", "judgers:[]"};
  CHECK(seen.reports() == expected);
}

TEMPLATE_TEST_CASE("bad names are refused, never fatal", "[registry][failure]", FileBackend, EtcdBackend) {
  TestType backend;
  auto reg = open(backend.address());
  for (const char* bad : {"", ".hidden", "a/b", "../x", "sp ace", "x\n"}) {
    INFO(bad);
    CHECK(reg->put("services", bad, value(1)).error() == RegistryErrc::kBadName);
    CHECK(reg->put(bad, "x", value(1)).error() == RegistryErrc::kBadName);
    CHECK(reg->commit({}, {{"services", bad, value(1)}}).error() == RegistryErrc::kBadName);
  }
  CHECK(reg->put("services", std::string(129, 'a'), value(1)).error() == RegistryErrc::kBadName);
  CHECK(reg->list("services")->empty());
}

TEST_CASE("file: entries that do not parse are skipped and counted", "[registry][failure]") {
  TempDir dir;
  auto reg = open("file:" + dir.path() + "/registry");
  REQUIRE(reg->put("services", "Good.One", value(1)));
  for (const auto& [file, text] : std::vector<std::pair<std::string, std::string>>{
           {"Broken.Json", "{not json"}, {"No.Value", R"({"id": 1})"}, {"Bad.Expiry", R"({"value": 1, "expires_at_ns": "soon"})"},
           {"Array", "[1, 2]"}, {"Empty", ""}}) {
    std::ofstream(dir.path() + "/registry/services/" + file + ".json") << text;
  }
  std::ofstream(dir.path() + "/registry/services/stray.txt") << "ignored";
  auto all = reg->list("services");
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 1);
  CHECK((*all)[0].name == "Good.One");
  CHECK(reg->bad_entries() == 5);
  CHECK(reg->get("services", "Broken.Json").error() == RegistryErrc::kBadEntry);
  CHECK_FALSE(open_registry("zookeeper:x").has_value());
  CHECK_FALSE(open_registry("etcd:").has_value());
  CHECK_FALSE(open_registry("etcd:nohost").has_value());
}

TEST_CASE("file: expired live files are cleaned up by a watch", "[registry]") {
  TempDir dir;
  auto reg = open("file:" + dir.path() + "/registry");
  REQUIRE(reg->put_live("judgers", "gone", value(1), 100ms));
  const std::string file = dir.path() + "/registry/judgers/gone.json";
  REQUIRE(std::ifstream(file).good());
  Seen seen;
  auto watch = reg->watch({"judgers"}, seen.callback(), {}, 20ms);
  CHECK(wait_until([&] { return !std::ifstream(file).good(); }, 5s));
}

TEST_CASE("file: readers never see a half-written entry while writers replace it", "[registry]") {
  TempDir dir;
  auto reg = open("file:" + dir.path() + "/registry");
  REQUIRE(reg->put("services", "Shop.Api", boost::json::parse(R"({"n": 0, "pad": ""})")));
  std::vector<monitor::test::ChildProcess> writers;
  for (int w = 0; w < 2; ++w) {
    writers.push_back(monitor::test::ChildProcess::fork_run([&, w] {
      auto r = open_registry("file:" + dir.path() + "/registry");
      if (!r) return 1;
      const std::string pad(4000, static_cast<char>('a' + w));
      for (int i = 0; i < 300; ++i) {
        boost::json::object v{{"n", i}, {"pad", pad}};
        if (!(*r)->put("services", "Shop.Api", v)) return 2;
      }
      return 0;
    }));
  }
  for (int i = 0; i < 300; ++i) {
    auto got = reg->get("services", "Shop.Api");
    REQUIRE(got.has_value());  // never kBadEntry: rename is atomic
    REQUIRE(got->has_value());
  }
  for (auto& w : writers) CHECK(w.wait_for(30s) == 0);
  CHECK(reg->bad_entries() == 0);
  CHECK((*reg->get("services", "Shop.Api"))->version == 601);  // every write counted once under the lock
}

TEST_CASE("etcd: a value that is not JSON is skipped and counted", "[registry][failure]") {
  monitor::test::EtcdServer etcd;
  auto reg = open(etcd.address());
  REQUIRE(reg->put("services", "Good.One", value(1)));
  etcd.post("/v3/kv/put", R"({"key": ")" + b64("/monitor/services/Bad.One") + R"(", "value": ")" +
                              b64("{not json") + R"("})");
  auto all = reg->list("services");
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 1);
  CHECK(reg->bad_entries() == 1);
  CHECK(reg->get("services", "Bad.One").error() == RegistryErrc::kBadEntry);
}

TEST_CASE("etcd: unreachable is an error, not a hang", "[registry][failure]") {
  const int port = monitor::test::free_port();
  auto reg = open("etcd:127.0.0.1:" + std::to_string(port));
  CHECK(reg->get("services", "Shop.Api").error() == RegistryErrc::kUnreachable);
  CHECK(reg->put("services", "Shop.Api", value(1)).error() == RegistryErrc::kUnreachable);
  CHECK(reg->commit({}, {{"services", "Shop.Api", value(1)}}).error() == RegistryErrc::kUnreachable);
}

TEST_CASE("etcd: a watch resumes after a restart, re-reads after a compaction and after data loss", "[registry]") {
  monitor::test::EtcdServer etcd;
  auto reg = open(etcd.address());
  REQUIRE(reg->put("services", "A.One", value(1)));
  Seen seen;
  std::atomic<int> unreachable{0}, reachable{0};
  auto watch = reg->watch({"services"}, seen.callback(), [&](bool up) { (up ? reachable : unreachable)++; });
  REQUIRE(seen.wait_for_last("services:[A.One=1]"));

  SECTION("restart: changes made while it was down are seen once it is back") {
    etcd.kill();
    REQUIRE(wait_until([&] { return unreachable.load() == 1; }, 10s));
    etcd.start();
    REQUIRE(reg->put("services", "B.Two", value(2)));
    CHECK(seen.wait_for_last("services:[A.One=1,B.Two=2]"));
    CHECK(wait_until([&] { return reachable.load() == 1; }, 10s));
  }
  SECTION("compaction: the revision to resume from is gone") {
    etcd.kill();
    REQUIRE(wait_until([&] { return unreachable.load() == 1; }, 10s));
    // Up on another port the watch does not know: change, then compact past it.
    const int elsewhere = monitor::test::free_port();
    etcd.start(elsewhere);
    auto other = open("etcd:127.0.0.1:" + std::to_string(elsewhere));
    REQUIRE(other->remove("services", "A.One"));
    REQUIRE(other->put("services", "C.Three", value(3)));
    REQUIRE(other->put("services", "C.Three", value(4)));
    const int64_t version = (*other->get("services", "C.Three"))->version;
    REQUIRE(version == 2);
    const std::string status = etcd.post("/v3/kv/range", R"({"key": "AA=="})");
    const auto revision = boost::json::parse(status).at("header").at("revision").as_string();
    REQUIRE(!etcd.post("/v3/kv/compaction", R"({"revision": ")" + std::string(revision) + R"(", "physical": true})").empty());
    etcd.start();  // back where the watch looks
    CHECK(seen.wait_for_last("services:[C.Three=4]"));
  }
  SECTION("data loss: etcd comes back empty; live entries are registered again") {
    std::atomic<bool> refreshing{true};
    std::thread owner([&] {
      auto own = open_registry(etcd.address());
      while (refreshing) {
        (void)(*own)->put_live("services", "Live.Entry", value(5), 2s);
        std::this_thread::sleep_for(200ms);
      }
    });
    REQUIRE(seen.wait_for_last("services:[A.One=1,Live.Entry=5]"));
    etcd.wipe();
    etcd.start();
    // The static entry is gone with the data; the live one is back.
    CHECK(seen.wait_for_last("services:[Live.Entry=5]"));
    refreshing = false;
    owner.join();
  }
}

TEST_CASE("issue 22: one lookup of the judgers that held a service over a range, for queries and split minutes alike",
          "[registry][issue22]") {
  using monitor::registry::judgers_holding;
  using Names = std::vector<std::string>;
  // a until 600, b from 600 until 1230, c since 1230.
  const auto assignment = boost::json::parse(
      R"({"judger":"c","history":[{"judger":"a","until_s":600},{"judger":"b","until_s":1230}]})");
  CHECK(judgers_holding(assignment, 0) == Names{"c", "b", "a"});
  CHECK(judgers_holding(assignment, 1200) == Names{"c", "b"});
  CHECK(judgers_holding(assignment, 1260) == Names{"c"});
  // A minute split by a move: both holders; the minutes either side: one.
  CHECK(judgers_holding(assignment, 1200, 1259) == Names{"c", "b"});
  CHECK(judgers_holding(assignment, 1140, 1199) == Names{"b"});
  CHECK(judgers_holding(assignment, 540, 599) == Names{"a"});
  // A move on a minute's edge: the judger left may still get a few seconds
  // from a Bonnie that has not seen the move, so it counts at both ends.
  CHECK(judgers_holding(assignment, 600, 659) == Names{"b", "a"});
  CHECK(judgers_holding(assignment, 0, 59) == Names{"a"});
  // Not an assignment, or none yet.
  CHECK(judgers_holding(boost::json::value("x"), 0).empty());
  CHECK(judgers_holding(boost::json::parse(R"({"judger":"a"})"), 0) == Names{"a"});
}

// Found by registry_reply_fuzz: the decoder writes a short last group's bytes
// past what decoded_size() counts, which overflowed the heap by one or two
// bytes and left the value's last byte zero.
TEST_CASE("etcd replies: base64 with a short last group decodes whole, and what is not base64 is refused", "[registry][failure]") {
  using monitor::registry::unb64;
  CHECK(unb64("YWJjZA==") == std::optional<std::string>("abcd"));
  CHECK(unb64("YWJjZA") == std::optional<std::string>("abcd"));
  CHECK(unb64("YWJjZGU") == std::optional<std::string>("abcde"));
  CHECK(unb64("eyJpZCI6MX0") == std::optional<std::string>("{\"id\":1}"));
  CHECK(unb64("") == std::optional<std::string>(""));
  CHECK_FALSE(unb64("YW*jZA=="));
  CHECK_FALSE(unb64("YWJjZA=x"));
}

TEST_CASE("etcd replies: a watch stream's lines are taken whole, a partial line is kept, an error line ends it", "[registry][failure]") {
  using namespace monitor::registry;
  std::vector<int64_t> revisions;
  const auto on_result = [&](const boost::json::object& result) {
    revisions.push_back(gateway_int(result.at("header").as_object(), "revision"));
    return true;
  };
  std::string text = "{\"result\":{\"header\":{\"revision\":\"5\"}}}\n{\"result\":{\"header\":{\"rev";
  std::string error;
  CHECK(take_stream_messages(text, 1024, on_result, error) == StreamRead::kMore);
  CHECK(revisions == std::vector<int64_t>{5});
  text += "ision\":\"6\"}}}\n";
  CHECK(take_stream_messages(text, 1024, on_result, error) == StreamRead::kMore);
  CHECK(revisions == std::vector<int64_t>{5, 6});
  CHECK(text.empty());
  text = "{\"error\":{\"message\":\"etcdserver: permission denied\"}}\n";
  CHECK(take_stream_messages(text, 1024, on_result, error) == StreamRead::kErrorMessage);
  CHECK(error.find("permission denied") != std::string::npos);
  text = "[1,2]\n";
  CHECK(take_stream_messages(text, 1024, on_result, error) == StreamRead::kNotAMessage);
  text = std::string(2000, ' ');
  CHECK(take_stream_messages(text, 1024, on_result, error) == StreamRead::kTooLong);
}
