// CrossDomainPolicy: where a batch with topology_optimized = false goes. It may span NVLink
// domains; spread_policy says how:
//   FILL        least-free domains first (buckets 1, 2, ... of BestFitDomainIndex), taking
//               every free machine of a domain before the next: fragments get used and
//               whole domains stay whole.
//   MIN_DOMAINS fewest domains: most-free domains first.
//   SPREAD      as many distinct domains as possible: the first min(k, #domains with free)
//               domains in index order get one machine each, then round-robin over the
//               same domains until k.
// Ties between domains: lowest domain index. Inside a domain: lowest tray indices first.
// Instances come out grouped by domain, in the order the domains were chosen.
// Partition affinity does not bind a cross-domain batch (it spans domains by request).
// Excluded domains (PlanConstraints: reserved for queued requests ahead) are skipped by all
// three policies: the result is what the policy would choose if they had no free machine.
// `site` (kNoIndex: any) restricts every policy to that site's domains; the callers pass one
// (Allocator::PlanBatch chooses it: a batch never spans sites) whenever the fleet has more
// than one site, and the domains of other sites are then skipped like excluded ones.
//
// Thread-safety: pure function over a const FleetState.
#ifndef NVLSCHED_ALLOCATOR_CROSS_DOMAIN_POLICY_H_
#define NVLSCHED_ALLOCATOR_CROSS_DOMAIN_POLICY_H_

#include "absl/status/status.h"
#include "allocator/fleet_state.h"
#include "allocator/model.h"
#include "allocator/placement.h"

namespace nvlsched::allocator {

// Appends k whole machines of type t to out->instances. REQUIRES: k >= 1.
// `excluded`: domains never taken from (any order, duplicates allowed; usually empty).
// Errors: RESOURCE_EXHAUSTED with a CapacityShortfall payload (unit machines) when fewer
// than k machines of the type are free outside the excluded domains.
// Cost: O(k + domains visited); FILL and MIN_DOMAINS visit only domains they take from
// (and the excluded ones they pass); each domain visited costs O(excluded) more.
// With a site, the free count is the site's (FleetState site_free) and each domain of
// another site visited costs O(1) more.
absl::Status PlaceCrossDomain(const FleetState& state, TypeIndex t, int k, SpreadPolicy policy,
                              absl::Span<const DomainIndex> excluded, Placement* out,
                              SiteIndex site = kNoIndex);

// Free machines of type t outside `excluded` in `site` (kNoIndex: the fleet). O(1) +
// O(excluded^2).
int64_t FreeMachinesOutside(const FleetState& state, TypeIndex t,
                            absl::Span<const DomainIndex> excluded, SiteIndex site);

// An even multi-domain gang: k / segment whole domains' worth of `segment` machines each, every
// one from a different domain. Domains already holding one of `affinity` (the batch's NVLink
// partitions) first, in index order; then best fit: the domains with the fewest free machines
// that still hold a segment, ties by index. Lowest trays inside each. All or nothing.
// REQUIRES: 1 <= segment, k % segment == 0. Errors: RESOURCE_EXHAUSTED (CapacityShortfall,
// machines) when fewer than k / segment domains outside `excluded` have a segment free.
// Cost: O(k + buckets walked + domains skipped).
absl::Status PlaceSegmented(const FleetState& state, TypeIndex t, int k, int segment,
                            absl::Span<const DomainIndex> excluded,
                            absl::Span<const DomainIndex> affinity, Placement* out,
                            SiteIndex site = kNoIndex);

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_CROSS_DOMAIN_POLICY_H_
