#include "allocator/cross_domain_policy.h"

#include <algorithm>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "allocator/string_view_compat.h"
#include "allocator/errors.h"

namespace nvlsched::allocator {
namespace {

// Takes from the domains of one bucket in index order, skipping excluded ones; returns
// machines still wanted.
bool OutOfSite(const FleetState& state, SiteIndex site, DomainIndex d) {
  return site != kNoIndex && state.domains[d].site != site;
}

int TakeFromBucket(const FleetState& state, TypeIndex t, int c, int remaining,
                   absl::Span<const DomainIndex> excluded, SiteIndex site, Placement* out) {
  const DomainSet& bucket = state.type_states[t].best_fit.Bucket(c);
  for (DomainIndex d = bucket.First(); d != DomainSet::kNone && remaining > 0;
       d = bucket.Next(d)) {
    if (OutOfSite(state, site, d)) continue;
    if (!excluded.empty() && ListsDomain(excluded, d)) continue;
    int take = std::min(c, remaining);
    state.AppendFreeMachines(t, d, take, out);
    remaining -= take;
  }
  return remaining;
}

void Fill(const FleetState& state, TypeIndex t, int k, absl::Span<const DomainIndex> excluded,
          SiteIndex site, Placement* out) {
  const BestFitDomainIndex& index = state.type_states[t].best_fit;
  int remaining = k;
  for (int c = index.BucketAtLeast(1); c != 0 && remaining > 0; c = index.BucketAtLeast(c + 1)) {
    remaining = TakeFromBucket(state, t, c, remaining, excluded, site, out);
  }
}

void MinDomains(const FleetState& state, TypeIndex t, int k,
                absl::Span<const DomainIndex> excluded, SiteIndex site, Placement* out) {
  const BestFitDomainIndex& index = state.type_states[t].best_fit;
  int remaining = k;
  for (int c = index.LargestFree(); c != 0 && remaining > 0; c = index.BucketAtMost(c - 1)) {
    remaining = TakeFromBucket(state, t, c, remaining, excluded, site, out);
  }
}

void Spread(const FleetState& state, TypeIndex t, int k, absl::Span<const DomainIndex> excluded,
            SiteIndex site, Placement* out) {
  const DomainSet& with_free = state.type_states[t].best_fit.DomainsWithFree();
  // (domain, machines to take); at most k domains are ever useful.
  absl::InlinedVector<std::pair<DomainIndex, int>, kInlineBatch> picks;
  for (DomainIndex d = with_free.First();
       d != DomainSet::kNone && static_cast<int>(picks.size()) < k; d = with_free.Next(d)) {
    if (OutOfSite(state, site, d)) continue;
    if (!excluded.empty() && ListsDomain(excluded, d)) continue;
    picks.emplace_back(d, 0);
  }
  int remaining = k;
  while (remaining > 0) {  // terminates: the caller checked free outside excluded >= k
    for (auto& [d, take] : picks) {
      if (remaining == 0) break;
      if (take < state.cell(t, d).Placeable()) {
        ++take;
        --remaining;
      }
    }
  }
  for (const auto& [d, take] : picks) {
    if (take > 0) state.AppendFreeMachines(t, d, take, out);
  }
}

// Most free machines of type t in one domain of the site outside `excluded`. Error path only.
int64_t LargestFreeInSite(const FleetState& state, TypeIndex t,
                          absl::Span<const DomainIndex> excluded, SiteIndex site) {
  if (site == kNoIndex) return state.type_states[t].best_fit.LargestFree(excluded);
  int64_t largest = 0;
  for (DomainIndex d = 0; d < state.domains.size(); ++d) {
    if (OutOfSite(state, site, d) || ListsDomain(excluded, d)) continue;
    largest = std::max<int64_t>(largest, state.cell(t, d).Placeable());
  }
  return largest;
}

}  // namespace

int64_t FreeMachinesOutside(const FleetState& state, TypeIndex t,
                            absl::Span<const DomainIndex> excluded, SiteIndex site) {
  const TypeState& ts = state.type_states[t];
  if (site == kNoIndex) {
    return excluded.empty() ? ts.placeable_machines
                            : ts.placeable_machines - state.FreeMachinesIn(t, excluded);
  }
  int64_t free = ts.site_free[site];
  for (size_t i = 0; i < excluded.size(); ++i) {
    DomainIndex d = excluded[i];
    if (d >= state.domains.size() || OutOfSite(state, site, d) ||
        ListsDomain(excluded.first(i), d)) {
      continue;
    }
    free -= state.cell(t, d).Placeable();
  }
  return free;
}

absl::Status PlaceCrossDomain(const FleetState& state, TypeIndex t, int k, SpreadPolicy policy,
                              absl::Span<const DomainIndex> excluded, Placement* out,
                              SiteIndex site) {
  int64_t free = FreeMachinesOutside(state, t, excluded, site);
  if (free < k) {
    int64_t largest = LargestFreeInSite(state, t, excluded, site);
    std::string where =
        site == kNoIndex ? "" : absl::StrCat(" in site ", state.sites[site]);
    CapacityShortfall shortfall{state.types[t].spec.id, CapacityUnit::kMachines, k, largest, free};
    return CapacityExhaustedError(
        absl::StrCat("not enough free capacity now: ", k, " ", state.TypeName(t),
                     " machines requested across NVLink domains (", AbslView(SpreadPolicyName(policy)),
                     ")", where, ", but only ", free, " are free (most in one domain: ", largest,
                     "); retry later or ask for at most ", free),
        shortfall);
  }
  switch (policy) {
    case SpreadPolicy::kFill:
      Fill(state, t, k, excluded, site, out);
      break;
    case SpreadPolicy::kMinDomains:
      MinDomains(state, t, k, excluded, site, out);
      break;
    case SpreadPolicy::kSpread:
      Spread(state, t, k, excluded, site, out);
      break;
  }
  return absl::OkStatus();
}

absl::Status PlaceSegmented(const FleetState& state, TypeIndex t, int k, int segment,
                            absl::Span<const DomainIndex> excluded,
                            absl::Span<const DomainIndex> affinity, Placement* out,
                            SiteIndex site) {
  const int wanted = k / segment;
  absl::InlinedVector<DomainIndex, kInlineBatch> chosen;
  auto usable = [&](DomainIndex d) {
    return state.cell(t, d).Placeable() >= segment && !OutOfSite(state, site, d) &&
           !ListsDomain(excluded, d) && !ListsDomain(chosen, d);
  };
  for (DomainIndex d : affinity) {
    if (static_cast<int>(chosen.size()) == wanted) break;
    if (d < state.domains.size() && usable(d)) chosen.push_back(d);
  }
  const BestFitDomainIndex& index = state.type_states[t].best_fit;
  for (int c = segment <= kMaxMachinesPerDomain ? index.BucketAtLeast(segment) : 0;
       c != 0 && static_cast<int>(chosen.size()) < wanted;
       c = c < kMaxMachinesPerDomain ? index.BucketAtLeast(c + 1) : 0) {
    const DomainSet& bucket = index.Bucket(c);
    for (DomainIndex d = bucket.First();
         d != DomainSet::kNone && static_cast<int>(chosen.size()) < wanted; d = bucket.Next(d)) {
      if (usable(d)) chosen.push_back(d);
    }
  }
  if (static_cast<int>(chosen.size()) < wanted) {
    const int64_t free = FreeMachinesOutside(state, t, excluded, site);
    const int64_t largest = LargestFreeInSite(state, t, excluded, site);
    std::string where =
        site == kNoIndex ? "" : absl::StrCat(" in site ", state.sites[site]);
    CapacityShortfall shortfall{state.types[t].spec.id, CapacityUnit::kMachines, k, largest, free};
    return CapacityExhaustedError(
        absl::StrCat("not enough free capacity now: ", k, " ", state.TypeName(t),
                     " machines in segments of ", segment, " need ", wanted,
                     " NVLink domains with ", segment, " free machines each", where,
                     ", but only ", chosen.size(),
                     " have that now; retry later, or use a smaller segment_size"),
        shortfall);
  }
  for (DomainIndex d : chosen) state.AppendFreeMachines(t, d, segment, out);
  return absl::OkStatus();
}

}  // namespace nvlsched::allocator
