#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, runs the unit, end-to-end
# and install/consumer tests with ctest (building the sanitizer and fuzzer
# trees meanwhile), the sanitizer leg (scripts/sanitize.sh: unit and end-to-end
# tests under ASan + UBSan, ring/spool/forwarder/pump tests under TSan, side
# by side), then every fuzzer (scripts/fuzz.sh) for 15 s when clang is
# present. Prints "N passed, N failed" whatever happened, and exits non-zero
# if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each leg's start on stderr: CI's 30 minutes are read off these.
started=$(date +%s)
leg() { echo "test.sh: $(( $(date +%s) - started )) s: $*" >&2; }
leg "install and build"
# Without the benchmarks: no test runs them, and CI's 30 minutes are tight
# (scripts/build.sh without arguments builds them).
MONITOR_BUILD_BENCH=OFF scripts/build.sh

# The sanitizer trees and the fuzzers build meanwhile at a lower priority:
# the tests wait more than they compute and keep the CPU when they need it,
# but this build is the run's critical path (at the lowest priority it was
# half done when the tests ended), so not the lowest.
(
  nice -n 5 scripts/sanitize.sh build
  if command -v clang++ >/dev/null; then nice -n 5 scripts/fuzz.sh --build-only; fi
) > build/sanitize-build.log 2>&1 &
background_build=$!

# Five at a time on two cores: most end-to-end tests wait for seconds and
# minutes to end, so the run is bound by how many wait at once, not by CPU.
set +e  # a failing test must still reach the summary below
leg "ctest (the sanitizer and fuzzer trees build meanwhile)"
(cd build && ctest --output-on-failure -j5) 2>&1 | tee build/ctest.log
ctest_rc=${PIPESTATUS[0]}
leg "ctest done; waiting for the sanitizer and fuzzer builds"
wait "$background_build"
background_rc=$?
leg "sanitizer and fuzzer builds done"
set -e
summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' build/ctest.log || true)
if [ -z "$summary" ]; then
  echo "test.sh: ctest printed no summary (exit $ctest_rc)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
total=$(echo "$summary" | sed -E 's/.* out of ([0-9]+)/\1/')
failed=$(echo "$summary" | sed -E 's/.*, ([0-9]+) tests failed.*/\1/')

sanitize_failed=0
if [ "$background_rc" -ne 0 ]; then
  tail -n 60 build/sanitize-build.log >&2
  sanitize_failed=1
elif ! scripts/sanitize.sh run > build/sanitize.log 2>&1; then
  tail -n 60 build/sanitize.log >&2
  sanitize_failed=1
else
  grep -E "^(All tests passed|test cases:|sanitize: [0-9]+ unit tests)" build/sanitize.log >&2 || true
fi

leg "sanitizer tests done"
fuzz_failed=0
if command -v clang++ >/dev/null; then
  # Every fuzzer at once from its corpus (each is one thread; this leg is on the critical path).
  scripts/fuzz.sh 15 || fuzz_failed=$?
fi

leg "all done"
echo "$((total - failed)) passed, $((failed + sanitize_failed + fuzz_failed)) failed"
[ "$failed" -eq 0 ] && [ "$sanitize_failed" -eq 0 ] && [ "$fuzz_failed" -eq 0 ] && [ "$ctest_rc" -eq 0 ]
