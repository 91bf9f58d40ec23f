#include "health/metrics.hpp"

#include <cctype>

#include <fmt/format.h>

namespace monitor::health {

std::string prometheus_name(std::string_view daemon, std::string_view attr, bool counter, double& scale) {
  scale = 1;
  if (attr == "Process.RssBytes") return "process_resident_memory_bytes";
  // Minutes counted as things (the judger's roll-ups), not as a duration:
  // Prometheus reads a "minutes" token as a unit that should be seconds.
  if (attr.starts_with("Minutes.")) return prometheus_name(daemon, std::string("Rollups.") += attr.substr(8), counter, scale);
  std::string snake;
  for (size_t i = 0; i < attr.size(); ++i) {
    const char c = attr[i];
    if (c == '.') {
      snake += '_';
    } else if (std::isupper(static_cast<unsigned char>(c))) {
      if (i > 0 && attr[i - 1] != '.') snake += '_';
      snake += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      snake += c;
    }
  }
  if (snake.ends_with("_millis")) {
    snake.replace(snake.size() - 6, 6, "seconds");
    scale = 0.001;
  }
  return fmt::format("monitor_{}_{}{}", daemon, snake, counter ? "_total" : "");
}

void Metrics::counter(std::string_view attr, uint64_t total) {
  std::lock_guard lock(mutex_);
  auto it = values_.find(attr);
  if (it == values_.end()) it = values_.emplace(std::string(attr), Value{}).first;
  it->second = {true, static_cast<double>(total)};
}

void Metrics::gauge(std::string_view attr, double value) {
  std::lock_guard lock(mutex_);
  auto it = values_.find(attr);
  if (it == values_.end()) it = values_.emplace(std::string(attr), Value{}).first;
  it->second = {false, value};
}

std::string Metrics::text() const {
  std::map<std::string, std::string> by_name;  // sorted by the exposed name
  {
    std::lock_guard lock(mutex_);
    for (const auto& [attr, v] : values_) {
      double scale = 1;
      const std::string name = prometheus_name(daemon_, attr, v.counter, scale);
      const std::string what = fmt::format("Monitor.{}{} {}", static_cast<char>(std::toupper(static_cast<unsigned char>(daemon_[0]))),
                                           daemon_.substr(1), attr);
      by_name[name] = fmt::format("# HELP {} {}{}\n# TYPE {} {}\n{} {}\n", name, what,
                                  v.counter ? std::string(", counted since the process started")
                                            : std::string(scale != 1 ? ", in seconds" : ""),
                                  name, v.counter ? "counter" : "gauge", name, v.value * scale);
    }
  }
  std::string out;
  for (const auto& [name, block] : by_name) out += block;
  return out;
}

}  // namespace monitor::health
