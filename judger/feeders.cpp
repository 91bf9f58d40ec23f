#include "judger/feeders.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

namespace monitor::judger {
namespace {

constexpr int64_t kKeepForS = 86400;      // a feeder not seen for a day leaves the file
constexpr size_t kMaxRemembered = 65536;  // lines read at most: the file is ours, but a bound costs nothing
constexpr int64_t kSaveEveryS = 60;

}  // namespace

Feeders::Feeders(std::filesystem::path file, Options options, int64_t now_s)
    : file_(std::move(file)), options_(options) {
  std::ifstream in(file_);
  if (!in) return;
  knew_feeders_ = true;
  std::string line;
  int64_t last_seen = 0;
  size_t bad = 0;
  while (remembered_.size() < kMaxRemembered && std::getline(in, line)) {
    std::istringstream fields(line);
    uint64_t sender_id = 0;
    int64_t seen = 0;
    std::string name;
    if (!(fields >> sender_id >> seen) || !(fields >> std::ws, std::getline(fields, name))) {
      ++bad;
      continue;
    }
    remembered_[sender_id] = Remembered{name, seen, false};
    last_seen = std::max(last_seen, seen);
  }
  if (bad != 0) spdlog::warn("feeders {}: {} lines do not parse; skipped", file_.string(), bad);
  // Those that fed this judger when it stopped: their spools hold what it missed.
  for (auto& [id, feeder] : remembered_) {
    if (last_seen - feeder.last_seen_s > options_.forget_s) continue;
    feeder.awaited = true;
    feeder.last_seen_s = now_s;  // silent from now on, if it never comes back
  }
}

void Feeders::connected(const void* session, uint64_t sender_id, const std::string& peer_name, int64_t now_s) {
  // A peer's name goes to a line of the file: one line, printable.
  std::string name = peer_name.empty() ? "-" : peer_name.substr(0, 128);
  for (char& c : name) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) c = '_';
  }
  live_[session] = Live{sender_id, name, 0, 0};
  auto [it, fresh] = remembered_.try_emplace(sender_id, Remembered{name, now_s, false});
  it->second.last_seen_s = now_s;
  it->second.name = name;
  dirty_ = dirty_ || fresh;
}

bool Feeders::marked(const void* session, int64_t complete_before, int64_t now_s) {
  auto it = live_.find(session);
  if (it == live_.end()) return false;
  const bool new_minute = complete_before / 60 != it->second.watermark / 60;
  it->second.watermark = complete_before;
  it->second.marked_at_s = now_s;
  // Back, and saying how far it has sent: the catch-up waits for its watermark, not for it.
  if (auto r = remembered_.find(it->second.sender_id); r != remembered_.end() && r->second.awaited) {
    r->second.awaited = false;
    spdlog::info("catch-up: {} ({}) is back, sent up to second {}", it->second.name, it->second.sender_id,
                 complete_before);
  }
  return new_minute;
}

void Feeders::disconnected(const void* session, int64_t now_s) {
  auto it = live_.find(session);
  if (it == live_.end()) return;
  if (auto r = remembered_.find(it->second.sender_id); r != remembered_.end()) r->second.last_seen_s = now_s;
  live_.erase(it);
  dirty_ = true;
}

size_t Feeders::awaited() const noexcept {
  return static_cast<size_t>(
      std::count_if(remembered_.begin(), remembered_.end(), [](const auto& r) { return r.second.awaited; }));
}

size_t Feeders::marked_live(int64_t now_s) const {
  return static_cast<size_t>(std::count_if(live_.begin(), live_.end(), [&](const auto& l) {
    return l.second.watermark != 0 && now_s - l.second.marked_at_s <= options_.fresh_s;
  }));
}

Feeders::Verdict Feeders::complete_before(int64_t now_s, bool catching_up) const {
  int64_t slowest = INT64_MAX;
  uint64_t slowest_sender = 0;
  bool any_marked = false, any_unmarked = false;
  std::set<uint64_t> connected;
  for (const auto& [session, feeder] : live_) {
    connected.insert(feeder.sender_id);
    if (feeder.watermark != 0 && now_s - feeder.marked_at_s <= options_.fresh_s) {
      any_marked = true;
      if (feeder.watermark < slowest) {
        slowest = feeder.watermark;
        slowest_sender = feeder.sender_id;
      }
    } else {
      any_unmarked = true;
    }
  }
  bool awaited = false, silent = false;
  for (const auto& [id, feeder] : remembered_) {
    if (connected.contains(id)) continue;
    awaited = awaited || feeder.awaited;
    silent = silent || now_s - feeder.last_seen_s <= options_.forget_s;
  }
  if (catching_up && (awaited || any_unmarked)) return Verdict{0, Bound::kCatchingUp, slowest_sender};
  const int64_t grace = now_s - options_.grace_s;
  Verdict verdict{grace, Bound::kGrace, slowest_sender};
  if (any_marked && !any_unmarked && !silent) {
    // Not before the judger's own clock has passed the second either: a
    // sender whose clock runs ahead does not end minutes for the others.
    verdict.complete_before = std::min(slowest, now_s - 1);
    verdict.bound = Bound::kWatermarks;
  } else if (any_marked && slowest < grace) {
    verdict.complete_before = slowest;  // the grace for the others, but not past a marked feeder still behind
    verdict.bound = Bound::kWatermarks;
  }
  const int64_t waited = now_s - std::max(options_.wait_s, options_.grace_s);
  if (!catching_up && verdict.complete_before < waited) {
    verdict.complete_before = waited;
    verdict.bound = Bound::kWaitOver;
  }
  return verdict;
}

void Feeders::save(int64_t now_s) {
  if (!dirty_ && now_s - saved_at_s_ < kSaveEveryS) return;
  for (const auto& [session, feeder] : live_) {
    if (auto r = remembered_.find(feeder.sender_id); r != remembered_.end()) r->second.last_seen_s = now_s;
  }
  std::erase_if(remembered_, [&](const auto& r) { return now_s - r.second.last_seen_s > kKeepForS; });
  const std::filesystem::path tmp = file_.string() + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  bool written = f != nullptr;
  for (const auto& [id, feeder] : remembered_) {
    if (!written) break;
    written = std::fprintf(f, "%" PRIu64 " %" PRId64 " %s\n", id, feeder.last_seen_s, feeder.name.c_str()) > 0;
  }
  if (f != nullptr && std::fclose(f) != 0) written = false;
  std::error_code ec;
  if (written) std::filesystem::rename(tmp, file_, ec);
  if (!written || ec) {
    spdlog::warn("feeders {}: cannot write it ({}); a restart may not wait for every sender", file_.string(),
                 ec ? ec.message() : std::string(std::strerror(errno)));
    return;
  }
  dirty_ = false;
  saved_at_s_ = now_s;
}

}  // namespace monitor::judger
