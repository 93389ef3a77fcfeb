// StrictBatchPolicy: where a topology-optimized batch of k whole machines goes — all in
// one NVLink domain. Whole-machine singles use it with k = 1.
//
// Rule (DESIGN.md "Placement"):
//   1. Partition affinity first (partition_affinity.h): if a requested NVLink logical
//      partition already has instances, only those domains are candidates; if none of
//      them has k free machines the request fails, naming the domains and what they have.
//   2. Otherwise best fit: the domain with the FEWEST free READY machines of the type that
//      still holds k, ties by lowest domain index — BestFitDomainIndex::FindBestFit, O(1)
//      in the number of domains. Leaving big free blocks whole keeps large batches
//      placeable later.
//   3. Inside the domain: the k lowest tray indices among its free machines.
// Domains in scope.excluded (reserved for queued requests ahead, PlanConstraints) are never
// candidates, on any of these paths; the rest are chosen exactly as if the excluded ones
// had no free machine.
// "Free" = READY and held by nothing (never partly held by GPU-granular instances). Free
// counts are exact, so any domain the index offers can take the batch: the policy never
// fails while some domain could hold it.
//
// Thread-safety: pure functions over a const FleetState.
#ifndef NVLSCHED_ALLOCATOR_STRICT_BATCH_POLICY_H_
#define NVLSCHED_ALLOCATOR_STRICT_BATCH_POLICY_H_

#include "absl/status/status.h"
#include "allocator/fleet_state.h"
#include "allocator/placement.h"

namespace nvlsched::allocator {

// Appends k whole machines of type t from one domain to out->instances.
// REQUIRES: 1 <= k <= kMaxMachinesPerDomain (the caller has already answered "infeasible").
// Errors: RESOURCE_EXHAUSTED with a CapacityShortfall payload (unit machines) when no
// eligible domain has k free machines now (counts leave excluded domains out).
// Cost: O(k) without a site filter, affinity or excluded domains; with a site filter,
// O(domains skipped); with excluded domains, O(k + excluded + buckets walked).
absl::Status PlaceStrictBatch(const FleetState& state, TypeIndex t, int k,
                              const PlacementScope& scope, Placement* out);

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_STRICT_BATCH_POLICY_H_
