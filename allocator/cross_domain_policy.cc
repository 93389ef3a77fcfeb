#include "allocator/cross_domain_policy.h"

#include <algorithm>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "allocator/string_view_compat.h"
#include "allocator/errors.h"

namespace nvlsched::allocator {
namespace {

// Takes from the domains of one bucket in index order; returns machines still wanted.
int TakeFromBucket(const FleetState& state, TypeIndex t, int c, int remaining, Placement* out) {
  const DomainSet& bucket = state.type_states[t].best_fit.Bucket(c);
  for (DomainIndex d = bucket.First(); d != DomainSet::kNone && remaining > 0;
       d = bucket.Next(d)) {
    int take = std::min(c, remaining);
    state.AppendFreeMachines(t, d, take, out);
    remaining -= take;
  }
  return remaining;
}

void Fill(const FleetState& state, TypeIndex t, int k, Placement* out) {
  const BestFitDomainIndex& index = state.type_states[t].best_fit;
  int remaining = k;
  for (int c = index.BucketAtLeast(1); c != 0 && remaining > 0; c = index.BucketAtLeast(c + 1)) {
    remaining = TakeFromBucket(state, t, c, remaining, out);
  }
}

void MinDomains(const FleetState& state, TypeIndex t, int k, Placement* out) {
  const BestFitDomainIndex& index = state.type_states[t].best_fit;
  int remaining = k;
  for (int c = index.LargestFree(); c != 0 && remaining > 0; c = index.BucketAtMost(c - 1)) {
    remaining = TakeFromBucket(state, t, c, remaining, out);
  }
}

void Spread(const FleetState& state, TypeIndex t, int k, Placement* out) {
  const DomainSet& with_free = state.type_states[t].best_fit.DomainsWithFree();
  // (domain, machines to take); at most k domains are ever useful.
  absl::InlinedVector<std::pair<DomainIndex, int>, kInlineBatch> picks;
  for (DomainIndex d = with_free.First();
       d != DomainSet::kNone && static_cast<int>(picks.size()) < k; d = with_free.Next(d)) {
    picks.emplace_back(d, 0);
  }
  int remaining = k;
  while (remaining > 0) {  // terminates: the caller checked total free >= k
    for (auto& [d, take] : picks) {
      if (remaining == 0) break;
      if (take < state.cell(t, d).free) {
        ++take;
        --remaining;
      }
    }
  }
  for (const auto& [d, take] : picks) {
    if (take > 0) state.AppendFreeMachines(t, d, take, out);
  }
}

}  // namespace

absl::Status PlaceCrossDomain(const FleetState& state, TypeIndex t, int k, SpreadPolicy policy,
                              Placement* out) {
  const TypeState& ts = state.type_states[t];
  if (ts.free_machines < k) {
    CapacityShortfall shortfall{state.types[t].spec.id, CapacityUnit::kMachines, k,
                                ts.best_fit.LargestFree(), ts.free_machines};
    return CapacityExhaustedError(
        absl::StrCat("not enough free capacity now: ", k, " ", state.TypeName(t),
                     " machines requested across NVLink domains (", AbslView(SpreadPolicyName(policy)),
                     "), but only ", ts.free_machines, " are free (most in one domain: ",
                     ts.best_fit.LargestFree(), "); retry later or ask for at most ",
                     ts.free_machines),
        shortfall);
  }
  switch (policy) {
    case SpreadPolicy::kFill:
      Fill(state, t, k, out);
      break;
    case SpreadPolicy::kMinDomains:
      MinDomains(state, t, k, out);
      break;
    case SpreadPolicy::kSpread:
      Spread(state, t, k, out);
      break;
  }
  return absl::OkStatus();
}

}  // namespace nvlsched::allocator
