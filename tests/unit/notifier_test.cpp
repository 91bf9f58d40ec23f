// The notifier's alarm history is bounded: rows older than 30 days go.
#include <chrono>

#include <catch2/catch.hpp>

#include "judger/notifier.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"

using namespace std::chrono_literals;
using monitor::judger::Notifier;

TEST_CASE("the alarm history keeps 30 days: older rows are pruned when the notifier runs", "[alarms][notifier]") {
  monitor::test::TempDir dir;
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  {
    Notifier notifier(dir.path(), {});
    notifier.record(now - 31 * 86400, "Shop.Api.Old", -1, "firing", "value 5");
    notifier.record(now - 29 * 86400, "Shop.Api.Recent", -1, "firing", "value 6");
  }
  // A notifier started afresh prunes at once, then every hour.
  Notifier notifier(dir.path(), {});
  auto rules = [&] {
    std::vector<std::string> out;
    for (const auto& row : notifier.history("", 0, now + 1, 100)) out.emplace_back(row.at("rule").as_string());
    return out;
  };
  REQUIRE(monitor::test::wait_until([&] { return rules().size() == 1; }, 5s));
  CHECK(rules() == std::vector<std::string>{"Shop.Api.Recent"});
}
