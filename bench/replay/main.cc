// nvlsched-replay: replays a job trace through placement policies side by side, in
// simulated time, and reports how each one copes (issue 7). See --help.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "bench/replay/policy_factory.h"
#include "bench/replay/report.h"
#include "bench/replay/run_plan.h"
#include "bench/replay/simulator.h"
#include "bench/replay/trace.h"

ABSL_FLAG(std::string, trace, "", "job trace CSV: job_id,submit_s,duration_s,num_gpus (required)");
ABSL_FLAG(int32_t, domains, 35, "NVLink domains in the fleet");
ABSL_FLAG(int32_t, machines_per_domain, 18, "machines per NVLink domain (1..144)");
ABSL_FLAG(int32_t, gpus_per_machine, 4, "GPUs per machine (1..16)");
ABSL_FLAG(std::vector<std::string>, policies,
          std::vector<std::string>({"best-fit", "carbide", "first-fit", "random"}),
          "policies to compare, each on its own copy of the fleet");
ABSL_FLAG(uint64_t, seed, 1, "seed of the randomized policies (a run is reproducible)");
ABSL_FLAG(std::string, on_refusal, "drop",
          "drop: a refused job is lost; wait: it queues (batches FIFO head-of-line, singles "
          "backfill) and is retried whenever capacity is freed; queue: best-fit queues it in "
          "nvlsched's GangQueue (priority, reservations for the first --reservation_depth "
          "waiting batches, backfill outside them; baselines run wait instead). A comma list "
          "(e.g. wait,queue) runs each mode and reports them side by side");
ABSL_FLAG(int64_t, queue_timeout_s, 0,
          "queue mode: a job waiting this long expires (0 = it waits until placed)");
ABSL_FLAG(int32_t, reservation_depth, 4,
          "queue mode: waiting batches that hold domain reservations (0 = plain backfill)");
ABSL_FLAG(double, spot_share, 0,
          "share of the jobs (0..1) that are spot: job i is spot when output i+1 of a SplitMix64 "
          "generator seeded with --seed, as a fraction of 2^64, is below it (the same jobs in "
          "every run). Spot jobs may be preempted and never preempt");
ABSL_FLAG(std::string, preemption, "off",
          "off, on, or off,on (both side by side): with on, best-fit in queue mode lets an "
          "arriving on-demand job the fleet cannot hold kill whole spot jobs in one NVLink "
          "domain at once (no grace period) and take their machines. The baselines, and "
          "drop/wait modes, have no notion of spot: they run as with off");
ABSL_FLAG(bool, resubmit_preempted, true,
          "a killed spot job arrives again at the kill time with its full duration; false: it "
          "is lost");
ABSL_FLAG(bool, cross_domain_when_larger, true,
          "a job needing more machines than a domain holds becomes a cross-domain batch; "
          "false: it is refused as infeasible");
ABSL_FLAG(std::string, out_dir, "",
          "if set: per-policy CSV time series (hourly), summary.json, summary.txt and PNG plots");
ABSL_FLAG(bool, json, false, "print the results as JSON instead of the text table");
ABSL_FLAG(int32_t, threads, 0, "policies replayed in parallel; 0 = one per core");

namespace nvlsched::replay {
namespace {

// The options of the first mode and preemption setting; `modes` gets every mode of
// --on_refusal, `preemption` every setting of --preemption, in order.
absl::StatusOr<ReplayOptions> OptionsFromFlags(std::vector<RefusalMode>* modes,
                                               std::vector<bool>* preemption) {
  ReplayOptions options;
  options.fleet.domains = absl::GetFlag(FLAGS_domains);
  options.fleet.machines_per_domain = absl::GetFlag(FLAGS_machines_per_domain);
  options.fleet.gpus_per_machine = absl::GetFlag(FLAGS_gpus_per_machine);
  if (options.fleet.domains < 1 || options.fleet.domains > 100000) {
    return absl::InvalidArgumentError(absl::StrCat("--domains must be 1..100000 (got ",
                                                   options.fleet.domains, ")"));
  }
  if (options.fleet.machines_per_domain < 1 || options.fleet.machines_per_domain > 144) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--machines_per_domain must be 1..144 (got ", options.fleet.machines_per_domain, ")"));
  }
  if (options.fleet.gpus_per_machine < 1 || options.fleet.gpus_per_machine > 16) {
    return absl::InvalidArgumentError(absl::StrCat("--gpus_per_machine must be 1..16 (got ",
                                                   options.fleet.gpus_per_machine, ")"));
  }
  absl::StatusOr<std::vector<RefusalMode>> parsed_modes =
      ParseRefusalModes(absl::GetFlag(FLAGS_on_refusal));
  if (!parsed_modes.ok()) return parsed_modes.status();
  *modes = *std::move(parsed_modes);
  options.on_refusal = modes->front();
  options.cross_domain_when_larger = absl::GetFlag(FLAGS_cross_domain_when_larger);
  options.queue_timeout_s = absl::GetFlag(FLAGS_queue_timeout_s);
  if (options.queue_timeout_s < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--queue_timeout_s must be >= 0 (got ",
                                                   options.queue_timeout_s, ")"));
  }
  options.reservation_depth = absl::GetFlag(FLAGS_reservation_depth);
  if (options.reservation_depth < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--reservation_depth must be >= 0 (got ",
                                                   options.reservation_depth, ")"));
  }
  options.spot_share = absl::GetFlag(FLAGS_spot_share);
  if (!(options.spot_share >= 0 && options.spot_share <= 1)) {  // NaN too
    return absl::InvalidArgumentError(
        absl::StrCat("--spot_share must be in [0, 1] (got ", options.spot_share, ")"));
  }
  options.spot_seed = absl::GetFlag(FLAGS_seed);
  options.resubmit_preempted = absl::GetFlag(FLAGS_resubmit_preempted);
  absl::StatusOr<std::vector<bool>> parsed_preemption =
      ParsePreemption(absl::GetFlag(FLAGS_preemption));
  if (!parsed_preemption.ok()) return parsed_preemption.status();
  *preemption = *std::move(parsed_preemption);
  options.preemption = preemption->front();
  return options;
}

// Replays every run, `threads` at a time; results in the order of `runs`.
absl::StatusOr<std::vector<ReplayResult>> ReplayAll(const std::vector<TraceJob>& trace,
                                                    const std::vector<PlannedRun>& runs, uint64_t seed,
                                                    int threads) {
  std::vector<absl::StatusOr<ReplayResult>> results(runs.size(), absl::UnknownError("not run"));
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < runs.size(); i = next++) {
      const PlannedRun& run = runs[i];
      absl::StatusOr<std::unique_ptr<PlacementPolicy>> policy =
          MakePolicy(run.policy, run.options.fleet, seed, run.options.reservation_depth,
                     run.options.preemption);
      results[i] = policy.ok() ? Replay(trace, run.options, policy->get()) : policy.status();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  std::vector<ReplayResult> out;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (!results[i].ok()) {
      return absl::Status(results[i].status().code(),
                          absl::StrCat(runs[i].policy, " (", AbslView(RefusalModeName(runs[i].options.on_refusal)),
                                       runs[i].options.preemption ? ", preemption" : "",
                                       "): ", results[i].status().message()));
    }
    out.push_back(*std::move(results[i]));
  }
  return out;
}

absl::Status WriteOutDir(const std::string& dir, const std::string& table,
                         const std::string& json, const std::vector<ReplayResult>& results) {
  for (const ReplayResult& r : results) {
    if (absl::Status s = WriteSeriesCsv(dir, r); !s.ok()) return s;
  }
  const std::pair<const char*, const std::string*> summaries[] = {{"summary.txt", &table},
                                                                   {"summary.json", &json}};
  for (const auto& [name, content] : summaries) {
    std::FILE* f = std::fopen((dir + "/" + name).c_str(), "w");
    bool ok = f != nullptr && std::fputs(content->c_str(), f) >= 0;
    if (f != nullptr && std::fclose(f) != 0) ok = false;
    if (!ok) return absl::InternalError(absl::StrCat("cannot write ", dir, "/", name));
  }
  absl::Status plots = WritePlots(dir, results);
  if (absl::IsUnavailable(plots)) {
    std::fprintf(stderr, "nvlsched-replay: %s\n", std::string(plots.message()).c_str());
    return absl::OkStatus();
  }
  return plots;
}

absl::Status Main() {
  std::vector<RefusalMode> modes;
  std::vector<bool> preemption;
  absl::StatusOr<ReplayOptions> options = OptionsFromFlags(&modes, &preemption);
  if (!options.ok()) return options.status();
  const std::string trace_path = absl::GetFlag(FLAGS_trace);
  if (trace_path.empty()) {
    return absl::InvalidArgumentError("--trace is required, e.g. --trace=/work/shared/data/philly.csv");
  }
  const std::vector<std::string> names = absl::GetFlag(FLAGS_policies);
  if (names.empty()) return absl::InvalidArgumentError("--policies is empty");
  for (const std::string& name : names) {
    if (!IsKnownPolicy(name)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown policy \"", name,
                                                     "\" in --policies; known: ",
                                                     absl::StrJoin(KnownPolicies(), ",")));
    }
  }
  absl::StatusOr<std::vector<TraceJob>> trace = ReadTraceFile(trace_path);
  if (!trace.ok()) return trace.status();

  const std::vector<PlannedRun> runs = PlanRuns(*options, modes, preemption, names);
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min<int>(threads, static_cast<int>(runs.size()));
  const uint64_t seed = absl::GetFlag(FLAGS_seed);

  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<ReplayResult>> results = ReplayAll(*trace, runs, seed, threads);
  if (!results.ok()) return results.status();
  LabelResults(absl::MakeSpan(*results));
  RunInfo run{trace_path, static_cast<int64_t>(trace->size()), seed, threads,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              modes, preemption};

  const std::string table = FormatTable(run, *results);
  const std::string json = FormatJson(run, *results);
  std::fputs(absl::GetFlag(FLAGS_json) ? json.c_str() : table.c_str(), stdout);
  std::fflush(stdout);
  const std::string out_dir = absl::GetFlag(FLAGS_out_dir);
  if (!out_dir.empty()) return WriteOutDir(out_dir, table, json, *results);
  return absl::OkStatus();
}

}  // namespace
}  // namespace nvlsched::replay

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Replays a job trace through placement policies (best-fit = nvlsched's Allocator, "
      "carbide, first-fit, random) in simulated time.\n"
      "Job mapping: <= G GPUs -> one single instance (G GPUs = a whole machine); more -> a "
      "strict batch of ceil(gpus/G) machines in one NVLink domain; more machines than a "
      "domain holds -> cross-domain batch (or infeasible).\n"
      "Example: nvlsched-replay --trace=philly.csv --on_refusal=wait,queue --out_dir=/tmp/replay\n"
      "Spot: nvlsched-replay --trace=philly.csv --on_refusal=queue --spot_share=0.3 "
      "--preemption=off,on --policies=best-fit");
  absl::ParseCommandLine(argc, argv);
  absl::Status status = nvlsched::replay::Main();
  if (!status.ok()) {
    std::fprintf(stderr, "nvlsched-replay: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
