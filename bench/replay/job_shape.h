// How a trace job maps onto a D x M x G fleet (see the nvlsched-replay --help text):
//   gpus <  G              -> one GPU-granular single of `gpus` GPUs
//   gpus == G              -> one whole-machine single
//   gpus >  G, k <= M      -> a strict batch of k = ceil(gpus / G) whole machines
//   k > M                  -> a cross-domain batch when cross_domain_when_larger (and
//                             k <= D * M), else infeasible
// and which jobs are spot (--spot_share): IsSpotJob.
// Thread-safety: pure functions.
#ifndef NVLSCHED_BENCH_REPLAY_JOB_SHAPE_H_
#define NVLSCHED_BENCH_REPLAY_JOB_SHAPE_H_

#include <cstdint>

#include "bench/replay/placement_policy.h"

namespace nvlsched::replay {

JobShape ShapeJob(int32_t num_gpus, const FleetSpec& fleet, bool cross_domain_when_larger);

// Whether the job at `arrival_index` (its index in the trace sorted by submit time) is spot:
// u < spot_share, where u in [0, 1) is the top 53 bits of output number arrival_index + 1 of a
// SplitMix64 generator seeded with `seed` (--seed), divided by 2^53. The same (seed, index, share) always gives the same
// answer, whatever the policy or mode, so every run of one replay sees the same spot jobs;
// about spot_share of the jobs are spot, independently of their size and time. A share of 0
// makes none spot, 1 all of them.
bool IsSpotJob(uint32_t arrival_index, double spot_share, uint64_t seed);

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_JOB_SHAPE_H_
