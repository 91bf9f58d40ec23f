// Who is asking the judger's query API (docs/security.md): with
// `query_tokens` on, every request shows `Authorization: Bearer
// <user>:<secret>` (monitorctl user token), and sees what the user's roles
// see, as on the dashboard. Users' records are read from the registry and
// kept 30 s, at most 1 000 of them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "registry/access.hpp"
#include "registry/registry.hpp"

namespace monitor::judger {

class ApiAuth {
 public:
  explicit ApiAuth(registry::Registry& registry) : registry_(registry) {}

  struct Verdict {
    unsigned status = 200;  // 401: no valid token; 503: the registry did not answer
    std::string error;
    std::optional<registry::UserAccess> access;
  };
  /// The access of the token in `authorization` (the header's value).
  Verdict check(std::string_view authorization, int64_t now_ns);

  /// The access of a part whose certificate is its credential: every service.
  static registry::UserAccess everything(std::string who);

  /// What a request for `target` may see: 403 with the reason when it names
  /// a service the user does not see, or is the alarm history of a user who
  /// does not see every service.
  static std::optional<std::string> refusal(std::string_view target, const registry::UserAccess& access);
  /// Drops the services `access` does not see from a JSON answer of
  /// /api/services or /api/reports (both keep them under "services").
  static std::string filtered(const std::string& body, const registry::UserAccess& access);

  uint64_t refused() const noexcept { return refused_; }

 private:
  struct Cached {
    std::optional<registry::Entry> record;  // nullopt: no such user
    std::optional<registry::UserAccess> access;
    int64_t until_ns = 0;
  };
  registry::Registry& registry_;
  std::unordered_map<std::string, Cached> users_;
  uint64_t refused_ = 0;
};

}  // namespace monitor::judger
