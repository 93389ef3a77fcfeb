// Reporting for nvlsched-replay: the side-by-side text table, the JSON document, the
// per-policy CSV time series and the gnuplot PNGs.
// Thread-safety: free functions over values.
#ifndef NVLSCHED_BENCH_REPLAY_REPORT_H_
#define NVLSCHED_BENCH_REPLAY_REPORT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "bench/replay/simulator.h"

namespace nvlsched::replay {

// What the whole run was, for the report header.
struct RunInfo {
  std::string trace_path;
  int64_t jobs = 0;
  uint64_t seed = 0;
  int threads = 1;
  double wall_s = 0;  // the whole replay (all policies), measured
  // The --on_refusal modes asked for, in order (several run side by side); empty: the
  // mode of the first result.
  std::vector<RefusalMode> modes;
  // The --preemption settings asked for, in order (off,on: both side by side); empty: the
  // first result's options.preemption.
  std::vector<bool> preemption;
};

std::string_view RefusalModeName(RefusalMode mode);

// Names each result's column: the policy, plus "@<mode that ran>" when the results do not
// all share one mode (e.g. "best-fit@queue", "carbide@wait"), plus "+preempt" when it ran
// with preemption and another result did not (e.g. "best-fit@queue+preempt").
void LabelResults(absl::Span<ReplayResult> results);

// One column per policy, one row per metric; the spot and preemption rows when some run had
// spot jobs or preemption was asked for.
std::string FormatTable(const RunInfo& run, absl::Span<const ReplayResult> results);
// One JSON object: run, fleet, options and, per policy, every counter and statistic
// (without the time series, which go to CSV).
std::string FormatJson(const RunInfo& run, absl::Span<const ReplayResult> results);

// Writes <dir>/series_<label>.csv (time_s,time_h,used_gpus,free_machines,
// fully_free_domains,stranded_machines,queue_length,preempted_jobs,spot_gpu_hours_lost; the
// last two cumulative), one row per sample.
// Creates `dir` if needed. INTERNAL when a file cannot be written (message names it).
absl::Status WriteSeriesCsv(const std::string& dir, const ReplayResult& result);

// Writes <dir>/plots.gp and runs gnuplot on it, producing one PNG per metric with a line
// per result (used_gpus.png, free_machines.png, fully_free_domains.png,
// stranded_machines.png, and queue_length.png unless every result dropped refusals).
// REQUIRES: WriteSeriesCsv ran for each result.
// UNAVAILABLE when gnuplot is not installed (the CSVs are still there); INTERNAL when it
// fails (message says where its output went).
absl::Status WritePlots(const std::string& dir, absl::Span<const ReplayResult> results);

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_REPORT_H_
