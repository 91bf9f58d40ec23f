#include "console/query_command.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <boost/json.hpp>
#include <cxxopts.hpp>
#include <fmt/format.h>

#include "common/default_paths.hpp"
#include "common/sparkline.hpp"
#include "registry/registry.hpp"
#include "registry/hosts.hpp"
#include "console/console_context.hpp"
#include "registry/placement.hpp"
#include "query/judger_client.hpp"
#include "query/series_merge.hpp"

namespace monitor::console {

using query::merge_cells;
namespace {

// The judgers to ask: --query-address, or --judger, or the service's judger
// and those it left within the range (a service that moved); each with its
// query address, empty when it is not live.
std::vector<HoldingJudger> find_judgers(const cxxopts::ParseResult& args, const std::string& service, int64_t from) {
  if (args.count("query-address")) return {{"", args["query-address"].as<std::string>()}};
  Console console(args);
  if (!args.count("judger")) return holding_judgers(console, service, from);
  const std::string name = args["judger"].as<std::string>();
  const std::string query = console.check(registry::judger_query(console.registry(), name), "reading judger " + name);
  if (query.empty()) throw ConsoleError(kExitUnreachable, fmt::format("judger {} is not live in {}", name, console.address()));
  return {{name, query}};
}

// A server id, or the id of the live host of that name (its agent's entry).
int64_t resolve_server(const cxxopts::ParseResult& args, const std::string& text) {
  if (const auto id = registry::parse_server_id(text)) return *id;  // no registry needed
  Console console(args);
  return server_of(console, "--server", text);
}

}  // namespace

int query_command(int argc, char** argv) {
  cxxopts::Options options("monitorctl query", "Prints a series from a judger: a table and a sparkline, or JSON.");
  options.add_options()
      ("service", "service, e.g. Shop.Api", cxxopts::value<std::string>())
      ("attr", "attr, e.g. Orders.Placed", cxxopts::value<std::string>())
      ("op", "SUM MAX MIN AVG FIRST LAST COUNT HIST_P50 HIST_P90 HIST_P99 HIST_P999", cxxopts::value<std::string>()->default_value("SUM"))
      ("server", "server id, a host name (monitorctl host list), or total", cxxopts::value<std::string>()->default_value("total"))
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
    use_token(args);
    const std::string output = args["output"].as<std::string>();
    if (output != "table" && output != "json") throw std::invalid_argument("--output must be table or json");
    const int64_t now = unix_now();
    const int64_t from = parse_time("--from", args["from"].as<std::string>(), now);
    const int64_t to = parse_time("--to", args["to"].as<std::string>(), now);
    if (from >= to) throw std::invalid_argument(fmt::format("--from must be before --to ({} >= {})", from, to));
    const std::string service = args["service"].as<std::string>();
    const auto judgers = find_judgers(args, service, from);
    // A host name stands for its server id (its agent's registry entry).
    std::string server = args["server"].as<std::string>();
    if (server != "total") server = std::to_string(resolve_server(args, server));
    const query::SeriesRef series{service, args["attr"].as<std::string>(), args["op"].as<std::string>()};
    const int64_t step = args["step"].as<int>();
    // The body of a judger's answer, or the exit code of its failure.
    auto take = [&](const std::string& address, query::JudgerClient::Answer response) -> std::variant<std::string, int> {
      if (!response) {
        std::fprintf(stderr, "monitorctl query: judger at %s: %s\n", address.c_str(), response.error().message().c_str());
        return 3;
      }
      if (response->status != 200) {
        std::fprintf(stderr, "monitorctl query: judger at %s answered %u: %s\n", address.c_str(), response->status,
                     response->body.c_str());
        return response->status == 400 ? 2 : 3;
      }
      return std::move(response->body);
    };
    std::string body_text;
    if (judgers.size() == 1) {
      auto got = take(judgers[0].query,
                      query::JudgerClient(judgers[0].query).series(series, server, from, to, step));
      if (auto* rc = std::get_if<int>(&got)) return *rc;
      body_text = std::get<std::string>(std::move(got));
    } else {
      // The service moved within the range: its minutes may be split across
      // these judgers. Merge their mergeable state, minute by minute.
      std::vector<boost::json::value> replies;
      boost::json::array asked, missing;
      for (const auto& [name, address] : judgers) {
        if (address.empty()) {
          missing.push_back(boost::json::value(name));
          std::fprintf(stderr, "monitorctl query: judger %s held %s within the range and is not live: minutes it "
                               "holds are missing\n", name.c_str(), service.c_str());
          continue;
        }
        auto got = take(address, query::JudgerClient(address).cells(series, server, from, to));
        if (auto* rc = std::get_if<int>(&got)) return *rc;
        boost::system::error_code ec;
        replies.push_back(boost::json::parse(std::get<std::string>(got), ec));
        if (ec) throw std::runtime_error(fmt::format("judger {} sent cells that do not parse", name));
        asked.push_back(boost::json::value(name));
      }
      if (replies.empty()) {
        throw ConsoleError(kExitUnreachable, fmt::format("no judger that held {} in the range is live", service));
      }
      std::string error;
      auto merged = merge_cells(replies, args["op"].as<std::string>(), std::max(60, args["step"].as<int>()), error);
      if (!merged) throw std::runtime_error(error);
      (*merged)["service"] = service;
      (*merged)["attr"] = args["attr"].as<std::string>();
      (*merged)["op"] = args["op"].as<std::string>();
      (*merged)["server"] = args["server"].as<std::string>();
      (*merged)["from"] = from;
      (*merged)["to"] = to;
      (*merged)["judgers"] = std::move(asked);
      (*merged)["missing"] = std::move(missing);
      body_text = boost::json::serialize(*merged);
    }
    if (output == "json") {
      std::puts(body_text.c_str());
      return 0;
    }
    const auto body = boost::json::parse(body_text);
    const auto& points = body.at("points").as_array();
    std::printf("%s %s %s server=%s, %zu points, step %lld s\n", args["service"].as<std::string>().c_str(),
                args["attr"].as<std::string>().c_str(), args["op"].as<std::string>().c_str(),
                args["server"].as<std::string>().c_str(), points.size(),
                static_cast<long long>(body.at("step").to_number<int64_t>()));
    std::printf("%-18s %16s %16s %16s\n", "time (UTC)", "value", "min", "max");
    std::vector<std::optional<double>> values;
    for (const auto& p : points) {
      const auto& row = p.as_array();
      const double value = row.at(1).to_number<double>();
      values.push_back(value);
      std::printf("%-18s %16.6g %16.6g %16.6g\n", utc_text(row.at(0).to_number<int64_t>(), "%Y-%m-%d %H:%M").c_str(), value,
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
