#!/usr/bin/env bash
# Reruns every measurement nvlsched quotes and writes one Markdown report (default
# bench/REPORT.md): the machine, the core benchmark, the gRPC load generator (batch and noop,
# both sync modes; with --sync=full also batch at a fixed rate of half the closed loop's, and
# batch with 8 ListInstances readers) against a real daemon on 127.0.0.1, the same on a
# 100,008-machine fleet held at 65%, the PostgreSQL store against SQLite (a throw-away server
# from tools/pg_dev.sh), and the trace replay of the Philly trace (drop and wait).
# Usage: bench/report.sh [REPORT.md]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench/REPORT.md}"
trace="${NVLSCHED_TRACE:-../shared/data/philly.csv}"
tools/install_deps.sh
[ -f build-bench/CMakeCache.txt ] || cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j2 --target nvlschedd nvlsched-fleet nvlsched-load nvlsched-replay \
  nvlsched_core_bench nvlsched_engine_bench nvlsched-gendb nvlsched-startup-probe >/dev/null
bin=build-bench/bin
work=$(mktemp -d)
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
  [ -d "$work/pg/data" ] && tools/pg_dev.sh stop "$work/pg" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

{
  echo "# nvlsched measurements"
  echo
  echo "Written by \`bench/report.sh\` on $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)."
  echo
  echo "## Machine"
  echo '```'
  echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "kernel: $(uname -sr)"
  echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, at the start)"
  echo '```'
  echo
  echo "## Core benchmark (\`nvlsched_core_bench\`, in-process, no I/O)"
  echo "9 repetitions of each case: the median and the fastest (_min). This machine is shared:"
  echo "runs of the same binary vary by 30% or more, and the minimum is the least disturbed."
  echo '```'
  "$bin/nvlsched_core_bench" --benchmark_min_time=0.2 --benchmark_repetitions=9 \
    --benchmark_report_aggregates_only=true 2>/dev/null | grep -E '^(BM_.*_(median|min)|-|Benchmark)' |
    sed -E '/_min /s/( +[0-9]+) +[a-z_]+=.*$/\1/'  # a minimum of rates would be the slowest rate
  echo '```'
} > "$out"

# Each thread of process $1: its name, then its schedstat (ns on a CPU, ns runnable and waiting
# for one, times it ran).
thread_times() {
  local task
  for task in /proc/"$1"/task/*; do
    printf '%s %s %s\n' "$(basename "$task")" "$(tr ' ' _ <"$task/comm")" "$(cat "$task/schedstat")"
  done 2>/dev/null
}
# The CPU and wait time of each thread name between snapshots $1 and $2, per call of $3 calls.
thread_table() {
  awk -v calls="$3" '
    NR == FNR { run[$1] = $3; wait[$1] = $4; next }
    { name[$2] = 1; cpu[$2] += ($3 - run[$1]) / 1e6; waited[$2] += ($4 - wait[$1]) / 1e6 }
    END {
      printf "%-16s %9s %9s %12s %12s\n", "thread", "cpu ms", "wait ms", "cpu us/call", "wait us/call"
      for (n in name) if (cpu[n] >= 1)
        printf "%-16s %9.0f %9.0f %12.1f %12.1f\n", n, cpu[n], waited[n],
          (calls > 0 ? cpu[n] * 1000 / calls : 0), (calls > 0 ? waited[n] * 1000 / calls : 0)
    }' "$1" "$2" | { IFS= read -r header; echo "$header"; sort -k2,2nr; }
}

# The p50, p90 and p99 of histogram $3 with label selector $4 (e.g. 'stage="queued"') between
# the /metrics scrapes $1 and $2: the upper bounds of the buckets they fall in, in ms.
histogram_delta() {
  awk -v name="$3_bucket{" -v sel="$4" '
    function le_of(line) { sub(/.*le="/, "", line); sub(/".*/, "", line); return line }
    index($0, name) != 1 || (sel != "" && index($0, sel) == 0) { next }
    NR == FNR { before[le_of($0)] = $2; next }
    { n++; le[n] = le_of($0); count[n] = $2 - before[le[n]] }
    END {
      if (n == 0 || count[n] <= 0) { print "no observations"; exit }
      split("50 90 99", qs, " ")
      for (j = 1; j <= 3; j++) {
        for (i = 1; i <= n && count[i] < count[n] * qs[j] / 100; i++) {}
        printf "p%s <= %s ms%s", qs[j], (le[i] == "+Inf" ? "inf" : le[i] * 1000), (j < 3 ? ", " : "")
      }
      printf " (%d observed)\n", count[n]
    }' "$1" "$2"
}

"$bin/nvlsched-fleet" --domains=100 --machines_per_domain=18 --out="$work/fleet.json"
for sync in full normal; do
  rm -f "$work/db"* "$work/port"
  "$bin/nvlschedd" --listen=127.0.0.1:0 --port_file="$work/port" --metrics_listen=127.0.0.1:0 \
    --db="$work/db" --seed_fleet="$work/fleet.json" --sync="$sync" --require_cleaning=false \
    2>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  port=$(cat "$work/port")
  metrics_port=$(sed -n 's|.*metrics on http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$work/daemon.log" | head -1)
  {
    echo
    echo "## Load: batch create/delete vs the noop ceiling, \`--sync=$sync\`"
    echo "Fleet 100 domains × 18 machines; batches of 2–18, each held until 100 newer exist;"
    echo "64 calls in flight; 10 s. The client runs on the same 2 cores as the daemon."
    echo '```'
    "$bin/nvlsched-load" --target="127.0.0.1:$port" --fleet_file="$work/fleet.json" \
      --workload=batch --concurrency=64 --duration=10s --hold=100 --compare_noop >"$work/batch.txt"
    cat "$work/batch.txt"
    echo '```'
  } >> "$out"
  # The closed loop's batch calls/s, from its text line "batch: N calls in T s = R calls/s; ...".
  closed_rate=$(awk '/^batch: / {for (i = 2; i <= NF; i++) if ($i == "calls/s;") {print $(i - 1); exit}}' \
    "$work/batch.txt")
  if [ "$sync" = full ] && [ -n "$closed_rate" ]; then
    half_rate=$(awk -v r="$closed_rate" 'BEGIN {printf "%.0f", r / 2}')
    {
      echo
      echo "## Load: batch at a fixed rate, \`--sync=$sync\`"
      echo "Open loop at $half_rate calls/s, half the closed loop's $closed_rate: calls sent on a fixed"
      echo "schedule whatever the completions, at most 64 in flight; latency from each call's"
      echo "intended send time (no coordinated omission). Same daemon, after the runs above; 10 s."
      echo '```'
      thread_times "$daemon_pid" >"$work/threads0.txt"
      curl -s "http://127.0.0.1:$metrics_port/metrics" >"$work/metrics0.txt" || true
      "$bin/nvlsched-load" --target="127.0.0.1:$port" --fleet_file="$work/fleet.json" \
        --workload=batch --rate="$half_rate" --concurrency=64 --duration=10s --hold=100 \
        >"$work/rate.txt"
      thread_times "$daemon_pid" >"$work/threads1.txt"
      curl -s "http://127.0.0.1:$metrics_port/metrics" >"$work/metrics1.txt" || true
      cat "$work/rate.txt"
      echo '```'
      # The "all" row: rpc, calls, calls/s, p50, p90, p99, max.
      echo "p99 at $half_rate calls/s: $(awk '$1 == "all" {print $6; exit}' "$work/rate.txt") ms"
      echo
      echo "The daemon's threads over that run (\`/proc/PID/task/*/schedstat\`, threads of one name"
      echo "summed): time on a CPU, time runnable but waiting for one, both per batch call."
      echo '```'
      thread_table "$work/threads0.txt" "$work/threads1.txt" \
        "$(awk '/^batch: / {print $2; exit}' "$work/rate.txt")"
      echo '```'
      echo
      echo "Where each write's time inside the daemon went over that run (\`/metrics\`,"
      echo "\`nvlsched_write_stage_seconds\`: bucket upper bounds), and its group commits:"
      echo '```'
      for stage in queued engine completion; do
        printf '%-11s %s\n' "$stage" "$(histogram_delta "$work/metrics0.txt" "$work/metrics1.txt" \
          nvlsched_write_stage_seconds "stage=\"$stage\"")"
      done
      printf '%-11s %s\n' commit "$(histogram_delta "$work/metrics0.txt" "$work/metrics1.txt" \
        nvlsched_commit_duration_seconds "")"
      echo '```'
      echo
      echo "## Load: batch with 8 ListInstances readers, \`--sync=$sync\`"
      echo "The closed-loop batch run again while 8 clients walk ListInstances (500 a page) as fast"
      echo "as they can, one call each in flight. Same daemon, after the runs above; 10 s."
      echo '```'
      "$bin/nvlsched-load" --target="127.0.0.1:$port" --fleet_file="$work/fleet.json" \
        --workload=batch --concurrency=64 --duration=10s --hold=100 --readers=8 \
        --read_page_size=500 >"$work/readers.txt"
      cat "$work/readers.txt"
      echo '```'
      readers_rate=$(awk '/^batch: / {for (i = 2; i <= NF; i++) if ($i == "calls/s;") {print $(i - 1); exit}}' \
        "$work/readers.txt")
      awk -v with="${readers_rate:-0}" -v without="$closed_rate" 'BEGIN {
        printf "batch calls/s: %.1f without readers, %.1f with 8 readers; with / without = %.3f\n",
          without, with, (without > 0 ? with / without : 0) }'
    } >> "$out"
  elif [ "$sync" = full ]; then
    echo "no batch calls/s in the closed-loop output: fixed-rate and readers runs left out" >> "$out"
  fi
  kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=""
done

# A daemon on $1 (a database path or URI) with fleet file $2; sets daemon_pid and port.
start_daemon() {
  rm -f "$work/port"
  "$bin/nvlschedd" --listen=127.0.0.1:0 --port_file="$work/port" --metrics_listen= \
    --db="$1" --seed_fleet="$2" --require_cleaning=false 2>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 600); do [ -s "$work/port" ] && break; sleep 0.1; done
  port=$(cat "$work/port")
}
stop_daemon() { kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=""; }
batch_rate() {  # the closed loop's calls/s from nvlsched-load's text output in $1
  awk '/^batch: / {for (i = 2; i <= NF; i++) if ($i == "calls/s;") {print $(i - 1); exit}}' "$1"
}

# Flat in fleet size, through gRPC: 100,008 machines held at 65% by 3,611 kept batches of 18,
# then the same closed loop as on 1,800 machines.
"$bin/nvlsched-fleet" --domains=5556 --machines_per_domain=18 --out="$work/fleet100k.json"
start_daemon "$work/db100k" "$work/fleet100k.json"
"$bin/nvlsched-load" --target="127.0.0.1:$port" --fleet_file="$work/fleet100k.json" \
  --workload=batch --min_count=18 --max_count=18 --hold=1000000 --max_calls=3611 \
  --duration=600s --cleanup=false >"$work/fill.txt"
"$bin/nvlsched-load" --target="127.0.0.1:$port" --fleet_file="$work/fleet100k.json" \
  --workload=batch --concurrency=64 --duration=10s --hold=100 >"$work/batch100k.txt"
stop_daemon
start_daemon "$work/db1800" "$work/fleet.json"
"$bin/nvlsched-load" --target="127.0.0.1:$port" --fleet_file="$work/fleet.json" \
  --workload=batch --concurrency=64 --duration=10s --hold=100 >"$work/batch1800.txt"
stop_daemon
{
  echo
  echo "## Load: 100,008 machines held at 65% against 1,800, \`--sync=full\`"
  echo "5,556 domains × 18, first filled by 3,611 kept strict batches of 18; then the closed loop"
  echo "of the first section (batches of 2–18 held until 100 newer exist, 64 in flight, 10 s),"
  echo "right after the same run on a fresh 100 × 18 fleet."
  echo '```'
  cat "$work/batch100k.txt"
  echo '```'
  awk -v big="$(batch_rate "$work/batch100k.txt")" -v small="$(batch_rate "$work/batch1800.txt")" \
    'BEGIN { printf "batch calls/s: %.1f at 100,008 machines, %.1f at 1,800; ratio %.2f\n",
             big, small, (small > 0 ? big / small : 0) }'
} >> "$out"

# The PostgreSQL store (issue 22) against SQLite: a throw-away server (tools/pg_dev.sh), the
# same closed loop on each, alternated 3 times.
pg_uri=$(tools/pg_dev.sh start "$work/pg")
psql "$pg_uri" -qc "CREATE DATABASE report" >/dev/null
pg_db="${pg_uri/\/postgres\?//report?}"
{
  echo
  echo "## Load: the PostgreSQL store against SQLite"
  echo "PostgreSQL 15 from \`tools/pg_dev.sh\` (unix socket, fsync and synchronous_commit on, the"
  echo "same 2 cores); the closed loop above on 100 × 18 machines, each store 3 times, alternated."
  echo '```'
  for round in 1 2 3; do
    for store in sqlite postgresql; do
      if [ "$store" = sqlite ]; then db="$work/cmp-sqlite.db"; else db="$pg_db"; fi
      start_daemon "$db" "$work/fleet.json"
      "$bin/nvlsched-load" --target="127.0.0.1:$port" --fleet_file="$work/fleet.json" \
        --workload=batch --concurrency=64 --duration=8s --hold=100 >"$work/cmp.txt"
      stop_daemon
      echo "round $round $store: $(batch_rate "$work/cmp.txt") batch calls/s"
    done
  done
  echo '```'
} >> "$out"
tools/pg_dev.sh stop "$work/pg" >/dev/null

{
  echo
  echo "## The write path in process (\`nvlsched_engine_bench\`, engine + SQLite, no gRPC)"
  echo "Batch create/delete as the load generator drives it, 64 calls per group commit; per call:"
  echo "real time, and the CPU of the whole process (engine, completion and caller threads)."
  echo '```'
  "$bin/nvlsched_engine_bench" --benchmark_min_time=2 2>/dev/null |
    grep -E '^(BM_|-|Benchmark)'
  echo '```'
  echo
  echo "## Start-up: exec to serving, 100,008 machines and 500k instance records"
  echo "A database generated by \`nvlsched-gendb\` (the daemon's own ops), started 3 times on a"
  echo "fresh copy (bench/startup.sh); the daemon's log splits reading from rebuilding."
  echo '```'
  bench/startup.sh build-bench 2>&1 | grep -E '^(run|startup median)'
  echo '```'
} >> "$out"

for mode in drop wait; do
  {
    echo
    echo "## Trace replay: Philly ($(($(wc -l < "$trace") - 1)) jobs), 12 domains × 18 × 4 GPUs, \`--on_refusal=$mode\`"
    echo '```'
    "$bin/nvlsched-replay" --trace="$trace" --domains=12 --on_refusal="$mode"
    echo '```'
  } >> "$out"
done
echo "wrote $out"
