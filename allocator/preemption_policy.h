// PreemptionPolicy: which spot instances to evict so that an on-demand request free capacity
// cannot hold gets its machines. A spot gang (a spot batch, or one spot single) is evicted
// whole: half a gang is useless to its owner.
//
// It serves the requests that go to one NVLink domain: strict batches of k machines,
// whole-machine singles (k = 1), and GPU-granular singles (k = 1: they get a whole machine
// freed). Cross-domain batches do not preempt, and spot requests never do (the Allocator
// refuses both before calling here). Only machines held whole by a spot instance no earlier
// preemption chose are reclaimable (MachineRecord::reclaimable); GPU-granular spot instances
// are never evicted.
//
// Rule (one domain per request):
//   1. Candidates: the domains of the scope (site, partition affinity, not excluded: the
//      reservations of queued batches ahead are respected) whose free plus reclaimable machines
//      of the type reach k. TypeState::reclaim buckets the domains that have a reclaimable
//      machine by that reach, so finding them never scans the fleet.
//   2. In one candidate, the victims are the fewest gangs whose machines in the domain, with
//      its free machines, make k: gangs with the most machines there first (ties: fewest spot
//      GPU-seconds already run, i.e. GPUs x time since placed, the youngest first; then the
//      lowest index) until one more gang can cover the rest, and that last one is the
//      cheapest in GPU-seconds of those that can. Taking the largest first gives the fewest
//      gangs (any smaller set could swap in a larger gang and still cover); the last pick
//      keeps that count and spares bigger or older gangs (a 1-machine need evicts the
//      youngest gang that has a machine there, not the largest).
//   3. Across candidates: fewest gangs, then fewest GPU-seconds, then lowest domain index.
//   4. Gangs of the requester's own tenant count only when no candidate works without them.
//
// Bound: candidates are walked from the tightest reach up (the domain freed is the one that
// barely holds the request, as best fit does for free machines). Once one candidate needs a
// single gang — the fewest possible — the walk stops after kPreemptionCandidates domains
// evaluated; until then it goes on, so the number of gangs is always the minimum, and the
// GPU-seconds tie-break is exact among the domains evaluated. Each evaluation is O(machines
// of the domain). A strict 18-batch on 100k machines at 90% held (half spot): see
// bench/preemption_bench.cc and the README.
//
// Thread-safety: pure functions over a const FleetState.
#ifndef NVLSCHED_ALLOCATOR_PREEMPTION_POLICY_H_
#define NVLSCHED_ALLOCATOR_PREEMPTION_POLICY_H_

#include <cstdint>

#include "absl/status/status.h"
#include "allocator/fleet_state.h"
#include "allocator/placement.h"

namespace nvlsched::allocator {

// Domains evaluated once a one-gang candidate is known (see the header comment).
inline constexpr int kPreemptionCandidates = 16;

// Fills `out` (domain, victims, gangs, gpu_seconds, gpus, own_tenant) for k whole machines of
// type t for `tenant`, or returns RESOURCE_EXHAUSTED when no candidate domain could hold the
// request even with every reclaimable machine freed. REQUIRES: 1 <= k.
absl::Status PlanPreemptionInDomain(const FleetState& state, TypeIndex t, int k,
                                    TenantIndex tenant, const PlacementScope& scope,
                                    int64_t now_micros, PreemptionPlan* out);

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_PREEMPTION_POLICY_H_
