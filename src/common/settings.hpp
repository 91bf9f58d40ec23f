// One table of a daemon's settings drives its flags (cxxopts), its config
// file's keys, their types and bounds, `--help` with defaults, and the table
// of its doc: a new setting is one line. Flags win over the file.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <boost/json.hpp>
#include <cxxopts.hpp>
#include <fmt/format.h>

#include "common/json_fields.hpp"

namespace monitor {

template <class Config>
class SettingsTable {
 public:
  using Member = std::variant<std::string Config::*, int Config::*, int64_t Config::*, uint32_t Config::*,
                              uint64_t Config::*, bool Config::*>;
  struct Setting {
    std::string key;           // in the config file; the flag is the key with '-' for '_'
    Member member;
    std::string help;          // what it means, for --help and the doc
    std::string default_text;  // for the doc and --help; empty: the member's default value
    int64_t min = std::numeric_limits<int64_t>::min();
    int64_t max = std::numeric_limits<int64_t>::max();
  };

  SettingsTable& add(std::string key, Member member, std::string help, std::string default_text = {},
                     int64_t min = std::numeric_limits<int64_t>::min(),
                     int64_t max = std::numeric_limits<int64_t>::max()) {
    settings_.push_back(Setting{std::move(key), member, std::move(help), std::move(default_text), min, max});
    return *this;
  }
  /// An integer setting with bounds, checked for the file and the flag alike.
  SettingsTable& add_bounded(std::string key, Member member, std::string help, int64_t min, int64_t max,
                             std::string default_text = {}) {
    return add(std::move(key), member, std::move(help), std::move(default_text), min, max);
  }

  const std::vector<Setting>& settings() const noexcept { return settings_; }

  /// The flag of `s`: --<key with dashes>, or --no-<key> for a setting on by default.
  static std::string flag(const Setting& s, const Config& defaults) {
    std::string name = s.key;
    for (char& c : name) c = c == '_' ? '-' : c;
    if (const auto* b = std::get_if<bool Config::*>(&s.member); b != nullptr && defaults.**b) return "no-" + name;
    return name;
  }

  /// The default as the doc and --help show it.
  static std::string default_of(const Setting& s, const Config& defaults) {
    if (!s.default_text.empty()) return s.default_text;
    return std::visit(
        [&](auto member) -> std::string {
          const auto& value = defaults.*member;
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, std::string>) return value.empty() ? "none" : value;
          else if constexpr (std::is_same_v<T, bool>) return value ? "true" : "false";
          else return std::to_string(value);
        },
        s.member);
  }

  void add_options(cxxopts::Options& options, const Config& defaults) const {
    auto adder = options.add_options();
    for (const auto& s : settings_) {
      const std::string help = fmt::format("{} (default {})", s.help, default_of(s, defaults));
      std::visit(
          [&](auto member) {
            using T = std::decay_t<decltype(std::declval<Config>().*member)>;
            if constexpr (std::is_same_v<T, bool>) {
              adder(flag(s, defaults), help);
            } else {
              adder(flag(s, defaults), help, cxxopts::value<T>());
            }
          },
          s.member);
    }
  }

  /// Sets `config` from the JSON object in `path`; throws naming the file, the
  /// key and the problem (an unknown key, a wrong type, out of bounds).
  void load_file(const std::string& path, Config& config) const {
    const boost::json::object obj = json_fields::read_json_object(path);
    try {
      for (const auto& kv : obj) {
        const auto it = std::find_if(settings_.begin(), settings_.end(), [&](const Setting& s) { return s.key == kv.key(); });
        if (it == settings_.end()) throw std::runtime_error(fmt::format("unknown key \"{}\"", std::string(kv.key())));
        std::visit(
            [&](auto member) {
              auto& value = config.*member;
              using T = std::decay_t<decltype(value)>;
              if constexpr (std::is_same_v<T, std::string>) json_fields::read_string(obj, it->key.c_str(), value);
              else if constexpr (std::is_same_v<T, bool>) json_fields::read_bool(obj, it->key.c_str(), value);
              else json_fields::read_int(obj, it->key.c_str(), value);
            },
            it->member);
      }
      check_bounds(config);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(fmt::format("config {}: {}", path, e.what()));
    }
  }

  /// Sets from the flags given (they win over the file).
  void apply(const cxxopts::ParseResult& args, Config& config, const Config& defaults) const {
    for (const auto& s : settings_) {
      const std::string name = flag(s, defaults);
      if (!args.count(name)) continue;
      std::visit(
          [&](auto member) {
            auto& value = config.*member;
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, bool>) value = !name.starts_with("no-");
            else value = args[name].template as<T>();
          },
          s.member);
    }
    check_bounds(config);
  }

  /// The doc's table: key, default, meaning.
  std::string markdown(const Config& defaults) const {
    std::string out = "| key | flag | default | meaning |\n|---|---|---|---|\n";
    for (const auto& s : settings_) {
      out += fmt::format("| `{}` | `--{}` | {} | {} |\n", s.key, flag(s, defaults), default_of(s, defaults), s.help);
    }
    return out;
  }

 private:
  void check_bounds(const Config& config) const {
    for (const auto& s : settings_) {
      std::visit(
          [&](auto member) {
            const auto& value = config.*member;
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
              const bool low = std::is_signed_v<T> ? static_cast<int64_t>(value) < s.min
                                                   : s.min > 0 && static_cast<uint64_t>(value) < static_cast<uint64_t>(s.min);
              const bool high = s.max >= 0 && static_cast<uint64_t>(std::max<T>(value, 0)) > static_cast<uint64_t>(s.max);
              if (low || high) {
                std::string name = s.key;
                for (char& c : name) c = c == '_' ? '-' : c;
                throw std::runtime_error(fmt::format("{} (--{}) must be in [{}, {}]", s.key, name, s.min, s.max));
              }
            }
          },
          s.member);
    }
  }

  std::vector<Setting> settings_;
};

}  // namespace monitor
