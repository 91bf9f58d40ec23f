// Collects Google Benchmark results so a bench can print each headline figure
// beside its peer from the same run (this machine is too noisy for absolutes).
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace monitor::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      const std::string name = run.run_name.str();
      if (median || (run.run_type == Run::RT_Iteration && medians_.count(name) == 0)) {
        auto it = run.counters.find("items_per_second");
        Result r;
        r.items_per_second = it != run.counters.end() ? static_cast<double>(it->second) : 0.0;
        r.threads = static_cast<int>(run.threads);
        for (const auto& [key, counter] : run.counters) r.counters[key] = static_cast<double>(counter);
        results_[name] = r;
        if (median) medians_[name] = true;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  struct Result {
    double items_per_second = 0;
    int threads = 1;
    std::map<std::string, double> counters;
    double ns_per_item_per_thread() const {
      return items_per_second > 0 ? 1e9 * threads / items_per_second : 0;
    }
  };

  /// The result for a run name such as "BM_AttrHandle/real_time/threads:1"; a
  /// zero result when it did not run (filtered out).
  Result get(const std::string& name) const {
    auto it = results_.find(name);
    return it == results_.end() ? Result{} : it->second;
  }

  /// Prints a name and every run name seen, to help match get() calls.
  void list() const {
    for (const auto& [name, r] : results_) std::printf("  %s\n", name.c_str());
  }

 private:
  std::map<std::string, Result> results_;
  std::map<std::string, bool> medians_;
};

/// One row of the summary: "figure  ours  peer  ratio  goal".
inline void print_row(const char* figure, double ours, const char* ours_unit, const char* peer_name, double peer,
                      double ratio, const char* goal) {
  std::printf("| %-44s | %10.2f %-9s | %-34s %10.2f | %6.2fx | %-26s |\n", figure, ours, ours_unit, peer_name, peer,
              ratio, goal);
}

inline void print_header(const char* title) {
  std::printf("\n%s\n", title);
  std::printf("| %-44s | %-20s | %-45s | %-7s | %-26s |\n", "figure", "ours", "peer (same run)", "ratio", "goal");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(22, '-').c_str(),
              std::string(47, '-').c_str(), std::string(9, '-').c_str(), std::string(28, '-').c_str());
}

}  // namespace monitor::bench
