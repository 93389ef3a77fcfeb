#!/usr/bin/env bash
# Builds and runs the whole nvlsched test suite:
#   1. build/        g++ Release: every test tier (unit, store, grpc, e2e, pg)
#   2. build-asan/   g++ ASan+UBSan: every tier again
#   3. build-tsan/   clang TSan + -Wthread-safety (lock annotations checked): the tiers with
#                    threads (grpc, e2e)
#   4. build-fuzz/   clang libFuzzer + ASan + UBSan: every fuzz target for 20 s over its seed
#                    corpus (tools/fuzz.sh)
# The pg tier runs against a throw-away PostgreSQL 15 (tools/pg_dev.sh) started fresh for this
# run in $TMPDIR, its URI exported as NVLSCHED_TEST_PG_URI, stopped and deleted on exit.
# Stops at the first failure. Uses 2 build jobs (CI machines have 2 cores); ccache speeds rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.ccache}"

step() { printf '\n=== %s\n' "$*"; }

step "PostgreSQL for the pg tests (tools/pg_dev.sh)"
pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/nvlsched-pg.XXXXXX")"
# Keeps the script's exit status whatever stopping the server does.
stop_pg() {
  local status=$?
  if [ ! -f "$pg_dir/data/PG_VERSION" ] || tools/pg_dev.sh stop "$pg_dir"; then
    rm -rf "$pg_dir" || true
  else
    echo "test.sh: could not stop the PostgreSQL in $pg_dir; stop it with: tools/pg_dev.sh stop $pg_dir" >&2
  fi
  exit "$status"
}
trap stop_pg EXIT
trap 'exit 130' INT  # so that Ctrl-C still stops the server
trap 'exit 143' TERM
NVLSCHED_TEST_PG_URI="$(tools/pg_dev.sh start "$pg_dir")" ||
  { echo "test.sh: could not start PostgreSQL in $pg_dir (see above); the pg tests need it" >&2; exit 1; }
export NVLSCHED_TEST_PG_URI
echo "$NVLSCHED_TEST_PG_URI"

step "build/ (g++ Release)"
[ -f build/CMakeCache.txt ] || cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
step "tests: build/"
ctest --test-dir build --output-on-failure -j2

step "build-asan/ (g++ ASan+UBSan)"
# -g1 (line tables) keeps sanitizer stack traces readable at a fraction of -g's compile time.
[ -f build-asan/CMakeCache.txt ] || cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 \
  -DNVLSCHED_SANITIZE=address,undefined -DNVLSCHED_TESTS_ONLY=ON >/dev/null
cmake --build build-asan -j2
step "tests: build-asan/"
# Fewer kill -9 rounds under the sanitizers: the plain build already runs the full count.
NVLSCHED_CRASH_ROUNDS=4 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  LSAN_OPTIONS="suppressions=$PWD/tools/lsan.supp" \
  ctest --test-dir build-asan --output-on-failure -j2

step "build-tsan/ (clang TSan, -Wthread-safety)"
[ -f build-tsan/CMakeCache.txt ] || CC=clang CXX=clang++ cmake -S . -B build-tsan \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" \
  -DNVLSCHED_SANITIZE=thread -DNVLSCHED_TESTS_ONLY=ON \
  "-DNVLSCHED_TEST_LABELS=grpc;e2e" >/dev/null
cmake --build build-tsan -j2
step "tests: build-tsan/"
# tools/tsan.supp: races TSan reports inside the uninstrumented gRPC libraries Debian ships.
NVLSCHED_CRASH_ROUNDS=4 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tools/tsan.supp" \
  ctest --test-dir build-tsan --output-on-failure -j2

step "fuzz: build-fuzz/ (clang libFuzzer+ASan+UBSan, 20 s per target)"
tools/fuzz.sh

step "all test tiers passed"
