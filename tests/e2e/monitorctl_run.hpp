// Running the real monitorctl from an end-to-end test, as a user would.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/temp_names.hpp"

namespace monitor::e2e {

struct Run {
  int rc = -1;
  std::string out, err;
};

/// monitorctl with `args` against `registry` (none if empty); its exit code,
/// stdout and stderr, each run's output kept under the test's directory.
inline Run monitorctl(const test::TempDir& dir, const std::string& registry, std::vector<std::string> args,
                      const std::vector<std::string>& env = {}) {
  static int n = 0;
  const std::string out = dir.file("ctl-" + std::to_string(++n) + ".out");
  const std::string err = dir.file("ctl-" + std::to_string(n) + ".err");
  args.insert(args.begin(), MONITORCTL_PATH);
  if (!registry.empty()) args.insert(args.end(), {"--registry", registry});
  auto process = test::ChildProcess::spawn(args, out, err, env);
  const auto rc = process.wait_for(std::chrono::seconds(30));
  return Run{rc.value_or(-1), test::read_file(out), test::read_file(err)};
}

}  // namespace monitor::e2e
