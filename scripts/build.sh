#!/usr/bin/env bash
# Configures and builds everything (tests and benches included) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# MONITOR_BUILD_BENCH=OFF (scripts/test.sh) leaves the benchmarks out.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMONITOR_WERROR=ON \
  -DMONITOR_BUILD_BENCH="${MONITOR_BUILD_BENCH:-ON}" >/dev/null
cmake --build build
