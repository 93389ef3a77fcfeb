// Replay: runs a job trace through one PlacementPolicy in simulated time.
//
// Discrete events, no wall clock: arrivals (trace order), completions (start + duration,
// from a min-heap; ties by arrival index) and, in queue mode, queue deadlines. At each
// instant, completions are handled first (freeing capacity), then the waiting jobs are
// offered the freed capacity, then the arrivals of that instant in trace order. A job is
// mapped to a shape by job_shape.h; infeasible jobs are counted and never offered.
//
// --on_refusal:
//   kDrop  a refused job is lost.
//   kWait  it queues in the simulator's FIFO WaitQueue (wait_queue.h). An arriving batch
//          queues behind an already waiting batch without being offered (FIFO).
//   kQueue the policy's own queue (queueing_policy.h; for best-fit, allocator::GangQueue as
//          the daemon runs it): every arrival is offered (outside the domains reserved
//          ahead); the queue decides order, reservations and backfill. A pass runs after
//          the completions of an instant, after each arrival that joined the queue, and
//          at each deadline (submit + queue_timeout_s). A policy without its own queue (the baselines) runs
//          kWait instead: ReplayResult::mode says which mode ran.
//
// Spot and preemption (--spot_share, --preemption, --resubmit_preempted):
//   - IsSpotJob (job_shape.h) marks options.spot_share of the trace's jobs spot, by arrival
//     index and options.spot_seed: every run of a replay sees the same spot jobs.
//   - Only in kQueue mode, with a policy whose queue preempts (QueueingPolicy::preempts:
//     nvlsched's, built with options.preemption), does anything get preempted: an arriving
//     on-demand job the fleet cannot hold may have running spot jobs killed (whole jobs) and
//     take their machines. ReplayResult::preemption says whether that ran; everywhere else
//     spot jobs are placed and run like any other (the baselines have no notion of spot).
//   - A kill is immediate (no grace period in the replay: the victims' machines are free at
//     the arrival's instant), the job's pending completion is dropped, and the GPU-seconds
//     it ran are lost (SpotStats). Then a queue pass runs (the victims may have freed more
//     than the preemptor took), then, with resubmit_preempted, each killed job arrives again
//     at the kill time with its full duration (a new arrival: behind every job already
//     queued; its deadline, if any, counts from then), in kill order; without it, it is lost.
//   - A resubmission counts as an arrival in every counter (KindCounts::submitted, placed,
//     refused ...) and its wait runs from the kill; SpotStats::resubmitted counts them.
//
// Time-weighted means (utilization, fully free domains, stranded machines, free machines)
// are exact integrals over the arrival window [0, last submit]: after it the fleet only
// drains. "While waiting" means: within the arrival window, while at least one job waits.
// "At end" values are the fleet right after the last arrival was handled.
//
// Thread-safety: Replay uses only its arguments; run different policies on different
// threads freely.
#ifndef NVLSCHED_BENCH_REPLAY_SIMULATOR_H_
#define NVLSCHED_BENCH_REPLAY_SIMULATOR_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "bench/replay/placement_policy.h"
#include "bench/replay/trace.h"

namespace nvlsched::replay {

enum class RefusalMode : uint8_t { kDrop, kWait, kQueue };

struct ReplayOptions {
  FleetSpec fleet;
  RefusalMode on_refusal = RefusalMode::kDrop;
  bool cross_domain_when_larger = true;
  int64_t sample_interval_s = 3600;  // time series step; 0 = no series
  // Queue mode: a job waits at most this long (0 = until placed), and the policy holds
  // reservations for this many waiting batches (the policy is built with it:
  // policy_factory.h).
  int64_t queue_timeout_s = 0;
  int32_t reservation_depth = 4;
  // See "Spot and preemption" above. The policy is built with `preemption`
  // (policy_factory.h); spot_share is in [0, 1].
  double spot_share = 0;
  uint64_t spot_seed = 1;
  bool preemption = false;
  bool resubmit_preempted = true;
};

// Per job kind (JobKind). "Refused" = the policy said no when the job arrived.
struct KindCounts {
  int64_t submitted = 0;
  int64_t placed = 0;               // placed at arrival or, in wait/queue mode, later
  int64_t placed_after_wait = 0;    // wait/queue mode
  int64_t expired = 0;              // queue mode: waited past its deadline, never ran
  int64_t refused = 0;              // at arrival (drop mode: lost)
  int64_t refused_with_room = 0;    // ... though the fleet had enough free in total
                                    // (machines for batches/whole singles, GPUs for singles)
  int64_t refused_domain_had_room = 0;  // strict batch refused though one domain could hold it
  int64_t queued_behind_batch = 0;  // wait mode: arrived behind a waiting batch, not offered
};

struct SeriesPoint {
  int64_t time_s = 0;
  int64_t used_gpus = 0;
  int64_t free_machines = 0;
  int64_t fully_free_domains = 0;
  int64_t stranded_machines = 0;
  int64_t queue_length = 0;
  int64_t preemptions = 0;             // so far (SpotStats::preemptions)
  int64_t spot_gpu_seconds_lost = 0;   // so far
};

struct WaitStats {
  int64_t jobs = 0;  // placed jobs the statistics cover
  double mean_s = 0;
  int64_t p50_s = 0;
  int64_t p99_s = 0;
  int64_t max_s = 0;
};

// Spot jobs, on-demand jobs and preemption (see "Spot and preemption" above).
struct SpotStats {
  int64_t spot_jobs = 0;       // trace jobs drawn spot (infeasible ones included)
  int64_t on_demand_jobs = 0;  // the other trace jobs
  WaitStats wait_on_demand;    // placements of on-demand jobs
  WaitStats wait_spot;         // placements of spot jobs, resubmissions included
  int64_t preemptions = 0;     // spot jobs killed (a job killed twice counts twice)
  int64_t jobs_preempted = 0;  // distinct trace jobs killed at least once
  int64_t gpu_seconds_lost = 0;  // GPUs x seconds run by the killed runs
  int64_t on_demand_placed = 0;
  int64_t on_demand_preempting = 0;  // of those, placed by killing spot jobs
  int64_t preempting_gpus = 0;  // GPUs those on-demand jobs hold
  int64_t evicted_gpus = 0;     // GPUs the killed runs held (every kill)
  int64_t resubmitted = 0;     // kills that arrived again (resubmit_preempted)
};

struct ReplayResult {
  std::string policy;
  std::string label;  // column name in reports: the policy, "@mode" when modes differ
  ReplayOptions options;
  RefusalMode mode = RefusalMode::kDrop;  // the mode that ran (kWait for a baseline asked to queue)
  bool preemption = false;  // preemption ran (kQueue mode, a policy that preempts)
  std::array<KindCounts, kJobKinds> by_kind{};  // index: static_cast<int>(JobKind)
  int64_t window_s = 0;    // last submit time: the arrival window is [0, window_s]
  int64_t makespan_s = 0;  // last completion
  double gpu_utilization = 0;  // time-weighted used / total GPUs over the window
  double mean_free_machines = 0;
  double mean_fully_free_domains = 0;
  double mean_stranded_machines = 0;
  FleetStats at_end;           // right after the last arrival
  int64_t queue_at_end = 0;
  int64_t max_queue_length = 0;
  WaitStats wait_all;          // every placed job (0 for jobs placed at arrival)
  WaitStats wait_batches;      // placed strict and cross-domain batches
  WaitStats wait_singles;      // placed whole-machine and GPU singles
  SpotStats spot;
  // Capacity idle behind the queue: free GPUs, time-weighted over the part of the arrival
  // window during which at least one job waited (waiting_s long; 0 when nothing waited).
  double mean_free_gpus_while_waiting = 0;
  int64_t waiting_s = 0;
  double wall_s = 0;           // real time the replay took (measurement only)
  std::vector<SeriesPoint> series;

  const KindCounts& kind(JobKind k) const { return by_kind[static_cast<int>(k)]; }
};

// Replays `trace` (sorted by submit time, as ParseTrace returns it) on `policy`, which must
// hold an empty fleet of options.fleet. Returns the policy's error if it fails (a bug).
absl::StatusOr<ReplayResult> Replay(absl::Span<const TraceJob> trace,
                                    const ReplayOptions& options, PlacementPolicy* policy);

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_SIMULATOR_H_
