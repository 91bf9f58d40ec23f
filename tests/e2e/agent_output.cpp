#include "e2e/agent_output.hpp"

#include <fstream>
#include <stdexcept>

#include <boost/json.hpp>

namespace monitor::e2e {

std::map<SeriesKey, MergedSeries> read_agent_output(const std::string& path) {
  std::map<SeriesKey, MergedSeries> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const boost::json::object rec = boost::json::parse(line).as_object();
    const std::string op(rec.at("op").as_string());
    SeriesKey key{std::string(rec.at("service").as_string()), std::string(rec.at("attr").as_string()),
                  rec.at("server_id").to_number<int64_t>(), op};
    MergedSeries& m = out[key];
    ++m.seconds;
    model::Stats s;
    if (op == "SUM") {
      s.sum = rec.at("value").to_number<int64_t>();
    } else if (op == "MAX") {
      s.max = rec.at("value").to_number<int64_t>();
    } else if (op == "MIN") {
      s.min = rec.at("value").to_number<int64_t>();
    } else if (op == "COUNT") {
      s.count = static_cast<uint64_t>(rec.at("value").to_number<int64_t>());
    } else if (op == "AVG") {
      s.sum = rec.at("sum").to_number<int64_t>();
      s.count = static_cast<uint64_t>(rec.at("count").to_number<int64_t>());
    } else if (op == "FIRST") {
      s.first = rec.at("value").to_number<int64_t>();
      s.first_time = rec.at("time_ns").to_number<int64_t>();
    } else if (op == "LAST") {
      s.last = rec.at("value").to_number<int64_t>();
      s.last_time = rec.at("time_ns").to_number<int64_t>();
    } else if (op == "HIST") {
      s.count = static_cast<uint64_t>(rec.at("count").to_number<int64_t>());
      s.min = rec.at("min").to_number<int64_t>();
      s.max = rec.at("max").to_number<int64_t>();
      model::LogHistogram h;
      for (const auto& b : rec.at("buckets").as_array()) {
        const auto& pair = b.as_array();
        h.add_to_bucket(static_cast<int32_t>(pair.at(0).to_number<int64_t>()),
                        static_cast<uint64_t>(pair.at(1).to_number<int64_t>()));
      }
      m.hist.merge(h);
    } else {
      throw std::runtime_error("unknown op in agent output: " + op);
    }
    // Merge by the op's rule; Stats::merge applies every rule at once, and the
    // fields an op does not carry stay at their identity values.
    if (s.count == 0 && op != "COUNT" && op != "AVG" && op != "HIST") s.count = 1;  // so merge() takes it
    m.stats.merge(s);
  }
  return out;
}

int64_t self_metric_sum(const std::map<SeriesKey, MergedSeries>& series, const std::string& attr) {
  int64_t total = 0;
  for (const auto& [key, m] : series) {
    if (std::get<0>(key) == "Monitor.Agent" && std::get<1>(key) == attr && std::get<3>(key) == "SUM") {
      total += m.stats.sum;
    }
  }
  return total;
}

}  // namespace monitor::e2e
