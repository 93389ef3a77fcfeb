// Partition affinity: GPUs in different NVLink domains cannot share NVLink memory, so once
// an NVLink logical partition has instances in a domain, a single-domain placement that
// names that partition (a strict batch, a whole-machine single, a GPU-granular single) must
// go to one of the domains where the partition already has instances. If none of them can
// take it now, the request fails with RESOURCE_EXHAUSTED naming those domains — it is not
// silently placed elsewhere. Cross-domain batches are not bound (they span domains by
// request) but their instances do count for later requests.
//
// Thread-safety: pure functions over a const FleetState.
#ifndef NVLSCHED_ALLOCATOR_PARTITION_AFFINITY_H_
#define NVLSCHED_ALLOCATOR_PARTITION_AFFINITY_H_

#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"
#include "allocator/fleet_state.h"

namespace nvlsched::allocator {

using AffinityDomains = absl::InlinedVector<DomainIndex, 4>;

// Domains (ascending, unique) where any of `partitions` has live instances; empty when
// none does, i.e. the placement is not bound. Cost: O(entries of those partitions); no
// allocation for up to 4 domains.
AffinityDomains FindAffinityDomains(const FleetState& state,
                                    absl::Span<const PartitionIndex> partitions);

// Operator words for an error: which partition lives in which domain and how much of type
// t is free there, e.g. "NVLink logical partition p-1 has instances in domain rack-3
// (2 of 18 gb200-tray machines free, most free GPUs on one machine: 4)".
// The domains a single-domain placement in `scope` is bound to: its pinned domain if it has
// one (PlacementScope::pinned), else FindAffinityDomains of its partitions; empty = unbound.
AffinityDomains ScopeAffinity(const FleetState& state, const PlacementScope& scope);

std::string DescribeAffinity(const FleetState& state, TypeIndex t,
                             absl::Span<const PartitionIndex> partitions,
                             absl::Span<const DomainIndex> domains);

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_PARTITION_AFFINITY_H_
