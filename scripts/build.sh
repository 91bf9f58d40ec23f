#!/usr/bin/env bash
# Configures and builds everything (tests and benches included) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMONITOR_WERROR=ON >/dev/null
cmake --build build
