// Rule templates (inheritance, overrides, binding to a group) and groups.
#include <fstream>
#include <map>
#include <sstream>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "alarm/evaluator.hpp"
#include "alarm/replay.hpp"
#include "alarm/rule_template.hpp"
#include "registry/groups.hpp"

using namespace monitor::alarm;
namespace registry = monitor::registry;

namespace {

const char* const kBase = R"(template Base
rule Host.DiskFull
  service Host.System
  attr Fs.MaxUsedPermyriad
  op MAX
  when value > 9000
  pending 5m
  notify webhook:http://127.0.0.1:1/base
  notify email:base@example.com

rule Host.Silent
  service Host.System
  attr Uptime.Seconds
  op LAST
  when nodata(3)
)";

const char* const kWeb = R"(template Web extends Base
rule Host.DiskFull
  when value > 9500
  notify email:web@example.com

rule Web.Errors
  service Host.System
  attr Check.Api.Up
  op MIN
  when value < 1

test "the web threshold is its own"
  rule Host.DiskFull
  series server=1 9200x6
)";

RuleTemplate parsed(const char* text) {
  auto p = parse_template(text);
  INFO((p.error ? p.error->text() : ""));
  REQUIRE(p.parsed);
  return *p.parsed;
}

std::optional<ResolvedTemplate> resolve(const RuleTemplate& t, const std::map<std::string, RuleTemplate>& stored,
                                        std::string& error) {
  return resolve_template(
      t,
      [&](const std::string& name) -> std::optional<RuleTemplate> {
        const auto it = stored.find(name);
        return it == stored.end() ? std::nullopt : std::optional(it->second);
      },
      error);
}

}  // namespace

TEST_CASE("a template extends another and overrides its rules line by line", "[templates]") {
  const std::map<std::string, RuleTemplate> stored{{"Base", parsed(kBase)}};
  std::string error;
  const auto web = resolve(parsed(kWeb), stored, error);
  INFO(error);
  REQUIRE(web);
  CHECK(web->chain == std::vector<std::string>{"Web", "Base"});
  REQUIRE(web->rules.size() == 3);
  const ResolvedRule& disk = web->rules[0];
  CHECK(disk.name == "Host.DiskFull");
  std::map<std::string, std::pair<std::string, std::string>> origin;  // line -> (from, overrides)
  for (const auto& l : disk.lines) origin[l.text] = {l.from, l.overrides};
  CHECK(origin.at("when value > 9500") == std::pair<std::string, std::string>{"Web", "Base"});
  CHECK(origin.at("pending 5m") == std::pair<std::string, std::string>{"Base", ""});
  // Both of Base's notify lines gave way to Web's one.
  CHECK(origin.count("notify webhook:http://127.0.0.1:1/base") == 0);
  CHECK(origin.count("notify email:base@example.com") == 0);
  CHECK(origin.at("notify email:web@example.com").first == "Web");
  REQUIRE(web->file.rules.size() == 3);
  const Rule& rule = web->file.rules[0];
  CHECK(rule.when_text == "value > 9500");
  CHECK(rule.pending == 5);
  REQUIRE(rule.notify.size() == 1);
  CHECK(rule.notify[0].address == "web@example.com");
  CHECK(web->rules[1].name == "Host.Silent");
  CHECK(web->rules[2].name == "Web.Errors");
  // The template's own test runs on the resolved rule: 9200 does not pass 9500.
  for (const auto& outcome : run_tests(web->file)) CHECK(outcome.problems.empty());
}

TEST_CASE("a template whose parent is missing, or that extends itself, is refused with the reason", "[templates]") {
  std::string error;
  CHECK_FALSE(resolve(parsed(kWeb), {}, error));
  CHECK_THAT(error, Catch::Contains("extends Base, which is not stored"));
  const std::map<std::string, RuleTemplate> loop{{"A", parsed("template A extends B\n")},
                                                 {"B", parsed("template B extends A\n")}};
  CHECK_FALSE(resolve(loop.at("A"), loop, error));
  CHECK_THAT(error, Catch::Contains("extends itself"));
  // A rule that only overrides, with no parent rule of its name, is incomplete.
  CHECK_FALSE(resolve(parsed("template C\nrule Host.DiskFull\n  when value > 1\n"), {}, error));
  CHECK_THAT(error, Catch::Contains("rule Host.DiskFull as resolved") && Catch::Contains("no 'service'"));
  CHECK_FALSE(resolve(parsed("template D\nrule Host.Total\n  service Host.System\n  attr Cpu.Busy\n  op AVG\n"
                             "  per total\n  when value > 1\n"),
                      {}, error));
  CHECK_THAT(error, Catch::Contains("per server"));
}

TEST_CASE("a template file says what is wrong with it", "[templates]") {
  auto error_of = [](const char* text) {
    auto p = parse_template(text);
    return p.error ? p.error->text() : std::string();
  };
  CHECK_THAT(error_of("rule Host.A\n  when value > 1\n"), Catch::Contains("starts with 'template NAME"));
  CHECK_THAT(error_of("template lower\n"), Catch::Contains("not a template name"));
  CHECK_THAT(error_of("template T\nrule Host.A\n  group Web\n"), Catch::Contains("no 'group' line"));
  CHECK_THAT(error_of("template T\nrule Host.A\n  op MAX\nrule Host.A\n  op MIN\n"), Catch::Contains("twice"));
  CHECK_THAT(error_of("template T\ntemplate U\n"), Catch::Contains("one template per file"));
  CHECK(is_template_text("# comment\n\ntemplate T\n"));
  CHECK_FALSE(is_template_text("rule Shop.A\n  service Shop.Api\n"));
}

TEST_CASE("a template rule bound to a group is a rule of that group's servers", "[templates]") {
  std::string error;
  const auto base = resolve(parsed(kBase), {}, error);
  REQUIRE(base);
  const std::string text = bound_rule_text(base->rules[0], "Web", "Base");
  auto p = parse_rule_file(text);
  REQUIRE_FALSE(p.error);
  REQUIRE(p.file.rules.size() == 1);
  CHECK(p.file.rules[0].name == "Host.DiskFull.Web");
  CHECK(p.file.rules[0].group == "Web");
  CHECK(p.file.rules[0].from_template == "Base");
  CHECK(p.file.rules[0].per_server);
  auto total = parse_rule_file("rule Host.A\n  service Host.System\n  attr Cpu.Busy\n  op AVG\n  per total\n"
                               "  when value > 1\n  group Web\n");
  REQUIRE(total.error);
  CHECK_THAT(total.error->reason, Catch::Contains("must be 'per server'"));
}

TEST_CASE("the shipped host template parses, resolves and passes its tests", "[templates][examples]") {
  std::ifstream in(std::string(MONITOR_EXAMPLES_DIR) + "/templates/host.rules");
  std::stringstream text;
  text << in.rdbuf();
  const auto t = parsed(text.str().c_str());
  std::string error;
  const auto resolved = resolve(t, {}, error);
  INFO(error);
  REQUIRE(resolved);
  CHECK(resolved->rules.size() == 6);
  const auto outcomes = run_tests(resolved->file);
  CHECK(outcomes.size() == 7);
  for (const auto& o : outcomes) {
    INFO(o.name);
    CHECK(o.problems.empty());
  }
}

TEST_CASE("a group holds hosts by name glob and servers by id range", "[groups]") {
  const auto group = registry::group_from_value(
      "Web", boost::json::parse(R"({"hosts": ["web-*"], "servers": ["7", "100-199"], "templates": ["Host"]})"));
  REQUIRE(group);
  CHECK(group->servers == std::vector<std::pair<int64_t, int64_t>>{{7, 7}, {100, 199}});
  CHECK(registry::group_value(*group) == boost::json::parse(R"({"hosts": ["web-*"], "servers": ["7", "100-199"],
                                                                "templates": ["Host"]})"));
  const std::vector<registry::Entry> hosts{{"web-1", boost::json::parse(R"({"server_id": 11})")},
                                           {"web-2", boost::json::parse(R"({"server_id": 12})")},
                                           {"db-1", boost::json::parse(R"({"server_id": 21})")}};
  const std::vector<registry::Entry> agents{{"web-3-0001", boost::json::parse(R"({"host": "web-3", "server_id": 13})")}};
  const registry::GroupMembers members(*group, registry::host_servers(hosts, agents));
  CHECK(members.contains(11));
  CHECK(members.contains(12));
  CHECK(members.contains(13));  // a live agent not recorded yet
  CHECK_FALSE(members.contains(21));
  CHECK(members.contains(7));
  CHECK(members.contains(150));
  CHECK_FALSE(members.contains(200));
  CHECK_FALSE(registry::parse_server_range("9-3"));
  CHECK_FALSE(registry::parse_server_range("x"));
  CHECK_FALSE(registry::group_from_value("Bad", boost::json::parse(R"({"servers": ["1-"]})")));
}

TEST_CASE("a server leaving a rule's group ends its firing alarm as gone, others quietly", "[groups][alarms]") {
  AlarmState firing;
  firing.state = State::kFiring;
  firing.evaluated = 10;
  const auto t = leave_group(firing, 5, 11);
  REQUIRE(t);
  CHECK(t->kind == EventKind::kGone);
  CHECK(t->server == 5);
  CHECK(firing.state == State::kResolved);
  AlarmState pending;
  pending.state = State::kPending;
  pending.evaluated = 10;
  CHECK_FALSE(leave_group(pending, 6, 11));
  CHECK(pending.state == State::kOk);
  CHECK_FALSE(leave_group(firing, 5, 11));  // the same minute again changes nothing
}
