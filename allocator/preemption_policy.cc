#include "allocator/preemption_policy.h"

#include <algorithm>
#include <tuple>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "allocator/errors.h"
#include "allocator/partition_affinity.h"

namespace nvlsched::allocator {
namespace {

// One spot gang met in a domain: a batch, or a single (batch == kNoIndex).
struct Gang {
  BatchIndex batch = kNoIndex;
  ClaimIndex claim = kNoIndex;  // the single, or the batch's first claim met (for ties)
  int32_t here = 0;             // its reclaimable machines in the domain
  int64_t gpus = 0;             // GPUs the whole gang holds
  int64_t gpu_seconds = 0;      // run so far
  bool own = false;             // the requester's tenant's

  // The order victims are taken in: most machines here, youngest, lowest index.
  friend bool operator<(const Gang& a, const Gang& b) {
    uint32_t ia = a.batch != kNoIndex ? a.batch : a.claim;
    uint32_t ib = b.batch != kNoIndex ? b.batch : b.claim;
    return std::make_tuple(-a.here, a.gpu_seconds, a.batch == kNoIndex, ia) <
           std::make_tuple(-b.here, b.gpu_seconds, b.batch == kNoIndex, ib);
  }
};

using Gangs = absl::InlinedVector<Gang, kInlineBatch>;

struct Choice {
  DomainIndex domain = kNoIndex;
  int32_t gangs = 0;
  int64_t gpu_seconds = 0;
  Gangs victims;

  bool BetterThan(const Choice& other) const {
    if (other.domain == kNoIndex) return true;
    return std::make_tuple(gangs, gpu_seconds, domain) <
           std::make_tuple(other.gangs, other.gpu_seconds, other.domain);
  }
};

int64_t SecondsSince(int64_t now_micros, int64_t started_micros) {
  return now_micros > started_micros ? (now_micros - started_micros) / 1'000'000 : 0;
}

// The fewest gangs in domain d whose machines there, with its free ones, make k; false when
// even all of them do not.
bool Evaluate(const FleetState& s, TypeIndex t, DomainIndex d, int k, TenantIndex tenant,
              bool allow_own, int64_t now_micros, Choice* out) {
  const DomainCell& cell = s.cell(t, d);
  const int need = k - cell.Placeable();  // spare trays are never counted
  if (need <= 0 || cell.reclaimable < need) return false;
  const MachineIndex* by_tray = s.domains[d].machines_by_tray.data();
  Gangs gangs;
  int32_t reclaimable = 0;
  for (int w = 0; w < SmallBitset::kWords; ++w) {
    for (uint64_t word = cell.reclaim_mask.Word(w); word != 0; word &= word - 1) {
      const MachineRecord& machine = s.machines[by_tray[(w << 6) + __builtin_ctzll(word)]];
      const ClaimIndex c = machine.whole_claim;
      const ClaimRecord& claim = s.claims[c];
      const bool own = claim.tenant == tenant;
      if (own && !allow_own) continue;
      ++reclaimable;
      auto it = std::find_if(gangs.begin(), gangs.end(), [&](const Gang& g) {
        return claim.batch != kNoIndex ? g.batch == claim.batch : g.claim == c;
      });
      if (it != gangs.end()) {
        ++it->here;
        continue;
      }
      Gang& gang = gangs.emplace_back();
      gang.batch = claim.batch;
      gang.claim = c;
      gang.here = 1;
      gang.gpus = claim.batch != kNoIndex ? s.batches[claim.batch].gpus : claim.gpu_count;
      gang.gpu_seconds = gang.gpus * SecondsSince(now_micros, claim.started_micros);
      gang.own = own;
    }
  }
  if (reclaimable < need) return false;
  std::sort(gangs.begin(), gangs.end());
  out->domain = d;
  out->gangs = 0;
  out->gpu_seconds = 0;
  out->victims.clear();
  // Largest first until one more gang can cover the rest; that last one is the cheapest
  // (fewest GPU-seconds) of those that can, so the count stays the minimum.
  int freed = 0;
  size_t i = 0;
  while (freed < need) {
    const int rest = need - freed;
    size_t pick = i;
    if (gangs[i].here >= rest) {
      for (size_t j = i + 1; j < gangs.size() && gangs[j].here >= rest; ++j) {
        if (gangs[j].gpu_seconds < gangs[pick].gpu_seconds) pick = j;
      }
    }
    std::swap(gangs[i], gangs[pick]);
    freed += gangs[i].here;
    ++out->gangs;
    out->gpu_seconds += gangs[i].gpu_seconds;
    out->victims.push_back(gangs[i]);
    ++i;
  }
  return true;
}

// Walks the candidates from the tightest reach up (see the header for when it stops).
Choice Walk(const FleetState& s, TypeIndex t, int k, TenantIndex tenant,
            const DomainFilter& filter, bool allow_own, int64_t now_micros) {
  const BestFitDomainIndex& index = s.type_states[t].reclaim;
  Choice best;
  Choice candidate;
  int evaluated = 0;
  for (int c = k <= kMaxMachinesPerDomain ? index.BucketAtLeast(k) : 0; c != 0;
       c = c < kMaxMachinesPerDomain ? index.BucketAtLeast(c + 1) : 0) {
    const DomainSet& bucket = index.Bucket(c);
    for (uint32_t d = bucket.First(); d != DomainSet::kNone; d = bucket.Next(d)) {
      if (best.domain != kNoIndex && best.gangs == 1 && evaluated >= kPreemptionCandidates) {
        return best;
      }
      if (!s.Accepts(filter, d)) continue;
      if (!Evaluate(s, t, d, k, tenant, allow_own, now_micros, &candidate)) continue;
      ++evaluated;
      if (candidate.BetterThan(best)) std::swap(best, candidate);
    }
  }
  return best;
}

}  // namespace

absl::Status PlanPreemptionInDomain(const FleetState& state, TypeIndex t, int k,
                                    TenantIndex tenant, const PlacementScope& scope,
                                    int64_t now_micros, PreemptionPlan* out) {
  AffinityDomains affinity = FindAffinityDomains(state, scope.partitions);
  DomainFilter filter{scope.site, affinity, scope.excluded};
  Choice best = Walk(state, t, k, tenant, filter, /*allow_own=*/false, now_micros);
  if (best.domain == kNoIndex) {
    best = Walk(state, t, k, tenant, filter, /*allow_own=*/true, now_micros);
  }
  if (best.domain == kNoIndex) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "no NVLink domain can hold ", k, " ", state.TypeName(t),
        " machines even with its spot instances preempted (",
        state.type_states[t].reclaimable_machines, " machines of the type are held by spot "
        "instances that could be preempted)"));
  }
  PreemptionPlan& plan = *out;
  plan.domain = best.domain;
  plan.gangs = best.gangs;
  plan.gpu_seconds = best.gpu_seconds;
  plan.gpus = 0;
  plan.own_tenant = false;
  plan.victims.clear();
  for (const Gang& gang : best.victims) {
    plan.gpus += gang.gpus;
    plan.own_tenant = plan.own_tenant || gang.own;
    if (gang.batch == kNoIndex) {
      plan.victims.push_back(state.HandleOf(gang.claim));
      continue;
    }
    // Every instance of the batch, in claim order, wherever it is.
    const size_t first = plan.victims.size();
    for (ClaimIndex c = state.batches[gang.batch].first_claim; c != kNoIndex;
         c = state.claims[c].batch_next) {
      plan.victims.push_back(state.HandleOf(c));
    }
    std::sort(plan.victims.begin() + static_cast<std::ptrdiff_t>(first), plan.victims.end());
  }
  return absl::OkStatus();
}

}  // namespace nvlsched::allocator
