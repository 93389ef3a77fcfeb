// GpuGranularPolicy: where a single instance of g GPUs (fewer than a whole machine, or any
// g >= 1 asked for GPU by GPU) goes.
//
// Rule (DESIGN.md "Placement"), as a sort key, smallest wins:
//   1. fewest free GPUs on the machine that still fit g (fill partly used machines first,
//      so whole machines stay whole);
//   2. machines in domains already broken before machines in fully free domains (a domain
//      is fully free for a type when every machine of the type in it is READY and held by
//      nothing), so whole domains stay whole for strict batches;
//   3. lowest domain index; 4. lowest tray index.
// Candidates are READY machines of the type not held by a whole-machine instance. Partition
// affinity (partition_affinity.h) and a site filter restrict the candidate domains; domains
// in scope.excluded (PlanConstraints) are never candidates.
//
// Thread-safety: pure function over a const FleetState.
#ifndef NVLSCHED_ALLOCATOR_GPU_GRANULAR_POLICY_H_
#define NVLSCHED_ALLOCATOR_GPU_GRANULAR_POLICY_H_

#include "absl/status/status.h"
#include "allocator/fleet_state.h"
#include "allocator/placement.h"

namespace nvlsched::allocator {

// Appends one GPU-granular instance of g GPUs to out->instances.
// REQUIRES: 1 <= g <= kMaxGpusPerMachine.
// Errors: RESOURCE_EXHAUSTED with a CapacityShortfall payload (unit GPUs: requested g, the
// most free GPUs on one eligible machine, free GPUs in total) when no machine fits.
// Counts leave excluded domains out.
// Cost: O(kMaxGpusPerMachine + machines of the chosen domain) without a filter; each
// excluded domain met on the walk adds O(excluded).
absl::Status PlaceGpuGranular(const FleetState& state, TypeIndex t, int g,
                              const PlacementScope& scope, Placement* out);

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_GPU_GRANULAR_POLICY_H_
