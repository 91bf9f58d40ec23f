#!/usr/bin/env bash
# The sanitizer leg of scripts/test.sh: every unit test under ASan + UBSan
# (build-asan/), and every end-to-end test but the [slow] ones (those wait
# for minutes to end; they run in the normal build) with the daemons they
# start built the same way (the tests themselves are the normal build's); and
# the tests of the lock-free ring, the spool and the forwarder under TSan
# (build-tsan/), all side by side, each test case in a process of its own.
# Both trees build with clang (scripts/install-deps.sh installs it for the
# fuzzers): it compiles this code at -O0 with the sanitizers in half GCC's
# time, and these builds are the critical path of .ci/run's 30 minutes on two
# cores; the normal build stays GCC's. Without debug info, and the ASan tree
# not optimised at all: its tests mostly wait. TSan's tree is small and its
# tests compute: -O1. Warnings are not errors here (the normal build keeps
# -Werror).
#   scripts/sanitize.sh [build|run]    (default: both; scripts/test.sh builds
#                                       while the normal tests run)
set -euo pipefail
cd "$(dirname "$0")/.."
phase="${1:-all}"

configure() {  # configure DIR OPTIMISATION FLAGS [CMAKE OPTION...]
  # A tree an older version of this script configured with GCC: CMake would not switch it.
  if [ -f "$1/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang++' "$1/CMakeCache.txt"; then rm -rf "$1"; fi
  CC=clang CXX=clang++ cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="$2 -DNDEBUG" \
    -DCMAKE_C_FLAGS_RELEASE="$2 -DNDEBUG" -DMONITOR_BUILD_BENCH=OFF -DMONITOR_INSTALL=OFF \
    -DMONITOR_WERROR=OFF -DCMAKE_CXX_FLAGS="$3" -DCMAKE_C_FLAGS="$3" \
    -DCMAKE_EXE_LINKER_FLAGS="$3" -DCMAKE_SHARED_LINKER_FLAGS="$3" "${@:4}" >/dev/null
}

if [ "$phase" != run ]; then
  echo "sanitize: building under ASan + UBSan, and under TSan" >&2
  # Not -fsanitize=function: clang 14 cannot emit its prologue data for a
  # coroutine's split parts ("Cannot represent a difference across sections").
  configure build-asan -O0 "-fsanitize=address,undefined -fno-sanitize=function -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    -DMONITOR_TEST_CODE_WITHOUT_UBSAN=ON
  # Not the e2e binary: the normal build's runs these daemons (MONITOR_TEST_SWAP_TREE below).
  cmake --build build-asan --target unit e2e_writer monitor-agent monitor-judger monitor-proxy monitorctl \
    monitor-dashboard monitor-demo
  configure build-tsan -O1 "-fsanitize=thread"
  cmake --build build-tsan --target unit_concurrency
fi
[ "$phase" != build ] || exit 0

# run_each BINARY SPEC PARALLEL LOGDIR: each test case of a Catch
# binary in a process of its own, PARALLEL at once (as ctest runs them: each
# uses its own names and ports); prints "passed: NAME" or the log and
# "FAILED: NAME", and fails if any failed.
run_each() {
  local binary=$1 spec=$2 parallel=$3 logs=$4
  mkdir -p "$logs"
  # Catch 2 exits with the number of tests it listed, so that status is not a failure.
  local names
  names=$("$binary" --list-test-names-only "$spec" | grep -v '^$' || true)
  [ -n "$names" ] || { echo "sanitize: $binary listed no tests" >&2; return 1; }
  printf '%s\n' "$names" |
    # A Catch test spec escapes , [ and \ in a name.
    sed -e 's/\\/\\\\/g' -e 's/,/\\,/g' -e 's/\[/\\[/g' |
    xargs -d '\n' -P "$parallel" -I{} sh -c 'log="$2/$(echo "$1" | md5sum | cut -c1-12).log"
      if "$3" "$1" > "$log" 2>&1; then echo "passed: $1"; else cat "$log"; echo "FAILED: $1"; exit 1; fi' _ {} "$logs" "$binary"
}

# The unit tests, the TSan tests and the end-to-end tests side by side, each
# test case in its own process: most of them wait (for a second or a minute
# to end, for a peer), and one after the other this leg was the last three
# minutes of .ci/run.
echo "sanitize: unit tests under ASan + UBSan, ring/spool/forwarder/pump tests under TSan, end-to-end tests" >&2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/unit_concurrency > build-tsan/unit_concurrency.log 2>&1 &
tsan_job=$!
run_each build-asan/tests/unit "*" 3 build-asan/unit-logs > build-asan/unit.log 2>&1 &
unit_job=$!

# The normal build's end-to-end tests (but [slow]: those wait for minutes to
# end and run in the normal build), starting the daemons (and the writer)
# built here with the sanitizers: what they check is the daemons, not the
# test code. The daemons inherit the options: a leak or an error in any of
# them fails its exit code, so the test.
e2e_rc=0
MONITOR_TEST_SWAP_TREE="$PWD/build=$PWD/build-asan" run_each build/tests/e2e "~[slow]" 5 build-asan/e2e-logs || e2e_rc=$?

unit_rc=0 tsan_rc=0
wait "$unit_job" || unit_rc=$?
wait "$tsan_job" || tsan_rc=$?
if [ "$unit_rc" -ne 0 ]; then cat build-asan/unit.log; fi
echo "sanitize: $(grep -c '^passed: ' build-asan/unit.log) unit tests passed under ASan + UBSan" \
  "($(grep -c '^FAILED: ' build-asan/unit.log) failed)"
echo "sanitize: ring, spool, forwarder and datagram pump tests under TSan:"
tail -n 3 build-tsan/unit_concurrency.log
[ "$e2e_rc" -eq 0 ] && [ "$unit_rc" -eq 0 ] && [ "$tsan_rc" -eq 0 ]
