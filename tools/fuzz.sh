#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) in build-fuzz/ (clang, libFuzzer + ASan + UBSan,
# libraries and fuzz targets only) and runs each for a bounded time over a scratch copy of its
# checked-in seed corpus (tests/fuzz/corpus/<target>/): nothing is ever written into the
# checkout. Prints executions and CPU seconds per target, then "N passed, M failed".
# Exits non-zero if any target crashed (the crashing input is kept in the scratch dir, whose
# path is printed: minimise it with `<target> -minimize_crash=1 -runs=10000 <input>`, fix the
# bug, add the input to the corpus as regress_<what> and a gtest regression test).
#
#   NVLSCHED_FUZZ_SECONDS   seconds per target (default 20)
#   NVLSCHED_FUZZ_TARGETS   space-separated subset of targets (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.ccache}"

seconds="${NVLSCHED_FUZZ_SECONDS:-20}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: NVLSCHED_FUZZ_SECONDS must be a positive integer, got '$seconds'" >&2; exit 2; }
targets=(${NVLSCHED_FUZZ_TARGETS:-request_bytes_fuzzer request_json_fuzzer fleet_file_fuzzer auth_fuzzer list_instances_fuzzer allocator_ops_fuzzer})

[ -f build-fuzz/CMakeCache.txt ] || CC=clang CXX=clang++ cmake -S . -B build-fuzz \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" \
  -DNVLSCHED_SANITIZE=address,undefined -DNVLSCHED_TESTS_ONLY=ON -DNVLSCHED_FUZZ=ON >/dev/null
cmake --build build-fuzz -j2 --target nvlsched_fuzz_targets

scratch="$(mktemp -d "${TMPDIR:-/tmp}/nvlsched-fuzz.XXXXXX")"
passed=0
failed=0
TIMEFORMAT='%U %S'
for target in "${targets[@]}"; do
  binary="build-fuzz/fuzz/$target"
  [ -x "$binary" ] || { echo "fuzz.sh: no such target: $target" >&2; exit 2; }
  work="$scratch/$target"
  mkdir -p "$work/corpus" "$work/artifacts"
  if [ -d "tests/fuzz/corpus/$target" ]; then cp -r "tests/fuzz/corpus/$target/." "$work/corpus/"; fi
  seeds=$(find "$work/corpus" -type f | wc -l)
  rc=0
  # bash's `time` reports the child's user and system CPU seconds on stderr.
  { time ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      "$binary" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1 ; } 2>"$work/cpu" || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  cpu=$(awk '{printf "%.1f", $1 + $2}' "$work/cpu")
  corpus=$(find "$work/corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    printf '%-24s ok     %10s execs  %6s CPU s  corpus %d -> %d\n' "$target" "${execs:-?}" "$cpu" "$seeds" "$corpus"
  else
    failed=$((failed + 1))
    printf '%-24s FAILED (exit %d) after %s CPU s; log and input: %s\n' "$target" "$rc" "$cpu" "$work"
    grep -E 'ERROR: |runtime error|FUZZ_CHECK|SUMMARY|Test unit written' "$work/log" | head -20 || true
  fi
done

[ "$failed" -eq 0 ] && rm -rf "$scratch"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
