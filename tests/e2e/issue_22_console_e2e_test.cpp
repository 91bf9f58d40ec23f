// Issue 22, the newcomer's path: monitorctl takes its global options before
// the command too, as git, kubectl and etcdctl do.
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "e2e/monitorctl_run.hpp"
#include "support/temp_names.hpp"

using monitor::e2e::monitorctl;
using monitor::test::TempDir;

TEST_CASE("issue 22: monitorctl takes --registry, --output and --config before the command as after it",
          "[e2e][console][issue22]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("registry"));
  const std::string registry = "file:" + dir.file("registry");
  // No registry appended by the helper: every option is where the user put it.
  const auto added = monitorctl(dir, "", {"--registry", registry, "service", "add", "Shop.Front"});
  INFO(added.err);
  REQUIRE(added.rc == 0);
  const auto listed = monitorctl(dir, "", {"--output", "json", "--registry=" + registry, "service", "list"});
  INFO(listed.err);
  REQUIRE(listed.rc == 0);
  CHECK_THAT(listed.out, Catch::Contains("\"service\":\"Shop.Front\""));
  // After the command, as before.
  CHECK(monitorctl(dir, "", {"service", "list", "--registry", registry}).out.find("Shop.Front") != std::string::npos);

  const auto unknown = monitorctl(dir, "", {"--bogus", "service", "list"});
  CHECK(unknown.rc == 2);
  CHECK_THAT(unknown.err, Catch::Contains("'--bogus' before the command"));
  const auto dangling = monitorctl(dir, "", {"--registry"});
  CHECK(dangling.rc == 2);
  CHECK_THAT(dangling.err, Catch::Contains("--registry needs a value"));
}
