#!/usr/bin/env bash
# Configures and builds into build/: everything (tests and benches included),
# or with --demo only what the quick start runs (the daemons, monitorctl, the
# demo app and the dashboard's web assets), after installing only what those need.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--demo" ]; then
  scripts/install-deps.sh --demo
  # A tree configured before (by the tests) keeps its options; a fresh one
  # leaves out the tests and benches, whose packages the demo did not install.
  if [ ! -f build/CMakeCache.txt ]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMONITOR_WERROR=ON \
      -DMONITOR_BUILD_TESTS=OFF -DMONITOR_BUILD_BENCH=OFF >/dev/null
  fi
  cmake --build build --target monitor-agent monitor-judger monitor-proxy monitor-dashboard monitorctl \
    monitor-demo dashboard_web
  exit 0
fi
scripts/install-deps.sh
# MONITOR_BUILD_BENCH=OFF (scripts/test.sh) leaves the benchmarks out.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMONITOR_WERROR=ON \
  -DMONITOR_BUILD_TESTS=ON -DMONITOR_BUILD_BENCH="${MONITOR_BUILD_BENCH:-ON}" >/dev/null
cmake --build build
