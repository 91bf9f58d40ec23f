#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, runs the unit, end-to-end
# and install/consumer tests with ctest, then the line-parser fuzzer for a
# short while when clang is present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
(cd build && ctest --output-on-failure -j2) | tee build/ctest.log
summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' build/ctest.log)

if command -v clang++ >/dev/null; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMONITOR_BUILD_FUZZ=ON -DMONITOR_BUILD_TESTS=OFF -DMONITOR_BUILD_BENCH=OFF -DMONITOR_INSTALL=OFF >/dev/null
  cmake --build build-fuzz --target line_parser_fuzz wire_decoder_fuzz
  for fuzzer in line_parser wire_decoder; do
    mkdir -p "build-fuzz/corpus/$fuzzer"
    echo "fuzz: $fuzzer, 15 s" >&2
    "build-fuzz/fuzz/${fuzzer}_fuzz" -max_total_time=15 -max_len=4096 -print_final_stats=1 \
      "build-fuzz/corpus/$fuzzer" "fuzz/corpus/$fuzzer" 2>&1 | tail -n 3
  done
fi
total=$(echo "$summary" | sed -E 's/.* out of ([0-9]+)/\1/')
failed=$(echo "$summary" | sed -E 's/.*, ([0-9]+) tests failed.*/\1/')
echo "$((total - failed)) passed, $failed failed"
