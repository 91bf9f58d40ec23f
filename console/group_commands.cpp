#include "console/group_commands.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "alarm/records.hpp"
#include "alarm/replay.hpp"
#include "alarm/rule_template.hpp"
#include "registry/groups.hpp"
#include "registry/service_attrs.hpp"
#include "console/console_context.hpp"

namespace monitor::console {
namespace {

namespace json = boost::json;
const std::string kGroups(registry::kGroupsKind), kTemplates(registry::kTemplatesKind), kRules(alarm::kRulesKind),
    kAlarms(alarm::kAlarmsKind);

std::optional<alarm::RuleTemplate> template_from_entry(const registry::Entry& entry) {
  const auto* obj = entry.value.if_object();
  const auto* text = obj != nullptr ? obj->if_contains("text") : nullptr;
  if (text == nullptr || !text->is_string()) return std::nullopt;
  auto parsed = alarm::parse_template(text->as_string());
  return parsed.parsed;
}

// Every stored template by name, and `also` (one being added) over its stored version.
std::map<std::string, alarm::RuleTemplate> stored_templates(Console& console,
                                                           const std::optional<alarm::RuleTemplate>& also = {}) {
  std::map<std::string, alarm::RuleTemplate> out;
  for (const auto& e : console.check(console.registry().list(kTemplates), "reading the templates")) {
    if (auto t = template_from_entry(e)) out.emplace(e.name, std::move(*t));
    else std::fprintf(stderr, "template %s in the registry does not parse; skipped\n", e.name.c_str());
  }
  if (also) out.insert_or_assign(also->name, *also);
  return out;
}

alarm::ResolvedTemplate resolve_or_fail(const alarm::RuleTemplate& t,
                                        const std::map<std::string, alarm::RuleTemplate>& templates) {
  std::string error;
  auto resolved = alarm::resolve_template(
      t,
      [&](const std::string& name) -> std::optional<alarm::RuleTemplate> {
        const auto it = templates.find(name);
        return it == templates.end() ? std::nullopt : std::optional(it->second);
      },
      error);
  if (!resolved) throw ConsoleError(kExitBadInput, error);
  return std::move(*resolved);
}

void run_tests_or_fail(const alarm::ResolvedTemplate& resolved) {
  for (const auto& outcome : alarm::run_tests(resolved.file)) {
    if (!outcome.problems.empty()) {
      throw ConsoleError(kExitBadInput, fmt::format("template {}: test \"{}\" fails: {}", resolved.name, outcome.name,
                                                    outcome.problems.front()));
    }
  }
}

std::map<std::string, registry::Entry> entries_by_name(Console& console, const std::string& kind) {
  std::map<std::string, registry::Entry> out;
  for (auto& e : console.check(console.registry().list(kind), "reading " + kind)) out.emplace(e.name, std::move(e));
  return out;
}

// A template rule's service must exist; its attr too, unless the service
// takes new attrs as they come (auto_attrs: a host's filesystems, plugins).
void check_rule_service(const alarm::Rule& rule, const std::map<std::string, registry::Entry>& services) {
  const auto service = services.find(rule.service);
  if (service == services.end()) {
    throw ConsoleError(kExitBadInput, fmt::format("rule {}: no service {} (monitorctl service add)", rule.name,
                                                  rule.service));
  }
  const auto* obj = service->second.value.if_object();
  const auto* attrs = obj != nullptr ? obj->if_contains("attrs") : nullptr;
  const bool known = attrs != nullptr && attrs->is_object() && attrs->as_object().contains(rule.attr);
  if (!known && registry::auto_attrs_of(service->second.value) == 0) {
    throw ConsoleError(kExitBadInput, fmt::format("rule {}: service {} has no attr {} (monitorctl attr add)", rule.name,
                                                  rule.service, rule.attr));
  }
}

// The rules and alarm states to write so that the rules made from `group`'s
// templates are exactly those the templates resolve to now: the commit's
// preconditions and writes, added to `pre` and `writes`.
void sync_group_rules(const registry::Group& group, const std::map<std::string, alarm::RuleTemplate>& templates,
                      const std::map<std::string, registry::Entry>& rules,
                      const std::map<std::string, registry::Entry>& services, std::vector<registry::Precondition>& pre,
                      std::vector<registry::Write>& writes, std::vector<std::string>& report) {
  std::set<std::string> wanted;
  for (const std::string& name : group.templates) {
    const auto t = templates.find(name);
    if (t == templates.end()) {
      throw ConsoleError(kExitBadInput, fmt::format("group {} is bound to template {}, which is not stored", group.name,
                                                    name));
    }
    const auto resolved = resolve_or_fail(t->second, templates);
    for (const auto& r : resolved.rules) {
      const std::string rule_name = alarm::bound_rule_name(r.name, group.name);
      const std::string text = alarm::bound_rule_text(r, group.name, name);
      auto parsed = alarm::parse_rule_file(text);
      if (parsed.error || parsed.file.rules.size() != 1) {
        throw ConsoleError(kExitBadInput, fmt::format("rule {} of template {} for group {}: {}", rule_name, name,
                                                      group.name, parsed.error ? parsed.error->reason : "not one rule"));
      }
      alarm::Rule& rule = parsed.file.rules.front();
      check_rule_service(rule, services);
      if (!wanted.insert(rule_name).second) {
        throw ConsoleError(kExitBadInput, fmt::format("group {}: two bound templates both have rule {}", group.name,
                                                      r.name));
      }
      const auto existing = rules.find(rule_name);
      bool enabled = rule.enabled;
      if (existing != rules.end()) {
        std::string error;
        const auto old = alarm::rule_from_value(existing->second.value, error);
        if (!old || old->group != group.name) {
          throw ConsoleError(kExitBadInput, fmt::format("rule {} exists and was not made from a template for group {}; "
                                                        "remove or rename it first",
                                                        rule_name, group.name));
        }
        enabled = old->enabled;  // `rule disable` of a bound rule outlives a template change
        if (old->source == rule.source && old->from_template == name) {
          pre.push_back({kRules, rule_name, existing->second.version});
          continue;
        }
      }
      pre.push_back({kRules, rule_name, existing != rules.end() ? existing->second.version : 0});
      writes.push_back({kRules, rule_name, alarm::rule_value(rule, enabled)});
      report.push_back(fmt::format("{} {}", existing != rules.end() ? "changed" : "added", rule_name));
    }
  }
  // Rules made for this group from a template it no longer has, or that no longer has them.
  for (const auto& [name, entry] : rules) {
    std::string error;
    const auto rule = alarm::rule_from_value(entry.value, error);
    if (!rule || rule->group != group.name || rule->from_template.empty() || wanted.contains(name)) continue;
    pre.push_back({kRules, name, entry.version});
    writes.push_back({kRules, name, std::nullopt});
    writes.push_back({kAlarms, name, std::nullopt});
    report.push_back("removed " + name);
  }
}

std::vector<std::string> split_list(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    size_t start = 0;
    while (start <= item.size()) {
      const size_t comma = std::min(item.find(',', start), item.size());
      if (comma > start) out.push_back(item.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

registry::Group must_get_group(Console& console, const std::string& name, int64_t* version = nullptr) {
  auto entry = console.check(console.registry().get(kGroups, name), "reading group " + name);
  if (!entry) throw ConsoleError(kExitBadInput, fmt::format("no group {} (monitorctl group list)", name));
  auto group = registry::group_from_value(name, entry->value);
  if (!group) throw ConsoleError(kExitBadInput, fmt::format("group {} in the registry does not have a group's shape", name));
  if (version != nullptr) *version = entry->version;
  return std::move(*group);
}

registry::HostServers known_hosts(Console& console) {
  return registry::host_servers(console.check(console.registry().list(std::string(registry::kHostsKind)), "reading the hosts"),
                                console.check(console.registry().list("agents"), "reading the agents"));
}

// The group's servers now, each with its host names.
std::map<int64_t, std::vector<std::string>> members_now(const registry::Group& group, const registry::HostServers& hosts) {
  const registry::GroupMembers members(group, hosts);
  std::map<int64_t, std::vector<std::string>> out;
  for (const auto& [host, id] : hosts) {
    if (members.contains(id)) out[id].push_back(host);
  }
  return out;
}

std::string ranges_text(const registry::Group& group) {
  std::vector<std::string> parts;
  for (const auto& [low, high] : group.servers) {
    parts.push_back(low == high ? std::to_string(low) : fmt::format("{}-{}", low, high));
  }
  return parts.empty() ? "-" : fmt::format("{}", fmt::join(parts, ","));
}

std::string list_text(const std::vector<std::string>& items) {
  return items.empty() ? "-" : fmt::format("{}", fmt::join(items, ","));
}

void commit_or_fail(Console& console, const std::vector<registry::Precondition>& pre,
                    const std::vector<registry::Write>& writes, const std::string& doing) {
  if (!console.check(console.registry().commit(pre, writes), doing)) {
    throw ConsoleError(kExitBadInput, "the group, a template or a rule changed meanwhile; run it again");
  }
}

int group_add(int argc, char** argv) {
  auto options = make_options("group add", "Adds (or with --replace, changes) a group of servers: hosts whose name "
                                           "matches a glob, and server id ranges. Rules of the templates bound to it "
                                           "watch its servers, a host joining or leaving by its name included.");
  options.add_options()("name", "group name (a capital letter, then letters and digits)", cxxopts::value<std::string>())
      ("hosts", "host name globs, e.g. 'web-*' (repeat, or separate with commas)", cxxopts::value<std::vector<std::string>>())
      ("servers", "server ids and ranges, e.g. 7,100-199", cxxopts::value<std::vector<std::string>>())
      ("replace", "change an existing group's hosts and servers (its bound templates stay)");
  options.parse_positional({"name"});
  options.positional_help("NAME");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string name = positional(*args, "name");
  if (!alarm::is_valid_group_name(name)) {
    throw ConsoleError(kExitBadInput, fmt::format("group name \"{}\" is not valid: a capital letter, then letters and "
                                                  "digits, at most 32 bytes (e.g. Web)", name));
  }
  registry::Group group;
  group.name = name;
  if (args->count("hosts")) group.hosts = split_list((*args)["hosts"].as<std::vector<std::string>>());
  if (args->count("servers")) {
    for (const auto& text : split_list((*args)["servers"].as<std::vector<std::string>>())) {
      const auto range = registry::parse_server_range(text);
      if (!range) throw ConsoleError(kExitBadInput, fmt::format("--servers: \"{}\" is not a server id or a range LOW-HIGH", text));
      group.servers.push_back(*range);
    }
  }
  if (group.hosts.empty() && group.servers.empty()) {
    throw ConsoleError(kExitBadInput, "a group needs --hosts or --servers");
  }
  Console console(*args);
  const bool replace = args->count("replace") != 0;
  console.update(registry::kGroupsKind, name, [&](const std::optional<registry::Entry>& entry) -> std::optional<json::value> {
    if (entry && !replace) throw ConsoleError(kExitBadInput, fmt::format("group {} exists (--replace changes it)", name));
    if (entry) {
      if (auto old = registry::group_from_value(name, entry->value)) group.templates = old->templates;
    }
    return json::value(registry::group_value(group));
  }, "storing group " + name);
  const auto members = members_now(group, known_hosts(console));
  console.print_done(fmt::format("group {} {}: {} server(s) now{}", name, replace ? "stored" : "added", members.size(),
                                 group.templates.empty() ? "" : fmt::format(", templates {}", list_text(group.templates))));
  return 0;
}

int group_list(int argc, char** argv) {
  auto options = make_options("group list", "Lists the groups: their globs and ranges, bound templates and how many "
                                            "servers each holds now.");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const auto hosts = known_hosts(console);
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : console.check(console.registry().list(kGroups), "reading the groups")) {
    const auto group = registry::group_from_value(e.name, e.value);
    if (!group) continue;
    rows.push_back({group->name, list_text(group->hosts), ranges_text(*group), list_text(group->templates),
                    std::to_string(members_now(*group, hosts).size())});
  }
  console.print_table({"group", "hosts", "servers", "templates", "members"}, rows);
  return 0;
}

int group_show(int argc, char** argv) {
  auto options = make_options("group show", "Shows the servers a group holds now, with their host names, and the "
                                            "rules bound to it.");
  options.add_options()("name", "group", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("GROUP");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const auto group = must_get_group(console, positional(*args, "name"));
  const auto members = members_now(group, known_hosts(console));
  std::vector<std::vector<std::string>> rows;
  for (const auto& [id, names] : members) rows.push_back({std::to_string(id), list_text(names)});
  if (!console.json()) {
    std::printf("group %s: hosts %s, servers %s, templates %s\n", group.name.c_str(), list_text(group.hosts).c_str(),
                ranges_text(group).c_str(), list_text(group.templates).c_str());
    std::printf("servers with a known host (an id range also holds servers no host has recorded):\n");
  }
  console.print_table({"server_id", "hosts"}, rows);
  return 0;
}

int group_rm(int argc, char** argv) {
  auto options = make_options("group rm", "Removes a group with no template bound to it.");
  options.add_options()("name", "group", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("GROUP");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const std::string name = positional(*args, "name");
  int64_t version = 0;
  const auto group = must_get_group(console, name, &version);
  if (!group.templates.empty()) {
    throw ConsoleError(kExitBadInput, fmt::format("group {} has templates bound ({}): monitorctl group unbind first",
                                                  name, list_text(group.templates)));
  }
  commit_or_fail(console, {{kGroups, name, version}}, {{kGroups, name, std::nullopt}}, "removing group " + name);
  console.print_done(fmt::format("group {} removed", name));
  return 0;
}

int group_bind(int argc, char** argv, bool bind) {
  auto options = make_options(bind ? "group bind" : "group unbind",
                              bind ? "Applies a template's rules to a group's servers: one rule <rule>.<GROUP> per "
                                     "template rule."
                                   : "Removes the rules a template made for a group, and their alarms.");
  options.add_options()("group", "group", cxxopts::value<std::string>())("template", "template",
                                                                          cxxopts::value<std::string>());
  options.parse_positional({"group", "template"});
  options.positional_help("GROUP TEMPLATE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const std::string group_name = positional(*args, "group");
  const std::string template_name = positional(*args, "template");
  int64_t version = 0;
  registry::Group group = must_get_group(console, group_name, &version);
  const auto templates = stored_templates(console);
  const bool bound = std::count(group.templates.begin(), group.templates.end(), template_name) != 0;
  if (bind) {
    const auto t = templates.find(template_name);
    if (t == templates.end()) {
      throw ConsoleError(kExitBadInput, fmt::format("no template {} (monitorctl template list)", template_name));
    }
    if (bound) throw ConsoleError(kExitBadInput, fmt::format("template {} is bound to group {} already", template_name, group_name));
    run_tests_or_fail(resolve_or_fail(t->second, templates));
    group.templates.push_back(template_name);
  } else {
    if (!bound) throw ConsoleError(kExitBadInput, fmt::format("template {} is not bound to group {}", template_name, group_name));
    std::erase(group.templates, template_name);
  }
  std::vector<registry::Precondition> pre{{kGroups, group_name, version}};
  std::vector<registry::Write> writes{{kGroups, group_name, json::value(registry::group_value(group))}};
  std::vector<std::string> report;
  sync_group_rules(group, templates, entries_by_name(console, kRules), entries_by_name(console, "services"), pre, writes,
                   report);
  commit_or_fail(console, pre, writes, (bind ? "binding " : "unbinding ") + template_name);
  console.print_done(fmt::format("template {} {} group {}: {}", template_name, bind ? "bound to" : "unbound from",
                                 group_name, report.empty() ? "no rule changed" : fmt::format("{}", fmt::join(report, ", "))));
  return 0;
}

int group_bind_verb(int argc, char** argv) { return group_bind(argc, argv, true); }
int group_unbind_verb(int argc, char** argv) { return group_bind(argc, argv, false); }

int template_add(int argc, char** argv) {
  auto options = make_options("template add", "Adds (or with --replace, changes) a rule template after checking it "
                                              "and running its test cases; the rules it made for groups follow.");
  options.add_options()("file", "template file (docs/rules.md, \"Templates and groups\")", cxxopts::value<std::string>())
      ("replace", "replace a template of the same name");
  options.parse_positional({"file"});
  options.positional_help("FILE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  const std::string path = positional(*args, "file");
  auto parsed = alarm::parse_template(read_text(path));
  if (parsed.error) throw ConsoleError(kExitBadInput, fmt::format("{}, {}", path, parsed.error->text()));
  const alarm::RuleTemplate& t = *parsed.parsed;
  Console console(*args);
  const auto templates = stored_templates(console, t);
  run_tests_or_fail(resolve_or_fail(t, templates));
  auto existing = console.check(console.registry().get(kTemplates, t.name), "reading template " + t.name);
  if (existing && !args->count("replace")) {
    throw ConsoleError(kExitBadInput, fmt::format("template {} exists (--replace changes it)", t.name));
  }
  std::vector<registry::Precondition> pre{{kTemplates, t.name, existing ? existing->version : 0}};
  std::vector<registry::Write> writes{
      {kTemplates, t.name, json::value(json::object{{"text", t.source}, {"extends", t.extends}})}};
  // Every group bound to this template, or to one that extends it, gets its rules again.
  std::vector<std::string> report;
  const auto rules = entries_by_name(console, kRules);
  const auto services = entries_by_name(console, "services");
  for (const auto& e : console.check(console.registry().list(kGroups), "reading the groups")) {
    const auto group = registry::group_from_value(e.name, e.value);
    if (!group) continue;
    const bool affected = std::any_of(group->templates.begin(), group->templates.end(), [&](const std::string& name) {
      const auto bound = templates.find(name);
      if (bound == templates.end()) return false;
      const auto chain = resolve_or_fail(bound->second, templates).chain;
      return std::find(chain.begin(), chain.end(), t.name) != chain.end();
    });
    if (!affected) continue;
    pre.push_back({kGroups, e.name, e.version});
    sync_group_rules(*group, templates, rules, services, pre, writes, report);
  }
  commit_or_fail(console, pre, writes, "storing template " + t.name);
  console.print_done(fmt::format("template {} stored ({} rule(s){}){}", t.name, t.rules.size(),
                                 t.extends.empty() ? "" : ", extends " + t.extends,
                                 report.empty() ? "" : fmt::format("; {}", fmt::join(report, ", "))));
  return 0;
}

int template_list(int argc, char** argv) {
  auto options = make_options("template list", "Lists the rule templates and the groups bound to each.");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const auto templates = stored_templates(console);
  std::map<std::string, std::vector<std::string>> bound;
  for (const auto& e : console.check(console.registry().list(kGroups), "reading the groups")) {
    if (const auto group = registry::group_from_value(e.name, e.value)) {
      for (const auto& t : group->templates) bound[t].push_back(group->name);
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, t] : templates) {
    rows.push_back({name, t.extends.empty() ? "-" : t.extends, std::to_string(t.rules.size()), list_text(bound[name])});
  }
  console.print_table({"template", "extends", "rules", "groups"}, rows);
  return 0;
}

int template_show(int argc, char** argv) {
  auto options = make_options("template show", "Prints a template as stored, or with --resolved its rules as they "
                                               "apply: inherited, overridden and its own, each line with its origin.");
  options.add_options()("name", "template", cxxopts::value<std::string>())("resolved", "the rules after inheritance");
  options.parse_positional({"name"});
  options.positional_help("TEMPLATE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const std::string name = positional(*args, "name");
  const auto templates = stored_templates(console);
  const auto t = templates.find(name);
  if (t == templates.end()) throw ConsoleError(kExitBadInput, fmt::format("no template {} (monitorctl template list)", name));
  if (!args->count("resolved")) {
    std::fputs(t->second.source.c_str(), stdout);
    return 0;
  }
  const auto resolved = resolve_or_fail(t->second, templates);
  if (console.json()) {
    json::array rules;
    for (const auto& r : resolved.rules) {
      json::array lines;
      for (const auto& l : r.lines) {
        lines.push_back(json::object{{"text", l.text}, {"from", l.from}, {"overrides", l.overrides}});
      }
      rules.push_back(json::object{{"rule", r.name}, {"lines", std::move(lines)}});
    }
    console.print_object({{"template", name}, {"chain", json::value_from(resolved.chain)}, {"rules", std::move(rules)}});
    return 0;
  }
  std::printf("# template %s, resolved over %s\n", name.c_str(), fmt::format("{}", fmt::join(resolved.chain, " <- ")).c_str());
  size_t width = 0;
  for (const auto& r : resolved.rules) {
    for (const auto& l : r.lines) width = std::max(width, l.text.size());
  }
  for (const auto& r : resolved.rules) {
    std::printf("rule %s\n", r.name.c_str());
    for (const auto& l : r.lines) {
      const std::string origin = l.overrides.empty() ? l.from
                                 : l.overrides == l.from ? l.from
                                                         : fmt::format("{}, overrides {}", l.from, l.overrides);
      std::printf("  %-*s  # %s\n", static_cast<int>(width), l.text.c_str(), origin.c_str());
    }
  }
  return 0;
}

int template_rm(int argc, char** argv) {
  auto options = make_options("template rm", "Removes a template no group is bound to and no template extends.");
  options.add_options()("name", "template", cxxopts::value<std::string>());
  options.parse_positional({"name"});
  options.positional_help("TEMPLATE");
  auto args = parse(options, argc, argv);
  if (!args) return 0;
  Console console(*args);
  const std::string name = positional(*args, "name");
  auto entry = console.check(console.registry().get(kTemplates, name), "reading template " + name);
  if (!entry) throw ConsoleError(kExitBadInput, fmt::format("no template {}", name));
  for (const auto& [other, t] : stored_templates(console)) {
    if (t.extends == name) throw ConsoleError(kExitBadInput, fmt::format("template {} extends {}", other, name));
  }
  for (const auto& e : console.check(console.registry().list(kGroups), "reading the groups")) {
    const auto group = registry::group_from_value(e.name, e.value);
    if (group && std::count(group->templates.begin(), group->templates.end(), name) != 0) {
      throw ConsoleError(kExitBadInput, fmt::format("group {} is bound to {}: monitorctl group unbind {} {} first",
                                                    group->name, name, group->name, name));
    }
  }
  commit_or_fail(console, {{kTemplates, name, entry->version}}, {{kTemplates, name, std::nullopt}},
                 "removing template " + name);
  console.print_done(fmt::format("template {} removed", name));
  return 0;
}

}  // namespace

std::optional<std::vector<int64_t>> group_servers(Console& console, const std::string& group_name,
                                                  const std::vector<int64_t>& candidates) {
  auto entry = console.check(console.registry().get(kGroups, group_name), "reading group " + group_name);
  if (!entry) return std::nullopt;
  const auto group = registry::group_from_value(group_name, entry->value);
  if (!group) return std::nullopt;
  const registry::GroupMembers members(*group, known_hosts(console));
  std::vector<int64_t> out;
  for (const int64_t id : candidates) {
    if (members.contains(id)) out.push_back(id);
  }
  return out;
}

int group_command(int argc, char** argv) {
  return dispatch_verbs("group", argc, argv,
                        {{"add", group_add}, {"list", group_list}, {"show", group_show}, {"rm", group_rm},
                         {"bind", group_bind_verb}, {"unbind", group_unbind_verb}});
}

int template_command(int argc, char** argv) {
  return dispatch_verbs("template", argc, argv,
                        {{"add", template_add}, {"list", template_list}, {"show", template_show}, {"rm", template_rm}});
}

}  // namespace monitor::console
