#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan; build-fuzz/) and runs
# each for SECONDS, all at once (each is one thread), from its committed
# corpus (fuzz/corpus/NAME) and what earlier runs found (build-fuzz/corpus/NAME).
# A crash leaves its input in build-fuzz/NAME-crash-*: commit it to
# fuzz/corpus/NAME as a regression input once fixed. Prints each fuzzer's
# last stats; exits non-zero if any fuzzer failed.
#   scripts/fuzz.sh [SECONDS (default 60)] [NAME...]   (default: every fuzzer)
#   scripts/fuzz.sh --build-only
# scripts/test.sh runs every fuzzer for 15 s; the notes report 10-minute runs (600).
set -euo pipefail
cd "$(dirname "$0")/.."
all=(line_parser wire_decoder rule query_api config registry_reply export_reply)
build_only=0
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi
seconds=${1:-60}
[ $# -gt 0 ] && shift
fuzzers=("$@")
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=("${all[@]}")

targets=()
for f in "${fuzzers[@]}"; do targets+=("${f}_fuzz"); done
# -O1 with line tables only: a crash's stack still names files and lines, and
# the tree builds in 230 CPU-seconds instead of 360 at -O2 -g (CI builds it
# beside the tests).
flags="-O1 -gline-tables-only -DNDEBUG"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$flags" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$flags" \
  -DMONITOR_BUILD_FUZZ=ON -DMONITOR_BUILD_TESTS=OFF -DMONITOR_BUILD_BENCH=OFF -DMONITOR_INSTALL=OFF >/dev/null
cmake --build build-fuzz --target "${targets[@]}"
[ "$build_only" = 0 ] || exit 0

declare -A pids
for f in "${fuzzers[@]}"; do
  mkdir -p "build-fuzz/corpus/$f"
  "build-fuzz/fuzz/${f}_fuzz" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/$f-" "build-fuzz/corpus/$f" "fuzz/corpus/$f" > "build-fuzz/$f.log" 2>&1 &
  pids[$f]=$!
done
failed=0
for f in "${fuzzers[@]}"; do
  if wait "${pids[$f]}"; then
    echo "fuzz: $f, $seconds s: $(grep -E '^stat::number_of_executed_units' "build-fuzz/$f.log" | awk '{print $2}') runs," \
      "$(grep -E '^stat::new_units_added' "build-fuzz/$f.log" | awk '{print $2}') new inputs," \
      "corpus $(find "build-fuzz/corpus/$f" "fuzz/corpus/$f" -type f | wc -l) files" >&2
  else
    echo "fuzz: $f FAILED" >&2
    tail -n 40 "build-fuzz/$f.log" >&2
    failed=$((failed + 1))
  fi
done
exit "$failed"
