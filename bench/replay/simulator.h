// Replay: runs a job trace through one PlacementPolicy in simulated time.
//
// Discrete events, no wall clock: arrivals (trace order) and completions (start +
// duration, from a min-heap; ties by arrival index). At each instant, completions are
// handled first (freeing capacity), then, in wait mode, the wait queue is offered the freed
// capacity (wait_queue.h), then the arrivals of that instant in trace order. A job is mapped
// to a shape by job_shape.h; infeasible jobs are counted and never offered.
//
// --on_refusal: kDrop loses a refused job; kWait queues it (wait_queue.h). In wait mode an
// arriving batch queues behind an already waiting batch without being offered (FIFO).
//
// Time-weighted means (utilization, fully free domains, stranded machines, free machines)
// are exact integrals over the arrival window [0, last submit]: after it the fleet only
// drains. "At end" values are the fleet right after the last arrival was handled.
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

enum class RefusalMode : uint8_t { kDrop, kWait };

struct ReplayOptions {
  FleetSpec fleet;
  RefusalMode on_refusal = RefusalMode::kDrop;
  bool cross_domain_when_larger = true;
  int64_t sample_interval_s = 3600;  // time series step; 0 = no series
};

// Per job kind (JobKind). "Refused" = the policy said no when the job arrived.
struct KindCounts {
  int64_t submitted = 0;
  int64_t placed = 0;               // placed at arrival or, in wait mode, later
  int64_t placed_after_wait = 0;    // wait mode
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
};

struct WaitStats {
  int64_t jobs = 0;  // placed jobs the statistics cover
  double mean_s = 0;
  int64_t p99_s = 0;
  int64_t max_s = 0;
};

struct ReplayResult {
  std::string policy;
  ReplayOptions options;
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
