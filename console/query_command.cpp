#include "console/query_command.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <cxxopts.hpp>
#include <fmt/format.h>

#include "common/default_paths.hpp"
#include "common/registry/registry.hpp"
#include "console/console_context.hpp"
#include "console/http_get.hpp"

namespace monitor::console {
namespace {

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "-90m", "-2h", "-1d", "-30s" relative to now, "now", or absolute Unix
// seconds; anything else is an error naming `option` and the accepted forms.
int64_t parse_time(const std::string& option, const std::string& text, int64_t now) {
  const auto bad = [&] {
    return std::invalid_argument(fmt::format("{} {}: use now, -30s, -90m, -2h, -1d or Unix seconds", option,
                                             text.empty() ? "\"\"" : text));
  };
  if (text == "now") return now;
  const bool relative = !text.empty() && text[0] == '-';
  const char* begin = text.data() + (relative ? 1 : 0);
  const char* end = text.data() + text.size();
  int64_t n = 0;
  const auto [rest, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc{} || rest == begin || n < 0) throw bad();
  if (!relative) {
    if (rest != end) throw bad();
    return n;
  }
  const std::string_view unit(rest, static_cast<size_t>(end - rest));
  const int64_t scale = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (scale == 0 || n > (int64_t{1} << 40)) throw bad();
  return now - n * scale;
}

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

// The query address of the judger that owns the service (or of --judger):
// from its live registry entry.
std::string find_judger(const cxxopts::ParseResult& args, const std::string& service) {
  if (args.count("query-address")) return args["query-address"].as<std::string>();
  Console console(args);
  std::string wanted;
  if (args.count("judger")) {
    wanted = args["judger"].as<std::string>();
  } else {
    auto assignment = console.check(console.registry().get("assignments", service), "reading the assignment");
    const auto* obj = assignment ? assignment->value.if_object() : nullptr;
    const auto* judger = obj != nullptr ? obj->if_contains("judger") : nullptr;
    if (judger == nullptr || !judger->is_string()) {
      throw ConsoleError(kExitBadInput, fmt::format("service {} has no judger in {} (monitorctl service show {})",
                                                    service, console.address(), service));
    }
    wanted = judger->as_string();
  }
  auto entry = console.check(console.registry().get("judgers", wanted), "reading judger " + wanted);
  const auto* obj = entry ? entry->value.if_object() : nullptr;
  const auto* query = obj != nullptr ? obj->if_contains("query") : nullptr;
  if (query == nullptr || !query->is_string()) {
    throw ConsoleError(kExitUnreachable, fmt::format("judger {} (owner of {}) is not live in {}", wanted, service,
                                                     console.address()));
  }
  return std::string(query->as_string());
}

std::string sparkline(const std::vector<double>& values) {
  static const char* kBars[] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
  if (values.empty()) return "";
  double lo = values[0], hi = values[0];
  for (double v : values) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  std::string out;
  for (double v : values) {
    const int level = hi > lo ? static_cast<int>((v - lo) / (hi - lo) * 7.0 + 0.5) : 3;
    out += kBars[level];
  }
  return out;
}

std::string utc(int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

}  // namespace

int query_command(int argc, char** argv) {
  cxxopts::Options options("monitorctl query", "Prints a series from a judger: a table and a sparkline, or JSON.");
  options.add_options()
      ("service", "service, e.g. Shop.Api", cxxopts::value<std::string>())
      ("attr", "attr, e.g. Orders.Placed", cxxopts::value<std::string>())
      ("op", "SUM MAX MIN AVG FIRST LAST COUNT HIST_P50 HIST_P90 HIST_P99 HIST_P999", cxxopts::value<std::string>()->default_value("SUM"))
      ("server", "server id, or total", cxxopts::value<std::string>()->default_value("total"))
      ("from", "start: -90m, -2h, -1d or Unix seconds", cxxopts::value<std::string>()->default_value("-1h"))
      ("to", "end: now or as --from", cxxopts::value<std::string>()->default_value("now"))
      ("step", "seconds per point (>= 60)", cxxopts::value<int>()->default_value("60"))
      ("judger", "judger name in the registry (default: the one that owns the service)", cxxopts::value<std::string>())
      ("query-address", "host:port of a judger's query API (skips the registry)", cxxopts::value<std::string>());
  add_common_options(options);
  try {
    const auto args = options.parse(argc, argv);
    if (args.count("help")) {
      std::puts(options.help().c_str());
      return 0;
    }
    if (!args.count("service") || !args.count("attr")) throw std::invalid_argument("--service and --attr are required");
    const std::string output = args["output"].as<std::string>();
    if (output != "table" && output != "json") throw std::invalid_argument("--output must be table or json");
    const int64_t now = now_s();
    const int64_t from = parse_time("--from", args["from"].as<std::string>(), now);
    const int64_t to = parse_time("--to", args["to"].as<std::string>(), now);
    if (from >= to) throw std::invalid_argument(fmt::format("--from must be before --to ({} >= {})", from, to));
    const std::string judger = find_judger(args, args["service"].as<std::string>());
    const std::string target = fmt::format(
        "/api/series?service={}&attr={}&op={}&server={}&from={}&to={}&step={}",
        url_escape(args["service"].as<std::string>()), url_escape(args["attr"].as<std::string>()),
        url_escape(args["op"].as<std::string>()), url_escape(args["server"].as<std::string>()), from, to,
        args["step"].as<int>());
    auto response = http_get(judger, target, std::chrono::seconds(10));
    if (!response) {
      std::fprintf(stderr, "monitorctl query: judger at %s: %s\n", judger.c_str(), response.error().message().c_str());
      return 3;
    }
    if (response->status != 200) {
      std::fprintf(stderr, "monitorctl query: judger at %s answered %u: %s\n", judger.c_str(), response->status,
                   response->body.c_str());
      return response->status == 400 ? 2 : 3;
    }
    if (output == "json") {
      std::puts(response->body.c_str());
      return 0;
    }
    const auto body = boost::json::parse(response->body);
    const auto& points = body.at("points").as_array();
    std::printf("%s %s %s server=%s, %zu points, step %lld s\n", args["service"].as<std::string>().c_str(),
                args["attr"].as<std::string>().c_str(), args["op"].as<std::string>().c_str(),
                args["server"].as<std::string>().c_str(), points.size(),
                static_cast<long long>(body.at("step").to_number<int64_t>()));
    std::printf("%-18s %16s %16s %16s\n", "time (UTC)", "value", "min", "max");
    std::vector<double> values;
    for (const auto& p : points) {
      const auto& row = p.as_array();
      const double value = row.at(1).to_number<double>();
      values.push_back(value);
      std::printf("%-18s %16.6g %16.6g %16.6g\n", utc(row.at(0).to_number<int64_t>()).c_str(), value,
                  row.at(2).to_number<double>(), row.at(3).to_number<double>());
    }
    std::printf("%s\n", sparkline(values).c_str());
    return 0;
  } catch (const ConsoleError&) {
    throw;  // main() prints it with its own exit code
  } catch (const std::exception& e) {
    std::fprintf(stderr, "monitorctl query: %s\n", e.what());
    return 2;
  }
}

}  // namespace monitor::console
