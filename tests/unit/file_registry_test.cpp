#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "common/registry/file_registry.hpp"
#include "common/registry/registry_watcher.hpp"
#include "support/catch_result.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace monitor::registry;
using namespace std::chrono_literals;
using boost::json::value;
using monitor::test::TempDir;

namespace {
std::unique_ptr<Registry> open(const TempDir& dir) {
  auto r = open_registry("file:" + dir.path() + "/registry");
  REQUIRE(r.has_value());
  return std::move(*r);
}
}  // namespace

TEST_CASE("static entries are written, read, listed and removed", "[registry]") {
  TempDir dir;
  auto reg = open(dir);
  REQUIRE(reg->put("services", "Shop.Api", boost::json::parse(R"({"id": 1, "attrs": {"Orders.Placed": 1}})")));
  REQUIRE(reg->put("services", "Pay.Gateway", boost::json::parse(R"({"id": 2, "attrs": {}})")));
  auto got = reg->get("services", "Shop.Api");
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK((*got)->value.at("id").to_number<int>() == 1);
  CHECK((*got)->expires_at_ns == 0);

  auto all = reg->list("services");
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].name == "Pay.Gateway");  // sorted by name
  CHECK((*all)[1].name == "Shop.Api");

  REQUIRE(reg->put("services", "Shop.Api", value(7)));  // replace
  CHECK((*reg->get("services", "Shop.Api"))->value == value(7));
  REQUIRE(reg->remove("services", "Shop.Api"));
  REQUIRE(reg->remove("services", "Shop.Api"));  // absent: fine
  CHECK_FALSE(reg->get("services", "Shop.Api")->has_value());
  CHECK(reg->list("no-such-kind")->empty());
}

TEST_CASE("a live entry vanishes when its owner stops refreshing it", "[registry]") {
  TempDir dir;
  auto reg = open(dir);
  REQUIRE(reg->put_live("judgers", "judger-1", boost::json::parse(R"({"address": "127.0.0.1:7300"})"), 300ms));
  CHECK(reg->get("judgers", "judger-1")->has_value());
  for (int i = 0; i < 4; ++i) {  // refreshed every 100 ms: stays
    std::this_thread::sleep_for(100ms);
    REQUIRE(reg->put_live("judgers", "judger-1", boost::json::parse(R"({"address": "127.0.0.1:7300"})"), 300ms));
    CHECK(reg->list("judgers")->size() == 1);
  }
  std::this_thread::sleep_for(400ms);  // owner gone
  CHECK_FALSE(reg->get("judgers", "judger-1")->has_value());
  CHECK(reg->list("judgers")->empty());
  auto* file_reg = dynamic_cast<FileRegistry*>(reg.get());
  REQUIRE(file_reg != nullptr);
  CHECK(*file_reg->remove_expired("judgers") == 1);
}

TEST_CASE("a live entry of a killed process expires", "[registry][crash]") {
  TempDir dir;
  auto owner = monitor::test::ChildProcess::fork_run([&] {
    auto reg = open_registry("file:" + dir.path() + "/registry");
    if (!reg) return 1;
    for (;;) {
      if (!(*reg)->put_live("proxies", "bonnie-a", value("127.0.0.1:7200"), 300ms)) return 2;
      std::this_thread::sleep_for(100ms);
    }
  });
  auto reg = open(dir);
  REQUIRE(monitor::test::wait_until([&] { return reg->get("proxies", "bonnie-a")->has_value(); }, 5s));
  owner.signal(SIGKILL);
  REQUIRE(owner.wait_for(5s) == 128 + SIGKILL);
  CHECK(monitor::test::wait_until([&] { return !reg->get("proxies", "bonnie-a")->has_value(); }, 2s));
}

TEST_CASE("bad names and entries that do not parse are refused, never fatal", "[registry][failure]") {
  TempDir dir;
  auto reg = open(dir);
  for (const char* bad : {"", ".hidden", "a/b", "../x", "sp ace", "x\n"}) {
    INFO(bad);
    CHECK(reg->put("services", bad, value(1)).error() == RegistryErrc::kBadName);
    CHECK(reg->put(bad, "x", value(1)).error() == RegistryErrc::kBadName);
  }
  CHECK(reg->put("services", std::string(129, 'a'), value(1)).error() == RegistryErrc::kBadName);
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
  CHECK(open_registry("etcd:127.0.0.1:2379").error().value() == ENOTSUP);
  CHECK_FALSE(open_registry("zookeeper:x").has_value());
}

TEST_CASE("readers never see a half-written entry while writers replace it", "[registry]") {
  TempDir dir;
  auto reg = open(dir);
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
  int reads = 0;
  for (int i = 0; i < 300; ++i, ++reads) {
    auto got = reg->get("services", "Shop.Api");
    REQUIRE(got.has_value());  // never kBadEntry: rename is atomic
    REQUIRE(got->has_value());
  }
  for (auto& w : writers) CHECK(w.wait_for(30s) == 0);
  CHECK(reg->bad_entries() == 0);
  CHECK(reads == 300);
}

TEST_CASE("a watcher reports additions, changes, removals and expiry but not refreshes", "[registry]") {
  TempDir dir;
  auto reg = open(dir);
  std::vector<std::vector<std::string>> seen;
  RegistryWatcher watcher(*reg, "judgers", [&](const std::vector<Entry>& entries) {
    std::vector<std::string> names;
    for (const auto& e : entries) names.push_back(e.name + "=" + boost::json::serialize(e.value));
    seen.push_back(names);
  });
  REQUIRE(watcher.poll());  // first read: reported (empty)
  REQUIRE(reg->put_live("judgers", "j1", value(1), 400ms));
  watcher.poll();
  REQUIRE(reg->put_live("judgers", "j1", value(1), 400ms));  // refresh only
  watcher.poll();
  REQUIRE(reg->put_live("judgers", "j1", value(2), 400ms));  // new value
  watcher.poll();
  REQUIRE(reg->put("judgers", "j2", value(3)));
  watcher.poll();
  REQUIRE(reg->remove("judgers", "j2"));
  watcher.poll();
  std::this_thread::sleep_for(500ms);  // j1 expires
  watcher.poll();
  const std::vector<std::vector<std::string>> expected = {
      {}, {"j1=1"}, {"j1=2"}, {"j1=2", "j2=3"}, {"j1=2"}, {}};
  CHECK(seen == expected);
}
