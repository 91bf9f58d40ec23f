#include "judger/placer.hpp"

#include <algorithm>
#include <set>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "registry/placement.hpp"

namespace monitor::judger {
namespace {

constexpr const char* kKinds[] = {"judgers", "proxies", "agents", "assignments", "services", "parts", "settings"};

}  // namespace

Placer::Placer(registry::Registry& registry, std::string self, std::chrono::milliseconds grace)
    : registry_(registry), self_(std::move(self)), act_after_(std::chrono::steady_clock::now() + grace) {
  watch_ = registry_.watch(
      std::vector<std::string>(std::begin(kKinds), std::end(kKinds)),
      [this](const std::string& kind, const std::vector<registry::Entry>& entries) { on_change(kind, entries); },
      [this](bool up) { reachable_ = up; });
}

Placer::~Placer() { watch_.reset(); }

Placer::Figures Placer::figures() const {
  std::lock_guard lock(figures_mutex_);
  return figures_;
}

void Placer::on_change(const std::string& kind, const std::vector<registry::Entry>& entries) {
  known_[kind] = entries;
  if (known_.size() < std::size(kKinds)) return;  // not every kind read yet
  place();
}

void Placer::place() {
  std::set<std::string> live, placing, ran, declared;
  for (const auto& e : known_["judgers"]) {
    live.insert(e.name);
    // A judger started with --no-placement never acts: were it to lead, no
    // one would. An entry without the field is an older judger, which places.
    const auto* obj = e.value.if_object();
    const auto* places = obj != nullptr ? obj->if_contains("places") : nullptr;
    if (places == nullptr || !places->is_bool() || places->as_bool()) placing.insert(e.name);
  }
  // Every part that ever registered left parts/<role>.<name>; it is gone
  // when its live entry (under its role's kind) is.
  const std::map<std::string, std::string> kind_of_role{{"judger", "judgers"}, {"proxy", "proxies"}, {"agent", "agents"}};
  std::map<std::string, std::set<std::string>> live_by_kind;
  for (const auto& [role, kind] : kind_of_role) {
    for (const auto& e : known_[kind]) live_by_kind[kind].insert(e.name);
  }
  int64_t parts_live = 0, parts_gone = 0;
  std::map<std::string, int64_t> gone_by_role;
  for (const auto& e : known_["parts"]) {
    const auto* obj = e.value.if_object();
    const bool registered = obj != nullptr && obj->contains("registered");
    const size_t dot = e.name.find('.');
    if (dot == std::string::npos) continue;
    const std::string role = e.name.substr(0, dot), name = e.name.substr(dot + 1);
    if (role == "judger") (registered ? ran : declared).insert(name);
    const auto kind = kind_of_role.find(role);
    if (!registered || kind == kind_of_role.end()) continue;
    const bool is_live = live_by_kind[kind->second].contains(name);
    (is_live ? parts_live : parts_gone) += 1;
    if (!is_live) ++gone_by_role[role];
  }

  bool automatic = true;
  for (const auto& e : known_["settings"]) {
    if (e.name != "placement") continue;
    const auto* obj = e.value.if_object();
    const auto* mode = obj != nullptr ? obj->if_contains("mode") : nullptr;
    automatic = !(mode != nullptr && mode->is_string() && mode->as_string() == "manual");
  }
  const bool leader = !placing.empty() && *placing.begin() == self_;

  std::map<std::string, const registry::Entry*> assignment_of;
  for (const auto& e : known_["assignments"]) assignment_of[e.name] = &e;
  // Services per live judger, counted as moves are made.
  std::map<std::string, size_t> owned;
  for (const auto& name : live) owned[name] = 0;
  std::vector<std::pair<std::string, std::string>> to_move;  // service, from
  int64_t unassigned = 0;
  for (const auto& s : known_["services"]) {
    const auto found = assignment_of.find(s.name);
    const std::string judger = found != assignment_of.end() ? registry::assigned_judger(found->second->value) : "";
    if (!judger.empty() && live.contains(judger)) {
      ++owned[judger];
      continue;
    }
    // Declared ahead of its start and never run: the operator's choice stands.
    if (!judger.empty() && declared.contains(judger) && !ran.contains(judger)) continue;
    ++unassigned;
    to_move.emplace_back(s.name, judger);
  }
  uint64_t moves = 0;
  if (leader && automatic && !live.empty() && std::chrono::steady_clock::now() >= act_after_) {
    for (const auto& [service, from] : to_move) {
      const auto target = std::min_element(owned.begin(), owned.end(), [](const auto& a, const auto& b) {
        return std::tie(a.second, a.first) < std::tie(b.second, b.first);
      });
      const auto found = assignment_of.find(service);
      const int64_t version = found != assignment_of.end() ? found->second->version : 0;
      const boost::json::value before = found != assignment_of.end() ? found->second->value : boost::json::value();
      auto done = registry_.commit(
          {{"assignments", service, version}},
          {{"assignments", service, registry::moved_assignment(before, target->first, realtime_ns() / 1'000'000'000)}});
      if (!done) {
        spdlog::warn("placement: cannot move {}: {}; trying again at the next change", service, done.error().message());
        continue;
      }
      if (!*done) continue;  // changed meanwhile: the watch brings the new state
      ++target->second;
      ++moves;
      --unassigned;
      spdlog::info("placement: service {} {} -> judger {}", service,
                   from.empty() ? "had no judger" : "of judger " + from + " (lease expired)", target->first);
    }
  }
  std::lock_guard lock(figures_mutex_);
  figures_.leader = leader;
  figures_.judgers_live = static_cast<int64_t>(live.size());
  figures_.judgers_gone = gone_by_role["judger"];
  figures_.proxies_gone = gone_by_role["proxy"];
  figures_.agents_gone = gone_by_role["agent"];
  figures_.parts_live = parts_live;
  figures_.parts_gone = parts_gone;
  figures_.services_unassigned = unassigned;
  figures_.moves += moves;
}

}  // namespace monitor::judger
