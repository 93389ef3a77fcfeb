#include "allocator/invariants.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace nvlsched::allocator {
namespace {

// What the records say a machine's holdings are.
struct Holdings {
  int32_t whole = 0;
  ClaimIndex first_whole = kNoIndex;
  ClaimIndex second_whole = kNoIndex;
  int32_t granular_gpus = 0;
  int32_t granular_claims = 0;
};

absl::Status Mismatch(absl::string_view what, int64_t indexed, int64_t recount) {
  return absl::InternalError(absl::StrCat("invariant 4: ", what, " is ", indexed,
                                          " in the index but ", recount, " on recount"));
}

absl::Status CheckClaimsAndMachines(const FleetState& s) {
  std::vector<Holdings> holdings(s.machines.size());
  std::vector<int32_t> batch_claims(s.batches.size());
  std::vector<int64_t> batch_gpus(s.batches.size());
  int64_t live_claims = 0;
  for (ClaimIndex c = 0; c < s.claims.size(); ++c) {
    const ClaimRecord& claim = s.claims[c];
    if (!claim.live) continue;
    ++live_claims;
    if (claim.machine >= s.machines.size() || !s.machines[claim.machine].live) {
      return absl::InternalError(absl::StrCat("instance ", s.InstanceName(c),
                                              " holds a machine that is no longer in the fleet"));
    }
    if (s.FindClaim(s.HandleOf(c)) != c || claim.generation == 0) {
      return absl::InternalError(
          absl::StrCat("instance ", s.InstanceName(c), " is not found by its own handle"));
    }
    if (claim.batch != kNoIndex) {
      if (claim.batch >= s.batches.size() || !s.batches[claim.batch].live) {
        return absl::InternalError(absl::StrCat("instance ", s.InstanceName(c),
                                                " belongs to a batch that has ended"));
      }
      ++batch_claims[claim.batch];
      batch_gpus[claim.batch] += claim.gpu_count;
    }
    if (claim.preempted && !claim.spot) {
      return absl::InternalError(absl::StrCat("instance ", s.InstanceName(c),
                                              " is preempted but was never spot"));
    }
    Holdings& h = holdings[claim.machine];
    if (claim.whole_machine) {
      (h.whole++ == 0 ? h.first_whole : h.second_whole) = c;
    } else {
      h.granular_gpus += claim.gpu_count;
      ++h.granular_claims;
    }
  }
  if (live_claims != s.live_claims) {
    return Mismatch("the number of instances", s.live_claims, live_claims);
  }
  // (Instances of a batch that is not live were reported above.)
  for (BatchIndex b = 0; b < s.batches.size(); ++b) {
    const BatchRecord& batch = s.batches[b];
    if (!batch.live) continue;
    if (batch.live_claims != batch_claims[b]) {
      return Mismatch(absl::StrCat("the number of live instances of batch ", batch.id),
                      batch.live_claims, batch_claims[b]);
    }
    if (batch_claims[b] == 0) {
      return absl::InternalError(
          absl::StrCat("invariant 4: batch ", batch.id, " is live but has no instances"));
    }
    if (batch.gpus != batch_gpus[b]) {
      return Mismatch(absl::StrCat("the GPUs of batch ", batch.id), batch.gpus, batch_gpus[b]);
    }
    // Its list of claims: exactly its live claims, linked both ways.
    int32_t listed = 0;
    ClaimIndex prev = kNoIndex;
    for (ClaimIndex c = batch.first_claim; c != kNoIndex; c = s.claims[c].batch_next) {
      if (c >= s.claims.size() || !s.claims[c].live || s.claims[c].batch != b ||
          s.claims[c].batch_prev != prev || ++listed > batch_claims[b]) {
        return absl::InternalError(absl::StrCat("invariant 4: the list of instances of batch ",
                                                batch.id, " is broken at ", s.InstanceName(c)));
      }
      prev = c;
    }
    if (listed != batch_claims[b]) {
      return Mismatch(absl::StrCat("the listed instances of batch ", batch.id), listed,
                      batch_claims[b]);
    }
  }
  int64_t live_machines = 0;
  for (MachineIndex m = 0; m < s.machines.size(); ++m) {
    const MachineRecord& rec = s.machines[m];
    if (!rec.live) continue;
    ++live_machines;
    const Holdings& h = holdings[m];
    const std::string& id = rec.spec.id;
    if (h.whole > 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "invariant 1: machine ", id, " is held whole by two instances, ",
          s.InstanceName(h.first_whole), " and ", s.InstanceName(h.second_whole)));
    }
    if (h.whole == 1 && h.granular_claims > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "invariant 1: machine ", id, " is held whole by instance ", s.InstanceName(h.first_whole),
          " and also by ", h.granular_claims, " GPU-granular instance(s)"));
    }
    if (h.granular_gpus > rec.spec.gpu_count) {
      return absl::FailedPreconditionError(absl::StrCat(
          "invariant 1: GPU-granular instances hold ", h.granular_gpus, " GPUs of machine ", id,
          ", which has ", rec.spec.gpu_count));
    }
    // A machine waits for its wipe exactly when CLEANING, or drained (MAINTENANCE, ERROR)
    // after its last instance left; it is never READY nor held then.
    if (rec.spec.state == MachineState::kCleaning && !rec.spec.wipe_pending) {
      return absl::FailedPreconditionError(
          absl::StrCat("machine ", id, " is CLEANING but not marked as waiting for a wipe"));
    }
    if (rec.spec.wipe_pending && rec.spec.state == MachineState::kReady) {
      return absl::FailedPreconditionError(absl::StrCat(
          "machine ", id, " is READY but waits for a wipe (wipe_pending)"));
    }
    if (rec.spec.wipe_pending && (h.whole > 0 || h.granular_claims > 0)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "machine ", id, " waits for a wipe (wipe_pending) but is held by ",
          h.whole > 0 ? absl::StrCat("instance ", s.InstanceName(h.first_whole))
                      : absl::StrCat(h.granular_claims, " GPU-granular instance(s)")));
    }
    const bool spot_whole = h.first_whole != kNoIndex && s.claims[h.first_whole].Reclaimable();
    if (rec.whole_claim != h.first_whole || rec.granular_gpus != h.granular_gpus ||
        rec.granular_claims != h.granular_claims || rec.spot_whole != spot_whole) {
      return absl::InternalError(absl::StrCat("invariant 4: the holdings recorded on machine ", id,
                                              " disagree with its instances"));
    }
    if (s.FindMachine(id) != m) {
      return absl::InternalError(absl::StrCat("machine ", id, " is missing from the id map"));
    }
  }
  if (live_machines != s.live_machines ||
      s.machine_by_id.size() != static_cast<size_t>(live_machines)) {
    return Mismatch("the number of machines", static_cast<int64_t>(s.machine_by_id.size()),
                    live_machines);
  }
  return absl::OkStatus();
}

// REQUIRES: CheckClaimsAndMachines passed (every live claim's batch is live).
absl::Status CheckStrictBatches(const FleetState& s) {
  std::vector<ClaimIndex> first_of_batch(s.batches.size(), kNoIndex);
  for (ClaimIndex c = 0; c < s.claims.size(); ++c) {
    const ClaimRecord& claim = s.claims[c];
    if (!claim.live || !claim.topology_optimized || claim.batch == kNoIndex) continue;
    ClaimIndex& first = first_of_batch[claim.batch];
    if (first == kNoIndex) {
      first = c;
      continue;
    }
    DomainIndex a = s.machines[s.claims[first].machine].domain;
    DomainIndex b = s.machines[claim.machine].domain;
    if (a != b) {
      return absl::FailedPreconditionError(absl::StrCat(
          "invariant 2: topology-optimized batch ", s.batches[claim.batch].id,
          " spans NVLink domains: instance ", s.InstanceName(first), " is in domain ",
          s.DomainName(a), ", instance ", s.InstanceName(c), " in domain ", s.DomainName(b)));
    }
  }
  return absl::OkStatus();
}

DomainCell Recount(const FleetState& s, TypeIndex t, DomainIndex d) {
  DomainCell cell;
  cell.spares = s.EffectiveSpares(d);
  for (MachineIndex m : s.domains[d].machines_by_tray) {
    const MachineRecord& rec = s.machines[m];
    if (rec.type != t) continue;
    ++cell.total;
    if (rec.spec.state == MachineState::kCleaning) ++cell.cleaning;
    if (rec.free_whole()) {
      ++cell.free;
      cell.free_mask.Set(rec.position);
    }
    if (int f = rec.free_gpus(); f > 0) {
      cell.granular_mask.Set(rec.position);
      ++cell.granular_hist[f];
      cell.granular_bits |= 1u << f;
    }
    if (rec.reclaimable()) {
      ++cell.reclaimable;
      cell.reclaim_mask.Set(rec.position);
    }
  }
  return cell;
}

absl::Status CheckDomainOrder(const FleetState& s, DomainIndex d) {
  const std::vector<MachineIndex>& order = s.domains[d].machines_by_tray;
  const bool closed = s.domains[d].spec.state == DomainState::kMaintenance;
  const bool degraded = s.domains[d].spec.state == DomainState::kDegraded;
  if (degraded != std::binary_search(s.degraded_domains.begin(), s.degraded_domains.end(), d)) {
    return absl::InternalError(absl::StrCat("invariant 4: domain ", s.DomainName(d),
                                            " is ", degraded ? "" : "not ",
                                            "DEGRADED but the degraded list says otherwise"));
  }
  for (MachineIndex m : order) {
    if (s.machines[m].domain_closed != closed) {
      return absl::InternalError(absl::StrCat("invariant 4: machine ", s.machines[m].spec.id,
                                              " does not know its domain's MAINTENANCE state"));
    }
  }
  for (size_t i = 0; i < order.size(); ++i) {
    const MachineRecord& rec = s.machines[order[i]];
    if (!rec.live || rec.domain != d || rec.position != static_cast<int32_t>(i) ||
        (i > 0 && s.machines[order[i - 1]].spec.tray_index >= rec.spec.tray_index)) {
      return absl::InternalError(absl::StrCat("invariant 4: machine ", rec.spec.id,
                                              " is out of tray order in domain ", s.DomainName(d)));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckType(const FleetState& s, TypeIndex t) {
  const TypeState& ts = s.type_states[t];
  const std::string& type = s.TypeName(t);
  TypeState totals;  // recounted per-type counters
  int64_t domains_with_free = 0;
  int64_t domains_with_reach = 0;
  std::array<int64_t, kMaxGpusPerMachine + 1> granular_members[2] = {};
  totals.site_free.assign(s.sites.size(), 0);
  totals.site_total.assign(s.sites.size(), 0);
  totals.site_capacity.assign(s.sites.size(), 0);
  for (DomainIndex d = 0; d < s.domains.size(); ++d) {
    const DomainCell& cell = ts.cells[d];
    DomainCell want = Recount(s, t, d);
    if (s.domains[d].site < s.sites.size()) {
      totals.site_free[s.domains[d].site] += want.Placeable();
      totals.site_total[s.domains[d].site] += want.total;
      totals.site_capacity[s.domains[d].site] += want.Capacity();
    }
    std::string where = absl::StrCat(type, " machines in domain ", s.DomainName(d));
    if (cell.total != want.total || cell.indexed_total != want.total) {
      int32_t wrong = cell.total != want.total ? cell.total : cell.indexed_total;
      return Mismatch(absl::StrCat("the count of ", where), wrong, want.total);
    }
    if (cell.free != want.free) {
      return Mismatch(absl::StrCat("the free count of ", where), cell.free, want.free);
    }
    if (cell.spares != want.spares) {
      return Mismatch(absl::StrCat("the spare trays of ", where), cell.spares, want.spares);
    }
    if (cell.indexed_free != want.Placeable()) {
      return Mismatch(absl::StrCat("the placeable (free less spares) count of ", where),
                      cell.indexed_free, want.Placeable());
    }
    if (cell.indexed_capacity != want.Capacity()) {
      return Mismatch(absl::StrCat("the capacity (machines less spares) of ", where),
                      cell.indexed_capacity, want.Capacity());
    }
    if (cell.cleaning != want.cleaning) {
      return Mismatch(absl::StrCat("the cleaning count of ", where), cell.cleaning, want.cleaning);
    }
    if (cell.free_mask != want.free_mask) {
      return absl::InternalError(
          absl::StrCat("invariant 4: the free machines of ", where, " are not the recounted ones"));
    }
    if (cell.granular_mask != want.granular_mask || cell.granular_hist != want.granular_hist ||
        cell.granular_bits != want.granular_bits || cell.indexed_granular_bits != want.granular_bits) {
      return absl::InternalError(
          absl::StrCat("invariant 4: the free-GPU counts of ", where, " disagree with a recount"));
    }
    if (cell.reclaimable != want.reclaimable || cell.reclaim_mask != want.reclaim_mask ||
        cell.indexed_reach != want.Reach()) {
      return Mismatch(absl::StrCat("the reclaimable (spot-held) count of ", where),
                      cell.reclaimable, want.reclaimable);
    }
    if (want.Reach() > 0) {
      ++domains_with_reach;
      if (!ts.reclaim.Bucket(want.Reach()).Contains(d)) {
        return absl::InternalError(absl::StrCat("invariant 4: domain ", s.DomainName(d),
                                                " is not in the preemption index bucket ",
                                                want.Reach(), " of ", type));
      }
    }
    totals.reclaimable_machines += want.reclaimable;
    bool fully_free = want.FullyFree();
    if (cell.indexed_fully_free != fully_free) {
      return Mismatch(absl::StrCat("'fully free' of ", where), cell.indexed_fully_free, fully_free);
    }
    if (want.Placeable() > 0) {
      ++domains_with_free;
      if (!ts.best_fit.Bucket(want.Placeable()).Contains(d) ||
          !ts.best_fit.DomainsWithFree().Contains(d)) {
        return absl::InternalError(absl::StrCat("invariant 4: domain ", s.DomainName(d), " has ",
                                                want.Placeable(), " placeable free ", type,
                                                " machines but is not in that best-fit bucket"));
      }
    }
    for (int f = 1; f <= kMaxGpusPerMachine; ++f) {
      if (want.granular_hist[f] == 0) continue;
      ++granular_members[fully_free][f];
      if (!ts.granular.Domains(f, fully_free).Contains(d)) {
        return absl::InternalError(absl::StrCat("invariant 4: domain ", s.DomainName(d),
                                                " is missing from the GPU-granular index for ", f,
                                                " free GPUs of ", type));
      }
      totals.free_gpus += int64_t{f} * want.granular_hist[f];
    }
    totals.total_machines += want.total;
    totals.free_machines += want.free;
    totals.fully_free_domains += fully_free ? 1 : 0;
    if (want.total > 0) ++totals.domains_by_size[want.total];
    if (want.Capacity() > 0) ++totals.domains_by_capacity[want.Capacity()];
    totals.placeable_machines += want.Placeable();
    totals.capacity_machines += want.Capacity();
  }
  // Membership was checked one way above; equal sizes rule out stray members.
  int64_t bucket_members = 0;
  for (int c = 1; c <= kMaxMachinesPerDomain; ++c) {
    bucket_members += ts.best_fit.Bucket(c).size();
    if ((ts.best_fit.BucketAtLeast(c) == c) != !ts.best_fit.Bucket(c).Empty()) {
      return absl::InternalError(absl::StrCat("invariant 4: the non-empty bucket bitmap of ", type,
                                              " is wrong at ", c, " free"));
    }
  }
  int64_t reach_members = 0;
  for (int c = 1; c <= kMaxMachinesPerDomain; ++c) reach_members += ts.reclaim.Bucket(c).size();
  if (reach_members != domains_with_reach) {
    return Mismatch(absl::StrCat("the preemption index size of ", type), reach_members,
                    domains_with_reach);
  }
  if (ts.reclaimable_machines != totals.reclaimable_machines) {
    return Mismatch(absl::StrCat("reclaimable ", type, " machines"), ts.reclaimable_machines,
                    totals.reclaimable_machines);
  }
  if (bucket_members != domains_with_free || ts.best_fit.DomainsWithFree().size() != domains_with_free) {
    return Mismatch(absl::StrCat("the number of domains with free ", type, " machines"),
                    bucket_members, domains_with_free);
  }
  for (int ff = 0; ff < 2; ++ff) {
    for (int f = 1; f <= kMaxGpusPerMachine; ++f) {
      if (ts.granular.Domains(f, ff).size() != granular_members[ff][f]) {
        return Mismatch(absl::StrCat("the GPU-granular index size of ", type, " at ", f, " free GPUs"),
                        ts.granular.Domains(f, ff).size(), granular_members[ff][f]);
      }
    }
  }
  if (ts.total_machines != totals.total_machines) {
    return Mismatch(absl::StrCat(type, " machines"), ts.total_machines, totals.total_machines);
  }
  if (ts.free_machines != totals.free_machines) {
    return Mismatch(absl::StrCat("free ", type, " machines"), ts.free_machines, totals.free_machines);
  }
  if (ts.placeable_machines != totals.placeable_machines) {
    return Mismatch(absl::StrCat("placeable (free less spares) ", type, " machines"),
                    ts.placeable_machines, totals.placeable_machines);
  }
  if (ts.capacity_machines != totals.capacity_machines) {
    return Mismatch(absl::StrCat("capacity (machines less spares) of ", type),
                    ts.capacity_machines, totals.capacity_machines);
  }
  for (int n = 1; n <= kMaxMachinesPerDomain; ++n) {
    if (ts.domains_by_capacity[n] != totals.domains_by_capacity[n] ||
        ts.domain_capacities.Test(n) != (totals.domains_by_capacity[n] > 0)) {
      return Mismatch(absl::StrCat("domains with ", n, " placeable ", type, " machines"),
                      ts.domains_by_capacity[n], totals.domains_by_capacity[n]);
    }
  }
  if (ts.free_gpus != totals.free_gpus) {
    return Mismatch(absl::StrCat("free ", type, " GPUs"), ts.free_gpus, totals.free_gpus);
  }
  if (ts.fully_free_domains != totals.fully_free_domains) {
    return Mismatch(absl::StrCat("fully free domains of ", type), ts.fully_free_domains,
                    totals.fully_free_domains);
  }
  if (ts.site_free.size() != s.sites.size() || ts.site_total.size() != s.sites.size() ||
      ts.site_capacity.size() != s.sites.size()) {
    return Mismatch(absl::StrCat("the per-site counts of ", type), ts.site_free.size(),
                    s.sites.size());
  }
  for (SiteIndex site = 0; site < s.sites.size(); ++site) {
    if (ts.site_free[site] != totals.site_free[site]) {
      return Mismatch(absl::StrCat("placeable (free less spares) ", type, " machines in site \"",
                                   s.sites[site], "\""),
                      ts.site_free[site], totals.site_free[site]);
    }
    if (ts.site_total[site] != totals.site_total[site]) {
      return Mismatch(absl::StrCat(type, " machines in site \"", s.sites[site], "\""),
                      ts.site_total[site], totals.site_total[site]);
    }
    if (ts.site_capacity[site] != totals.site_capacity[site]) {
      return Mismatch(absl::StrCat(type, " machines less spares in site \"", s.sites[site], "\""),
                      ts.site_capacity[site], totals.site_capacity[site]);
    }
  }
  for (int n = 1; n <= kMaxMachinesPerDomain; ++n) {
    if (ts.domains_by_size[n] != totals.domains_by_size[n] ||
        ts.domain_sizes.Test(n) != (totals.domains_by_size[n] > 0)) {
      return Mismatch(absl::StrCat("domains with ", n, " ", type, " machines"),
                      ts.domains_by_size[n], totals.domains_by_size[n]);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckUsage(const FleetState& s) {
  std::vector<std::vector<int64_t>> used(s.tenants.size(), std::vector<int64_t>(s.types.size()));
  // (tenant, type, site) -> GPUs: what the per-site quota counts.
  absl::flat_hash_map<std::tuple<TenantIndex, TypeIndex, SiteIndex>, int64_t> site_used;
  absl::flat_hash_map<std::pair<PartitionIndex, DomainIndex>, int32_t> partition_counts;
  for (const ClaimRecord& claim : s.claims) {
    if (!claim.live) continue;
    used[claim.tenant][claim.type] += claim.gpu_count;
    site_used[{claim.tenant, claim.type, s.domains[s.machines[claim.machine].domain].site}] +=
        claim.gpu_count;
    for (PartitionIndex p : claim.partitions) {
      ++partition_counts[{p, s.machines[claim.machine].domain}];
    }
  }
  for (TenantIndex t = 0; t < s.tenants.size(); ++t) {
    for (TypeIndex type = 0; type < s.types.size(); ++type) {
      if (s.tenants[t].used_gpus[type] != used[t][type]) {
        return Mismatch(absl::StrCat("quota usage of tenant ", s.tenants[t].spec.id, " for ",
                                     s.TypeName(type), " (GPUs)"),
                        s.tenants[t].used_gpus[type], used[t][type]);
      }
      for (SiteIndex site = 0; site < s.sites.size(); ++site) {
        auto it = site_used.find({t, type, site});
        const int64_t want = it == site_used.end() ? 0 : it->second;
        const int64_t have = s.tenants[t].site_used_gpus[type][site];
        if (have != want) {
          return Mismatch(absl::StrCat("quota usage of tenant ", s.tenants[t].spec.id, " for ",
                                       s.TypeName(type), " in site \"", s.sites[site],
                                       "\" (GPUs)"),
                          have, want);
        }
      }
    }
  }
  for (PartitionIndex p = 0; p < s.partitions.size(); ++p) {
    for (const auto& [d, count] : s.partitions[p].domains) {
      auto it = partition_counts.find({p, d});
      int32_t want = it == partition_counts.end() ? 0 : it->second;
      if (count != want) {
        return Mismatch(absl::StrCat("instances of NVLink partition ", s.partitions[p].id,
                                     " in domain ", s.DomainName(d)),
                        count, want);
      }
      if (it != partition_counts.end()) partition_counts.erase(it);
    }
  }
  if (!partition_counts.empty()) {
    return absl::InternalError("invariant 4: an NVLink partition has uncounted instances");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckFleetInvariants(const FleetState& state) {
  if (absl::Status s = CheckClaimsAndMachines(state); !s.ok()) return s;
  if (absl::Status s = CheckStrictBatches(state); !s.ok()) return s;
  int64_t linked = 0;
  for (DomainIndex d = 0; d < state.domains.size(); ++d) {
    if (absl::Status s = CheckDomainOrder(state, d); !s.ok()) return s;
    linked += static_cast<int64_t>(state.domains[d].machines_by_tray.size());
  }
  if (linked != state.live_machines) {
    return Mismatch("machines linked into domains", linked, state.live_machines);
  }
  for (TypeIndex t = 0; t < state.types.size(); ++t) {
    if (absl::Status s = CheckType(state, t); !s.ok()) return s;
  }
  return CheckUsage(state);
}

}  // namespace nvlsched::allocator
