// The reports of nvlsched-load: a text table for people and JSON for scripts. Both hold, per
// run, calls/s, p50/p90/p99/max latency, status codes by name, refusals, errors, and the
// batches/instances created and deleted, overall and per RPC.
//
// JSON keys (every run): workload, elapsed_s, calls, calls_per_s, latency_us {p50, p90, p99,
// max, mean}, status_codes {NAME: count, non-zero only}, refused, refused_capacity,
// refused_quota, errors, batches_created, batches_deleted, instances_created,
// instances_deleted, singles_created, singles_deleted, ops {RPC: {calls, calls_per_s,
// latency_us, status_codes, refused, refused_capacity, refused_quota, errors}}, cleanup
// {calls, errors, batches_deleted, instances_deleted}, instances_left, creates_outcome_unknown,
// watchers, watch_events, watchers_ended_early;
// in the open loop (--rate > 0) also open_loop {target_per_s, achieved_per_s (calls sent per
// second of the schedule, see OpenLoopStats::AchievedPerSecond), scheduled,
// issued, late, skipped, service_us {p50, p90, p99, max, mean}}, latency_us then running from
// the intended send times; with readers (--readers > 0) also reads {readers, elapsed_s, calls,
// calls_per_s, latency_us, status_codes, errors (every code but OK), instances_read,
// instances_per_s, passes}.
// Top level: the options (target, workload, rate, concurrency, threads, duration_s, max_calls,
// call_timeout_s, hold, ..., readers, read_page_size), runs [...], and ratio_to_noop when a
// noop run was compared.
//
// Thread-safety: pure functions.
#ifndef NVLSCHED_BENCH_LOAD_REPORT_H_
#define NVLSCHED_BENCH_LOAD_REPORT_H_

#include <optional>
#include <string>
#include <vector>

#include "bench/load/load_options.h"
#include "bench/load/load_result.h"

namespace nvlsched::load {

struct LoadReport {
  LoadOptions options;
  std::vector<LoadResult> runs;  // the workload's run first, then the noop run if compared
  // calls/s of runs[0] over calls/s of the noop run (--compare_noop).
  std::optional<double> ratio_to_noop;
};

std::string FormatText(const LoadReport& report);
std::string FormatJson(const LoadReport& report);

}  // namespace nvlsched::load

#endif  // NVLSCHED_BENCH_LOAD_REPORT_H_
