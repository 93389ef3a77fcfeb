#include "allocator/gpu_granular_policy.h"

#include <algorithm>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "allocator/errors.h"
#include "allocator/partition_affinity.h"

namespace nvlsched::allocator {
namespace {

// The lowest-tray machine of type t in domain d with exactly f free GPUs, or kNoIndex.
MachineIndex LowestTrayWithFreeGpus(const FleetState& state, TypeIndex t, DomainIndex d, int f) {
  const SmallBitset& mask = state.cell(t, d).granular_mask;
  const std::vector<MachineIndex>& order = state.domains[d].machines_by_tray;
  for (int pos = mask.First(); pos >= 0; pos = mask.NextFrom(pos + 1)) {
    if (state.machines[order[pos]].free_gpus() == f) return order[pos];
  }
  return kNoIndex;
}

// The same among partly held machines only (in granular_mask, so READY with free GPUs, but
// not in free_mask, so some GPUs are held): what a GPU-granular single may take in an
// excluded domain.
MachineIndex LowestPartlyHeldWithFreeGpus(const FleetState& state, TypeIndex t, DomainIndex d,
                                          int f) {
  const DomainCell& cell = state.cell(t, d);
  const std::vector<MachineIndex>& order = state.domains[d].machines_by_tray;
  for (int pos = cell.granular_mask.First(); pos >= 0; pos = cell.granular_mask.NextFrom(pos + 1)) {
    if (!cell.free_mask.Test(pos) && state.machines[order[pos]].free_gpus() == f) return order[pos];
  }
  return kNoIndex;
}

// Opening a fresh (free) machine here would take one of the domain's spare trays.
bool SparesOnly(const FleetState& state, TypeIndex t, DomainIndex d) {
  return state.cell(t, d).Placeable() == 0;
}

// Affinity domains are few: evaluate the rule's sort key directly over their machines.
MachineIndex BestAmong(const FleetState& state, TypeIndex t, int g, const DomainFilter& filter) {
  MachineIndex best = kNoIndex;
  std::tuple<int, bool, DomainIndex, int> best_key;
  for (DomainIndex d : filter.affinity) {
    if (!state.InSiteAndAffinity(filter, d)) continue;
    const bool partly_held_only = ListsDomain(filter.excluded, d) || SparesOnly(state, t, d);
    const DomainCell& cell = state.cell(t, d);
    const std::vector<MachineIndex>& order = state.domains[d].machines_by_tray;
    for (int pos = cell.granular_mask.First(); pos >= 0; pos = cell.granular_mask.NextFrom(pos + 1)) {
      if (partly_held_only && cell.free_mask.Test(pos)) continue;
      int free = state.machines[order[pos]].free_gpus();
      if (free < g) continue;
      auto key = std::make_tuple(free, cell.FullyFree(), d, pos);
      if (best == kNoIndex || key < best_key) {
        best = order[pos];
        best_key = key;
      }
    }
  }
  return best;
}

// The machine of domain d (a member of the set of f free GPUs) the walk below takes, or
// kNoIndex to go on: outside the filter's site, nothing; in an excluded domain, or one whose
// free machines are all spare trays, only a partly held machine, of which a fully free
// domain has none.
MachineIndex Candidate(const FleetState& state, TypeIndex t, DomainIndex d, int f,
                       bool fully_free, bool filtered, const DomainFilter& filter) {
  if (filtered && !state.InSiteAndAffinity(filter, d)) return kNoIndex;
  if (!(filtered && ListsDomain(filter.excluded, d)) && !SparesOnly(state, t, d)) {
    return LowestTrayWithFreeGpus(state, t, d, f);
  }
  return fully_free ? kNoIndex : LowestPartlyHeldWithFreeGpus(state, t, d, f);
}

// Walks free-GPU values upward, broken domains before fully free ones, domains in index
// order; without a filter and spare trays the first domain of the first non-empty set is
// the answer.
MachineIndex BestFromIndex(const FleetState& state, TypeIndex t, int g, const DomainFilter& filter) {
  const GpuGranularIndex& index = state.type_states[t].granular;
  const bool filtered = filter.active();
  for (int f = g; f <= kMaxGpusPerMachine; ++f) {
    for (bool fully_free : {false, true}) {
      const DomainSet& domains = index.Domains(f, fully_free);
      for (DomainIndex d = domains.First(); d != DomainSet::kNone; d = domains.Next(d)) {
        MachineIndex m = Candidate(state, t, d, f, fully_free, filtered, filter);
        if (m != kNoIndex) return m;
      }
    }
  }
  return kNoIndex;
}

absl::Status NoMachineError(const FleetState& state, TypeIndex t, int g,
                            const PlacementScope& scope, const DomainFilter& filter) {
  int64_t most_on_one_machine = 0;
  int64_t total_free = 0;
  for (DomainIndex d = 0; d < state.domains.size(); ++d) {
    if (!state.InSiteAndAffinity(filter, d)) continue;
    if (ListsDomain(filter.excluded, d) || SparesOnly(state, t, d)) {  // partly held only
      int most = MostFreeGpusOnPartlyHeld(state, t, d, &total_free);
      most_on_one_machine = std::max<int64_t>(most_on_one_machine, most);
      continue;
    }
    const DomainCell& cell = state.cell(t, d);
    for (int f = 1; f <= kMaxGpusPerMachine; ++f) {
      if (cell.granular_hist[f] == 0) continue;
      most_on_one_machine = std::max<int64_t>(most_on_one_machine, f);
      total_free += int64_t{f} * cell.granular_hist[f];
    }
  }
  CapacityShortfall shortfall{state.types[t].spec.id, CapacityUnit::kGpus, g, most_on_one_machine,
                              total_free};
  const std::string& type = state.TypeName(t);
  if (scope.pinned != kNoIndex) {
    return CapacityExhaustedError(
        absl::StrCat("not enough free capacity yet in NVLink domain ", state.DomainName(scope.pinned),
                     ", which this request waits for (the spot instances it preempted there are "
                     "still leaving): no READY ", type, " machine there has ", g, " free GPUs"),
        shortfall);
  }
  if (!filter.affinity.empty()) {
    return CapacityExhaustedError(
        absl::StrCat("not enough free capacity now in the NVLink domain(s) this request is "
                     "bound to: ",
                     DescribeAffinity(state, t, scope.partitions, filter.affinity),
                     "; no READY ", type, " machine there has ", g,
                     " free GPUs, and GPUs in different NVLink domains cannot share NVLink "
                     "memory. Release instances there, retry later, or use a different "
                     "NVLink logical partition"),
        shortfall);
  }
  std::string where =
      scope.site == kNoIndex ? "" : absl::StrCat(" in site ", state.sites[scope.site]);
  return CapacityExhaustedError(
      absl::StrCat("not enough free capacity now: no READY ", type, " machine", where, " has ",
                   g, " free GPUs; the most free on one machine is ", most_on_one_machine, " (",
                   total_free, " free GPUs in total); retry later or ask for at most ",
                   most_on_one_machine, " GPUs"),
      shortfall);
}

}  // namespace

int MostFreeGpusOnPartlyHeld(const FleetState& state, TypeIndex t, DomainIndex d,
                             int64_t* total_free) {
  const DomainCell& cell = state.cell(t, d);
  const std::vector<MachineIndex>& order = state.domains[d].machines_by_tray;
  int most = 0;
  for (int pos = cell.granular_mask.First(); pos >= 0; pos = cell.granular_mask.NextFrom(pos + 1)) {
    if (cell.free_mask.Test(pos)) continue;
    int free = state.machines[order[pos]].free_gpus();
    most = std::max(most, free);
    if (total_free != nullptr) *total_free += free;
  }
  return most;
}

absl::Status PlaceGpuGranular(const FleetState& state, TypeIndex t, int g,
                              const PlacementScope& scope, Placement* out) {
  AffinityDomains affinity = ScopeAffinity(state, scope);
  DomainFilter filter{scope.site, affinity, scope.excluded};
  MachineIndex chosen = affinity.empty() ? BestFromIndex(state, t, g, filter)
                                         : BestAmong(state, t, g, filter);
  if (chosen == kNoIndex) return NoMachineError(state, t, g, scope, filter);
  state.FillPlaced(chosen, g, /*whole_machine=*/false, &out->instances.emplace_back());
  return absl::OkStatus();
}

}  // namespace nvlsched::allocator
