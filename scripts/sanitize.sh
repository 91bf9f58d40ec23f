#!/usr/bin/env bash
# The sanitizer leg of scripts/test.sh: every unit test under ASan + UBSan
# (build-asan/), and every end-to-end test but the [slow] ones (those wait
# for minutes to end; they run in the normal build) with the daemons they
# start built the same way (the tests themselves are the normal build's); and
# the tests of the lock-free ring, the spool and the forwarder under TSan
# (build-tsan/). Both trees build with clang (scripts/install-deps.sh installs
# it for the fuzzers): it compiles this code at -O0 with the sanitizers in
# half GCC's time, and these builds are the critical path of .ci/run's 30
# minutes on two cores; the normal build stays GCC's. Without debug info, and
# the ASan tree not optimised at all: its tests mostly wait. TSan's tree is
# small and its tests compute: -O1. Warnings are not errors here (the normal
# build keeps -Werror).
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

# The unit tests compute, the end-to-end tests mostly wait for a second or a
# minute to end: they run side by side (one after the other took 10 minutes
# more of CI's 30).
mkdir -p build-asan/e2e-logs
echo "sanitize: unit tests under ASan + UBSan (meanwhile, the end-to-end tests)" >&2
(
  unit_rc=0 tsan_rc=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 build-asan/tests/unit \
    > build-asan/unit.log 2>&1 || unit_rc=$?
  echo "sanitize: ring, spool, forwarder and datagram pump tests under TSan" >> build-asan/unit.log
  TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/unit_concurrency >> build-asan/unit.log 2>&1 || tsan_rc=$?
  [ "$unit_rc" -eq 0 ] && [ "$tsan_rc" -eq 0 ]
) &
unit_job=$!

echo "sanitize: end-to-end tests (all but [slow]) with the daemons under ASan + UBSan" >&2
# The daemons inherit the options: a leak or an error in any of them fails its exit code, so the test.
# Five at a time: most of their time is spent waiting for a second or a minute to end.
e2e_rc=0
(
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # The normal build's tests, starting the daemons (and the writer) built here
  # with the sanitizers: what they check is the daemons, not the test code.
  export MONITOR_TEST_SWAP_TREE="$PWD/build=$PWD/build-asan"
  # Catch 2 exits with the number of tests it listed, so that status is not a failure.
  names=$(build/tests/e2e --list-test-names-only "~[slow]" | grep -v '^$' || true)
  [ -n "$names" ] || { echo "sanitize: the e2e binary listed no tests" >&2; exit 1; }
  printf '%s\n' "$names" |
    # A Catch test spec escapes , [ and \ in a name.
    sed -e 's/\\/\\\\/g' -e 's/,/\\,/g' -e 's/\[/\\[/g' |
    xargs -d '\n' -P 5 -I{} sh -c 'log="build-asan/e2e-logs/$(echo "$1" | md5sum | cut -c1-12).log"
      if build/tests/e2e "$1" > "$log" 2>&1; then echo "passed: $1"; else cat "$log"; echo "FAILED: $1"; exit 1; fi' _ {}
) || e2e_rc=$?

unit_rc=0
wait "$unit_job" || unit_rc=$?
cat build-asan/unit.log
[ "$e2e_rc" -eq 0 ] && [ "$unit_rc" -eq 0 ]
