// Bonnie's view of the registry: what it routes, drops, and hands to Clydes.
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "registry/registry.hpp"
#include "registry/service_attrs.hpp"
#include "proxy/attr_registrar.hpp"
#include "proxy/catalogue.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using monitor::proxy::Catalogue;
using monitor::test::TempDir;
using namespace std::chrono_literals;
using boost::json::object;

TEST_CASE("the catalogue routes registered attrs to their judger and says why it drops the rest", "[proxy]") {
  TempDir dir;
  auto registry = std::move(*monitor::registry::open_registry("file:" + dir.path() + "/registry"));
  REQUIRE(registry->put("services", "Shop.Api", object{{"id", 1}, {"attrs", object{{"Orders.Placed", 1}}}}));
  REQUIRE(registry->put("services", "Shop.Web", object{{"id", 2}, {"attrs", object{{"Page.Views", 1}}}}));
  REQUIRE(registry->put("services", "Bad.Shape", object{{"id", 3}}));  // no attrs: skipped, said
  REQUIRE(registry->put("assignments", "Shop.Api", object{{"judger", "judger-1"}}));
  REQUIRE(registry->put("assignments", "Shop.Web", object{{"owner", "judger-2"}}));  // wrong key: unassigned
  REQUIRE(registry->put_live("judgers", "judger-1", object{{"address", "127.0.0.1:7300"}}, 10s));
  REQUIRE(registry->put_live("proxies", "bonnie-b", object{{"address", "10.0.0.2:7200"}, {"role", "bonnie"}}, 10s));
  REQUIRE(registry->put_live("proxies", "bonnie-a", object{{"address", "10.0.0.1:7200"}, {"role", "bonnie"}}, 10s));
  REQUIRE(registry->put_live("proxies", "clyde-1", object{{"address", "10.1.0.1:7100"}, {"role", "clyde"}}, 10s));
  // Expired: its owner died. Never routed to, never handed out.
  REQUIRE(registry->put_live("proxies", "bonnie-dead", object{{"address", "10.0.0.9:7200"}, {"role", "bonnie"}}, 1ms));
  std::this_thread::sleep_for(5ms);

  std::vector<std::string> problems;
  auto loaded = Catalogue::load(*registry, problems);
  REQUIRE(loaded.has_value());
  const Catalogue& c = *loaded;
  std::string judger;
  CHECK(c.judge("Shop.Api", "Orders.Placed", judger) == Catalogue::Verdict::kRoute);
  CHECK(judger == "judger-1");
  CHECK(c.judger_address("judger-1") == "127.0.0.1:7300");
  CHECK(c.judger_address("judger-2").empty());  // not live
  CHECK(c.judge("Shop.Api", "Orders.Unknown", judger) == Catalogue::Verdict::kUnknownAttr);
  CHECK(c.judge("Nobody.Knows", "Orders.Placed", judger) == Catalogue::Verdict::kUnknownService);
  CHECK(c.judge("Bad.Shape", "Any.Attr", judger) == Catalogue::Verdict::kUnknownService);
  CHECK(c.judge("Shop.Web", "Page.Views", judger) == Catalogue::Verdict::kUnassigned);
  CHECK(c.bonnies() == std::vector<std::string>{"10.0.0.1:7200", "10.0.0.2:7200"});
  CHECK(c.assigned_judgers() == std::set<std::string>{"judger-1"});
  REQUIRE(problems.size() == 2);
  CHECK_THAT(problems[0], Catch::Contains("services/Bad.Shape"));
  CHECK_THAT(problems[1], Catch::Contains("assignments/Shop.Web"));

  // Equal catalogues compare equal (Bonnie re-judges routes only on a change).
  std::vector<std::string> again;
  CHECK(*Catalogue::load(*registry, again) == c);
  REQUIRE(registry->put("services", "Shop.Api", object{{"id", 1}, {"attrs", object{{"Orders.Placed", 1}, {"X.Y", 2}}}}));
  CHECK_FALSE(*Catalogue::load(*registry, again) == c);
}

// Issue 7, item 6: the judger name of an assignment becomes Bonnie's spool
// directory, so "../x" or "/x" would have escaped the data directory.
TEST_CASE("issue 7: an assignment to a judger name that is not a registry key is refused, never a path",
          "[proxy][issue7][failure]") {
  TempDir dir;
  auto registry = std::move(*monitor::registry::open_registry("file:" + dir.path() + "/registry"));
  for (const char* service : {"Shop.Api", "Shop.Web", "Shop.Ok"}) {
    REQUIRE(registry->put("services", service, object{{"id", 1}, {"attrs", object{{"Orders.Placed", 1}}}}));
  }
  REQUIRE(registry->put("assignments", "Shop.Api", object{{"judger", "../escape"}}));
  REQUIRE(registry->put("assignments", "Shop.Web", object{{"judger", "/tmp/escape"}}));
  REQUIRE(registry->put("assignments", "Shop.Ok", object{{"judger", "judger-1"}}));
  std::vector<std::string> problems;
  auto loaded = Catalogue::load(*registry, problems);
  REQUIRE(loaded.has_value());
  std::string judger;
  CHECK(loaded->judge("Shop.Api", "Orders.Placed", judger) == Catalogue::Verdict::kUnassigned);
  CHECK(loaded->judge("Shop.Web", "Orders.Placed", judger) == Catalogue::Verdict::kUnassigned);
  CHECK(loaded->judge("Shop.Ok", "Orders.Placed", judger) == Catalogue::Verdict::kRoute);
  CHECK(loaded->assigned_judgers() == std::set<std::string>{"judger-1"});
  REQUIRE(problems.size() == 2);
  for (const auto& problem : problems) CHECK_THAT(problem, Catch::Contains("not a valid registry key"));
}

TEST_CASE("a service with auto_attrs takes new attrs up to its bound: registered once, by compare-and-set, refused "
          "past it",
          "[proxy][auto_attrs]") {
  TempDir dir;
  auto registry = std::move(*monitor::registry::open_registry("file:" + dir.path() + "/registry"));
  REQUIRE(registry->put("services", "Host.System",
                        object{{"id", 1}, {"attrs", object{{"Mem.TotalBytes", 1}}}, {"next_attr_id", 2},
                               {"auto_attrs", 3}}));
  REQUIRE(registry->put("services", "Shop.Api", object{{"id", 2}, {"attrs", object{}}}));
  REQUIRE(registry->put("assignments", "Host.System", object{{"judger", "judger-1"}}));
  REQUIRE(registry->put("assignments", "Shop.Api", object{{"judger", "judger-1"}}));
  std::vector<std::string> problems;
  auto c = *Catalogue::load(*registry, problems);
  std::string judger;
  CHECK(c.judge("Host.System", "Cpu.Busy", judger) == Catalogue::Verdict::kNewAttr);
  CHECK(judger == "judger-1");
  CHECK(c.judge("Host.System", "Mem.TotalBytes", judger) == Catalogue::Verdict::kRoute);
  CHECK(c.judge("Shop.Api", "Cpu.Busy", judger) == Catalogue::Verdict::kUnknownAttr);  // the rule for every other
  CHECK(c.auto_attrs("Host.System") == 3);
  CHECK(c.attr_count("Host.System") == 1);

  using monitor::registry::AutoAttr;
  CHECK(*monitor::registry::add_auto_attr(*registry, "Host.System", "Cpu.Busy") == AutoAttr::kAdded);
  CHECK(*monitor::registry::add_auto_attr(*registry, "Host.System", "Cpu.Busy") == AutoAttr::kKnown);
  CHECK(*monitor::registry::add_auto_attr(*registry, "Host.System", "Load.Avg1") == AutoAttr::kAdded);
  CHECK(*monitor::registry::add_auto_attr(*registry, "Host.System", "Load.Avg5") == AutoAttr::kFull);
  CHECK(*monitor::registry::add_auto_attr(*registry, "Shop.Api", "Any.Thing") == AutoAttr::kFull);
  const auto entry = **registry->get("services", "Host.System");
  const auto& attrs = entry.value.at("attrs").as_object();
  CHECK(attrs.size() == 3);
  CHECK(attrs.at("Cpu.Busy").as_int64() == 2);
  CHECK(attrs.at("Load.Avg1").as_int64() == 3);
  c = *Catalogue::load(*registry, problems);
  CHECK(c.judge("Host.System", "Cpu.Busy", judger) == Catalogue::Verdict::kRoute);

  // A Bonnie's admission: what is queued counts against the bound before the registry has it.
  auto fresh = std::move(*monitor::registry::open_registry("file:" + dir.path() + "/registry2"));
  REQUIRE(fresh->put("services", "Host.System", object{{"id", 1}, {"attrs", object{}}, {"auto_attrs", 2}}));
  {
    monitor::proxy::AttrRegistrar registrar(*fresh);
    CHECK(registrar.admit("Host.System", "A.One", 0, 2));
    CHECK(registrar.admit("Host.System", "A.One", 0, 2));  // the same: admitted again, queued once
    CHECK(registrar.admit("Host.System", "A.Two", 0, 2));
    CHECK_FALSE(registrar.admit("Host.System", "A.Three", 0, 2));
    CHECK(registrar.refused() == 1);
    REQUIRE(monitor::test::wait_until([&] { return registrar.registered() == 2; }, 10s));
  }
  CHECK((**fresh->get("services", "Host.System")).value.at("attrs").as_object().size() == 2);
}

// Found by deploy/run-local.sh: a Bonnie stopped while attrs waited for a
// registry that was already gone spun in its retry loop (3 million log lines
// in five minutes) and never exited.
TEST_CASE("issue 23: a Bonnie stopping with attrs waiting for an unreachable registry stops at once",
          "[proxy][registry][failure]") {
  auto away = monitor::registry::open_registry("etcd:127.0.0.1:1");  // nothing listens: every call fails
  REQUIRE(away.has_value());
  auto registrar = std::make_unique<monitor::proxy::AttrRegistrar>(**away);
  CHECK(registrar->admit("Host.System", "A.One", 0, 10));
  REQUIRE(monitor::test::wait_until([&] { return registrar->waiting() == 1; }, 5s));
  std::this_thread::sleep_for(100ms);  // let it fail once and wait to retry
  auto stopped = std::make_shared<std::atomic<bool>>(false);
  std::thread([r = registrar.release(), stopped] {
    delete r;
    *stopped = true;
  }).detach();  // if it never stops, the test fails instead of hanging
  CHECK(monitor::test::wait_until([&] { return stopped->load(); }, 5s));
}
