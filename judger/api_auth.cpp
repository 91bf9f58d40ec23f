#include "judger/api_auth.hpp"

#include <map>

#include <boost/json.hpp>

#include "net/query_string.hpp"

namespace monitor::judger {

namespace {

constexpr int64_t kCacheNs = 30'000'000'000;
constexpr size_t kMaxCachedUsers = 1000;

}  // namespace

registry::UserAccess ApiAuth::everything(std::string who) {
  registry::UserAccess access;
  access.user = std::move(who);
  access.patterns.push_back(*registry::parse_service_pattern("*"));
  return access;
}

ApiAuth::Verdict ApiAuth::check(std::string_view authorization, int64_t now_ns) {
  const auto refuse = [&](std::string why) {
    ++refused_;
    return Verdict{401, std::move(why), std::nullopt};
  };
  constexpr std::string_view kBearer = "Bearer ";
  if (!authorization.starts_with(kBearer)) {
    return refuse("a token is needed: Authorization: Bearer <user>:<secret> (monitorctl user token USER)");
  }
  const auto token = registry::split_token(authorization.substr(kBearer.size()));
  if (!token) return refuse("the token is not <user>:<32 hex digits>");
  const auto& [user, digest] = *token;
  auto it = users_.find(user);
  if (it == users_.end() || it->second.until_ns <= now_ns) {
    if (!registry::is_valid_key(user)) return refuse("no such token");
    auto record = registry_.get("users", user);
    if (!record) return Verdict{503, "the registry did not answer: " + record.error().message(), std::nullopt};
    Cached cached{std::move(*record), std::nullopt, now_ns + kCacheNs};
    if (cached.record) {
      auto access = registry::read_user_access(registry_, user);
      if (!access) return Verdict{503, "the registry did not answer: " + access.error().message(), std::nullopt};
      cached.access = std::move(*access);
    }
    if (users_.size() >= kMaxCachedUsers) users_.clear();  // a bound, not an LRU: refilled within 30 s
    it = users_.insert_or_assign(user, std::move(cached)).first;
  }
  if (!it->second.record || !registry::record_has_token(it->second.record->value, digest)) return refuse("no such token");
  return Verdict{200, {}, it->second.access};
}

std::optional<std::string> ApiAuth::refusal(std::string_view target, const registry::UserAccess& access) {
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  std::map<std::string, std::string> params;
  if (question != std::string_view::npos) (void)net::parse_query_string(target.substr(question + 1), params);
  if (const auto it = params.find("service"); it != params.end() && !access.sees(it->second)) {
    return "user " + access.user + " may not see " + it->second;
  }
  // Only the pattern "*" sees the service "*".
  if (path == "/api/alarms/history" && !access.sees("*")) {
    return "the alarm history is for users who see every service";
  }
  return std::nullopt;
}

std::string ApiAuth::filtered(const std::string& body, const registry::UserAccess& access) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec);
  auto* obj = ec ? nullptr : doc.if_object();
  auto* services = obj != nullptr ? obj->if_contains("services") : nullptr;
  if (services == nullptr || !services->is_object()) return body;
  boost::json::object seen;
  for (const auto& [service, value] : services->as_object()) {
    if (access.sees(std::string(service))) seen[service] = value;
  }
  *services = std::move(seen);
  return boost::json::serialize(doc);
}

}  // namespace monitor::judger
