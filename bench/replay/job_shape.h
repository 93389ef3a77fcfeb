// How a trace job maps onto a D x M x G fleet (see the nvlsched-replay --help text):
//   gpus <  G              -> one GPU-granular single of `gpus` GPUs
//   gpus == G              -> one whole-machine single
//   gpus >  G, k <= M      -> a strict batch of k = ceil(gpus / G) whole machines
//   k > M                  -> a cross-domain batch when cross_domain_when_larger (and
//                             k <= D * M), else infeasible
// Thread-safety: pure functions.
#ifndef NVLSCHED_BENCH_REPLAY_JOB_SHAPE_H_
#define NVLSCHED_BENCH_REPLAY_JOB_SHAPE_H_

#include "bench/replay/placement_policy.h"

namespace nvlsched::replay {

JobShape ShapeJob(int32_t num_gpus, const FleetSpec& fleet, bool cross_domain_when_larger);

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_JOB_SHAPE_H_
