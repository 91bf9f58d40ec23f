// One table of a daemon's settings drives its flags (cxxopts), its config
// file's keys, their types and bounds, `--help` with defaults, and the table
// of its doc: a new setting is one line. Flags win over the file.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
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
  /// A setting that is not one scalar member: a nested object or list in the
  /// file, a flag that sets a nested member. Either half may be absent.
  struct Custom {
    enum class Flag { kNone, kValue, kSwitch, kRepeated };
    std::function<void(const boost::json::value&, Config&)> from_json;  // null: no config key
    Flag flag = Flag::kNone;
    // The flag's values in order (one for kValue, none for kSwitch); they
    // replace what the file said.
    std::function<void(const std::vector<std::string>&, Config&)> from_flag;
  };
  using Member = std::variant<std::string Config::*, int Config::*, int64_t Config::*, uint32_t Config::*,
                              uint64_t Config::*, bool Config::*, Custom>;
  struct Setting {
    std::string key;           // in the config file; empty: a flag only
    Member member;
    std::string help;          // what it means, for --help and the doc
    std::string default_text;  // for the doc and --help; empty: the member's default value
    int64_t min = std::numeric_limits<int64_t>::min();
    int64_t max = std::numeric_limits<int64_t>::max();
    std::string flag_spec;     // cxxopts' "x,name"; empty: the key with '-' for '_'
  };

  SettingsTable& add(std::string key, Member member, std::string help, std::string default_text = {},
                     int64_t min = std::numeric_limits<int64_t>::min(),
                     int64_t max = std::numeric_limits<int64_t>::max()) {
    settings_.push_back(Setting{std::move(key), std::move(member), std::move(help), std::move(default_text), min, max, {}});
    return *this;
  }
  /// An integer setting with bounds, checked for the file and the flag alike.
  SettingsTable& add_bounded(std::string key, Member member, std::string help, int64_t min, int64_t max,
                             std::string default_text = {}) {
    return add(std::move(key), std::move(member), std::move(help), std::move(default_text), min, max);
  }
  /// Names the flag of the setting added last, when it is not its key's
  /// ("grace" for grace_s; "o,output" gives it a short form too).
  SettingsTable& flag(std::string spec) {
    settings_.back().flag_spec = std::move(spec);
    return *this;
  }

  const std::vector<Setting>& settings() const noexcept { return settings_; }

  /// The flag's long name (what args.count takes): --<name>, or --no-<key>
  /// for a setting on by default; empty for a file-only setting.
  static std::string flag_name(const Setting& s, const Config& defaults) {
    if (const auto* custom = std::get_if<Custom>(&s.member); custom != nullptr && custom->flag == Custom::Flag::kNone) {
      return {};
    }
    if (!s.flag_spec.empty()) return s.flag_spec.substr(s.flag_spec.find(',') + 1);
    std::string name = s.key;
    std::replace(name.begin(), name.end(), '_', '-');
    if (const auto* b = std::get_if<bool Config::*>(&s.member); b != nullptr && defaults.**b) return "no-" + name;
    return name;
  }

  /// The default as the doc and --help show it.
  static std::string default_of(const Setting& s, const Config& defaults) {
    if (!s.default_text.empty()) return s.default_text;
    return std::visit(
        [&](const auto& member) -> std::string {
          if constexpr (std::is_same_v<std::decay_t<decltype(member)>, Custom>) {
            return "none";
          } else {
            const auto& value = defaults.*member;
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, std::string>) return value.empty() ? "none" : value;
            else if constexpr (std::is_same_v<T, bool>) return value ? "true" : "false";
            else return std::to_string(value);
          }
        },
        s.member);
  }

  void add_options(cxxopts::Options& options, const Config& defaults) const {
    auto adder = options.add_options();
    for (const auto& s : settings_) {
      const std::string name = flag_name(s, defaults);
      if (name.empty()) continue;
      const std::string spec = s.flag_spec.empty() ? name : s.flag_spec;
      const std::string help = fmt::format("{} (default {})", s.help, default_of(s, defaults));
      std::visit(
          [&](const auto& member) {
            if constexpr (std::is_same_v<std::decay_t<decltype(member)>, Custom>) {
              if (member.flag == Custom::Flag::kSwitch) adder(spec, help);
              else if (member.flag == Custom::Flag::kValue) adder(spec, help, cxxopts::value<std::string>());
              else adder(spec, help, cxxopts::value<std::vector<std::string>>());
            } else {
              using T = std::decay_t<decltype(std::declval<Config>().*member)>;
              if constexpr (std::is_same_v<T, bool>) adder(spec, help);
              else adder(spec, help, cxxopts::value<T>());
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
      load_object(obj, config);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(fmt::format("config {}: {}", path, e.what()));
    }
  }

  /// Sets `config` from a config file's object; throws std::runtime_error
  /// naming the key and the problem.
  void load_object(const boost::json::object& obj, Config& config) const {
    for (const auto& kv : obj) {
      const auto it = std::find_if(settings_.begin(), settings_.end(), [&](const Setting& s) {
        const auto* custom = std::get_if<Custom>(&s.member);
        return !s.key.empty() && s.key == kv.key() && (custom == nullptr || custom->from_json);
      });
      if (it == settings_.end()) throw std::runtime_error(fmt::format("unknown key \"{}\"", std::string(kv.key())));
      std::visit(
          [&](const auto& member) {
            if constexpr (std::is_same_v<std::decay_t<decltype(member)>, Custom>) {
              member.from_json(kv.value(), config);
            } else {
              auto& value = config.*member;
              using T = std::decay_t<decltype(value)>;
              if constexpr (std::is_same_v<T, std::string>) json_fields::read_string(obj, it->key.c_str(), value);
              else if constexpr (std::is_same_v<T, bool>) json_fields::read_bool(obj, it->key.c_str(), value);
              else json_fields::read_int(obj, it->key.c_str(), value);
            }
          },
          it->member);
    }
    check_bounds(config, Config{});
  }

  /// Sets from the flags given (they win over the file).
  void apply(const cxxopts::ParseResult& args, Config& config, const Config& defaults) const {
    for (const auto& s : settings_) {
      const std::string name = flag_name(s, defaults);
      if (name.empty() || !args.count(name)) continue;
      std::visit(
          [&](const auto& member) {
            if constexpr (std::is_same_v<std::decay_t<decltype(member)>, Custom>) {
              std::vector<std::string> values;
              if (member.flag == Custom::Flag::kValue) values.push_back(args[name].template as<std::string>());
              if (member.flag == Custom::Flag::kRepeated) values = args[name].template as<std::vector<std::string>>();
              member.from_flag(values, config);
            } else {
              auto& value = config.*member;
              using T = std::decay_t<decltype(value)>;
              if constexpr (std::is_same_v<T, bool>) value = !name.starts_with("no-");
              else value = args[name].template as<T>();
            }
          },
          s.member);
    }
    check_bounds(config, defaults);
  }

  /// Throws naming the first integer setting out of its bounds (and its flag).
  void check_bounds(const Config& config, const Config& defaults) const {
    for (const auto& s : settings_) {
      std::visit(
          [&](const auto& member) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(member)>, Custom>) {
              const auto& value = config.*member;
              using T = std::decay_t<decltype(value)>;
              if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
                const bool low = std::is_signed_v<T> ? static_cast<int64_t>(value) < s.min
                                                     : s.min > 0 && static_cast<uint64_t>(value) < static_cast<uint64_t>(s.min);
                const bool high =
                    s.max >= 0 && static_cast<uint64_t>(std::max<T>(value, 0)) > static_cast<uint64_t>(s.max);
                if (low || high) {
                  throw std::runtime_error(
                      fmt::format("{} must be in [{}, {}] (--{})", s.key, s.min, s.max, flag_name(s, defaults)));
                }
              }
            }
          },
          s.member);
    }
  }

  /// The doc's table: key, flag, default, meaning.
  std::string markdown(const Config& defaults) const {
    std::string out = "| key | flag | default | meaning |\n|---|---|---|---|\n";
    for (const auto& s : settings_) {
      const std::string name = flag_name(s, defaults);
      const auto* custom = std::get_if<Custom>(&s.member);
      const bool has_key = !s.key.empty() && (custom == nullptr || custom->from_json);
      std::string flag = name.empty() ? "—" : fmt::format("`--{}`", name);
      if (s.flag_spec.find(',') != std::string::npos) flag = fmt::format("`-{}`, {}", s.flag_spec.substr(0, s.flag_spec.find(',')), flag);
      out += fmt::format("| {} | {} | {} | {} |\n", has_key ? fmt::format("`{}`", s.key) : "—", flag,
                         default_of(s, defaults), s.help);
    }
    return out;
  }

 private:
  std::vector<Setting> settings_;
};

}  // namespace monitor
