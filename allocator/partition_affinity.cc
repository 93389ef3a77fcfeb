#include "allocator/partition_affinity.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace nvlsched::allocator {

AffinityDomains FindAffinityDomains(const FleetState& state,
                                    absl::Span<const PartitionIndex> partitions) {
  AffinityDomains domains;
  for (PartitionIndex p : partitions) {
    for (const auto& [d, count] : state.partitions[p].domains) {
      if (count > 0) domains.push_back(d);
    }
  }
  std::sort(domains.begin(), domains.end());
  domains.erase(std::unique(domains.begin(), domains.end()), domains.end());
  return domains;
}

std::string DescribeAffinity(const FleetState& state, TypeIndex t,
                             absl::Span<const PartitionIndex> partitions,
                             absl::Span<const DomainIndex> domains) {
  std::vector<std::string> parts;
  for (DomainIndex d : domains) {
    std::vector<std::string> names;
    for (PartitionIndex p : partitions) {
      for (const auto& [pd, count] : state.partitions[p].domains) {
        if (pd == d && count > 0) names.push_back(state.partitions[p].id);
      }
    }
    const DomainCell& cell = state.cell(t, d);
    int most_free_gpus = cell.granular_bits == 0 ? 0 : 31 - __builtin_clz(cell.granular_bits);
    parts.push_back(absl::StrCat(
        "NVLink logical partition ", absl::StrJoin(names, ", "), " has instances in domain ",
        state.DomainName(d), " (", cell.free, " of ", cell.total, " ", state.TypeName(t),
        " machines free, most free GPUs on one machine: ", most_free_gpus, ")"));
  }
  return absl::StrJoin(parts, "; ");
}

AffinityDomains ScopeAffinity(const FleetState& state, const PlacementScope& scope) {
  if (scope.pinned != kNoIndex && scope.pinned < state.domains.size()) {
    return AffinityDomains{scope.pinned};
  }
  return FindAffinityDomains(state, scope.partitions);
}

}  // namespace nvlsched::allocator
