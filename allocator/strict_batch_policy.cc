#include "allocator/strict_batch_policy.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "allocator/errors.h"
#include "allocator/partition_affinity.h"

namespace nvlsched::allocator {
namespace {

// Best fit among an explicit candidate list (affinity domains): few, so a plain scan.
DomainIndex BestFitAmong(const FleetState& state, TypeIndex t, int k, const DomainFilter& filter) {
  DomainIndex best = kNoIndex;
  int best_free = 0;
  for (DomainIndex d : filter.affinity) {
    if (!state.Accepts(filter, d)) continue;
    int free = state.cell(t, d).Placeable();
    if (free >= k && (best == kNoIndex || free < best_free)) {
      best = d;
      best_free = free;
    }
  }
  return best;
}

// Best fit restricted to one site (and not excluded): walk buckets upward, domains in index
// order, the first accepted wins (the order FindBestFit would take).
DomainIndex BestFitFiltered(const FleetState& state, TypeIndex t, int k, const DomainFilter& filter) {
  const BestFitDomainIndex& index = state.type_states[t].best_fit;
  for (int c = index.BucketAtLeast(k); c != 0; c = index.BucketAtLeast(c + 1)) {
    const DomainSet& bucket = index.Bucket(c);
    for (DomainIndex d = bucket.First(); d != DomainSet::kNone; d = bucket.Next(d)) {
      if (state.Accepts(filter, d)) return d;
    }
  }
  return kNoIndex;
}

struct FreeSummary {
  int64_t largest_domain_free = 0;
  int64_t total_free = 0;
};

// Error path only: O(domains) when filtered.
FreeSummary SummarizeFree(const FleetState& state, TypeIndex t, const DomainFilter& filter) {
  const TypeState& ts = state.type_states[t];
  if (filter.affinity.empty() && filter.site == kNoIndex) {
    return {ts.best_fit.LargestFree(filter.excluded),
            ts.placeable_machines - state.FreeMachinesIn(t, filter.excluded)};
  }
  FreeSummary summary;
  for (DomainIndex d = 0; d < state.domains.size(); ++d) {
    if (!state.Accepts(filter, d)) continue;
    int free = ts.cells[d].Placeable();
    summary.largest_domain_free = std::max<int64_t>(summary.largest_domain_free, free);
    summary.total_free += free;
  }
  return summary;
}

absl::Status NoDomainError(const FleetState& state, TypeIndex t, int k,
                           const PlacementScope& scope, const DomainFilter& filter) {
  FreeSummary free = SummarizeFree(state, t, filter);
  CapacityShortfall shortfall{state.types[t].spec.id, CapacityUnit::kMachines, k,
                              free.largest_domain_free, free.total_free};
  const std::string& type = state.TypeName(t);
  std::string where =
      scope.site == kNoIndex ? "" : absl::StrCat(" in site ", state.sites[scope.site]);
  if (scope.pinned != kNoIndex) {
    return CapacityExhaustedError(
        absl::StrCat("not enough free capacity yet in NVLink domain ", state.DomainName(scope.pinned),
                     ", which this request waits for (the spot instances it preempted there are "
                     "still leaving): it needs ", k, " free ", type, " machine(s), ",
                     state.cell(t, scope.pinned).Placeable(), " are free (besides spare trays)"),
        shortfall);
  }
  if (!filter.affinity.empty()) {
    return CapacityExhaustedError(
        absl::StrCat("not enough free capacity now in the NVLink domain(s) this request is "
                     "bound to: ",
                     DescribeAffinity(state, t, scope.partitions, filter.affinity),
                     "; the request needs ", k, " free ", type,
                     " machine(s) in one of them, because GPUs in different NVLink domains "
                     "cannot share NVLink memory. Release instances there, retry later, or "
                     "use a different NVLink logical partition"),
        shortfall);
  }
  if (k == 1) {
    return CapacityExhaustedError(
        absl::StrCat("not enough free capacity now: no READY ", type, " machine is free",
                     where, " (", free.total_free, " free); retry later"),
        shortfall);
  }
  return CapacityExhaustedError(
      absl::StrCat("not enough free capacity now: a topology-optimized batch of ", k, " ",
                   type, " machines needs ", k, " free machines in one NVLink domain", where,
                   ", but the most free in any domain is ", free.largest_domain_free, " (",
                   free.total_free, " free in total); retry later, ask for at most ",
                   free.largest_domain_free,
                   ", or set topology_optimized=false to spread over domains"),
      shortfall);
}

}  // namespace

absl::Status PlaceStrictBatch(const FleetState& state, TypeIndex t, int k,
                              const PlacementScope& scope, Placement* out) {
  AffinityDomains affinity = ScopeAffinity(state, scope);
  DomainFilter filter{scope.site, affinity, scope.excluded};
  DomainIndex chosen;
  if (!affinity.empty()) {
    chosen = BestFitAmong(state, t, k, filter);
  } else if (scope.site != kNoIndex) {
    chosen = BestFitFiltered(state, t, k, filter);
  } else {
    // The common path: O(1) when nothing is excluded.
    chosen = state.type_states[t].best_fit.FindBestFit(k, scope.excluded);
  }
  if (chosen == kNoIndex) return NoDomainError(state, t, k, scope, filter);
  state.AppendFreeMachines(t, chosen, k, out);
  return absl::OkStatus();
}

}  // namespace nvlsched::allocator
