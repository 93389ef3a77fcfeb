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
// affinity (partition_affinity.h) and a site filter restrict the candidate domains. In a
// domain in scope.excluded (PlanConstraints: reserved for a waiting batch) only partly held
// machines are candidates — some of their GPUs held by GPU-granular instances, so not free
// machines the batch could take — and never a free machine (every GPU free). Excluded
// domains keep their place in the order above (such a domain is always broken).
//
// Thread-safety: pure function over a const FleetState.
#ifndef NVLSCHED_ALLOCATOR_GPU_GRANULAR_POLICY_H_
#define NVLSCHED_ALLOCATOR_GPU_GRANULAR_POLICY_H_

#include <cstdint>

#include "absl/status/status.h"
#include "allocator/fleet_state.h"
#include "allocator/placement.h"

namespace nvlsched::allocator {

// Appends one GPU-granular instance of g GPUs to out->instances.
// REQUIRES: 1 <= g <= kMaxGpusPerMachine.
// Errors: RESOURCE_EXHAUSTED with a CapacityShortfall payload (unit GPUs: requested g, the
// most free GPUs on one eligible machine, free GPUs in total) when no machine fits.
// Counts take only the partly held machines of excluded domains.
// Cost: O(kMaxGpusPerMachine + machines of the chosen domain) without a filter; each
// domain met on the walk adds O(excluded), and each broken excluded one O(its machines).
absl::Status PlaceGpuGranular(const FleetState& state, TypeIndex t, int g,
                              const PlacementScope& scope, Placement* out);

// Most free GPUs on one partly held machine of type t in domain d (READY, not held whole,
// some GPUs held by GPU-granular instances), 0 if none: the largest GPU-granular single d
// can take while it is excluded. Adds their free GPUs to *total_free unless it is null.
// Cost: O(machines of d with free GPUs).
int MostFreeGpusOnPartlyHeld(const FleetState& state, TypeIndex t, DomainIndex d,
                             int64_t* total_free = nullptr);

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_GPU_GRANULAR_POLICY_H_
