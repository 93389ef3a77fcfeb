// Allocator: planning and applying placements and releases. Inventory changes are in
// allocator_inventory.cc, the undo journal and start-up recovery in allocator_recovery.cc,
// reads in allocator_read.cc. The placement rules themselves live in the *_policy.cc files.
#include "allocator/allocator.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "allocator/string_view_compat.h"
#include "allocator/cross_domain_policy.h"
#include "allocator/errors.h"
#include "allocator/fleet_state.h"
#include "allocator/gpu_granular_policy.h"
#include "allocator/partition_affinity.h"
#include "allocator/preemption_policy.h"
#include "allocator/strict_batch_policy.h"
#include "allocator/undo_journal.h"

namespace nvlsched::allocator {

Allocator::Allocator()
    : state_(std::make_unique<FleetState>()), journal_(std::make_unique<UndoJournal>()) {}
Allocator::~Allocator() = default;
Allocator::Allocator(Allocator&&) noexcept = default;
Allocator& Allocator::operator=(Allocator&&) noexcept = default;

void Allocator::SetInstanceNamer(InstanceNamer namer) { state_->instance_namer = std::move(namer); }

// committed_gpus: quota already promised to the tenant's queued requests (PlanConstraints);
// it counts as in use.
absl::Status Allocator::CheckQuota(TenantIndex tenant, TypeIndex type, int64_t requested_gpus,
                                   int64_t committed_gpus) const {
  const FleetState& s = *state_;
  const TenantRecord& record = s.tenants[tenant];
  const InstanceType& spec = s.types[type].spec;
  int64_t max_machines = record.max_machines[type];
  if (max_machines == kNoFleetQuota) return absl::OkStatus();  // per-site entries only
  int64_t limit = max_machines * spec.gpus_per_machine;
  int64_t in_use = record.used_gpus[type] + committed_gpus;
  if (in_use + requested_gpus <= limit) return absl::OkStatus();
  QuotaViolation details{record.spec.id, spec.id, max_machines, limit, in_use, requested_gpus};
  const std::string& tenant_name = record.spec.name.empty() ? record.spec.id : record.spec.name;
  if (record.spec.quota.count(spec.id) == 0) {
    return QuotaExceededError(
        absl::StrCat("quota exceeded: tenant ", tenant_name, " has no quota for instance type ",
                     s.TypeName(type), "; ask an operator to grant one"),
        details);
  }
  return QuotaExceededError(
      absl::StrCat("quota exceeded: tenant ", tenant_name, " may hold ", max_machines, " ",
                   s.TypeName(type), " machines (", limit, " GPUs); ", in_use,
                   committed_gpus == 0
                       ? " GPUs are in use"
                       : absl::StrCat(" GPUs are in use or committed to queued requests (",
                                      committed_gpus, " committed)"),
                   " and this request needs ", requested_gpus,
                   " more; delete instances or ask for a higher quota"),
      details);
}

// Partitions nobody has used yet cannot bind a placement, so they are simply skipped.
absl::Status Allocator::ResolvePartitions(absl::Span<const std::string> ids,
                                          absl::InlinedVector<PartitionIndex, 4>* out) const {
  for (const std::string& id : ids) {
    if (id.empty()) {
      return absl::InvalidArgumentError(
          "nvlink_partition_ids contains an empty id; give the NVLink logical partition's id");
    }
    PartitionIndex p = state_->FindPartition(id);
    if (p != kNoIndex) out->push_back(p);
  }
  return absl::OkStatus();
}

namespace {

absl::Status UnknownTenant(std::string_view id) {
  return absl::NotFoundError(
      absl::StrCat("tenant \"", AbslView(id), "\" is not known; create the tenant first"));
}
// A single's site filter: kNoIndex for none; NOT_FOUND for a site no domain is in.
absl::StatusOr<SiteIndex> SiteOf(const FleetState& s, std::string_view site_id) {
  if (site_id.empty()) return kNoIndex;
  SiteIndex site = s.FindSite(site_id);
  if (site == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("site \"", AbslView(site_id),
                                            "\" is not known (no NVLink domain is in it)"));
  }
  return site;
}

// A single of a type with no machines can never be served: INVALID_ARGUMENT, not
// RESOURCE_EXHAUSTED (which says: retry later).
absl::Status NoMachinesOfType(const FleetState& s, TypeIndex type) {
  return absl::InvalidArgumentError(absl::StrCat("infeasible: instance type ", s.TypeName(type),
                                                 " has no machines in the fleet"));
}

// The tenant's per-site quota for the type lets it place `gpus` more GPUs in `site`. O(1).
bool SiteQuotaAllows(const FleetState& s, TenantIndex tenant, TypeIndex type, SiteIndex site,
                     int64_t gpus) {
  const TenantRecord& record = s.tenants[tenant];
  if (!record.site_limited[type]) return true;
  const int64_t max_machines = record.site_max_machines[type][site];
  // No entry for the site: limited by the fleet-wide entry alone, or closed without one.
  if (max_machines == kNoSiteQuota) return record.max_machines[type] != kNoFleetQuota;
  return record.site_used_gpus[type][site] + gpus <=
         max_machines * s.types[type].spec.gpus_per_machine;
}

// `named`: the request named the site (else other sites were tried and refused too).
absl::Status SiteQuotaError(const FleetState& s, TenantIndex tenant, TypeIndex type,
                            SiteIndex site, int64_t gpus, bool named) {
  const TenantRecord& record = s.tenants[tenant];
  const InstanceType& spec = s.types[type].spec;
  const std::string& tenant_name = record.spec.name.empty() ? record.spec.id : record.spec.name;
  int64_t max_machines = record.site_max_machines[type][site];
  const int64_t in_use = record.site_used_gpus[type][site];
  if (max_machines == kNoSiteQuota) max_machines = 0;
  const int64_t limit = max_machines * spec.gpus_per_machine;
  QuotaViolation details{record.spec.id, spec.id, max_machines, limit, in_use, gpus};
  if (record.site_max_machines[type][site] == kNoSiteQuota) {
    return QuotaExceededError(
        absl::StrCat("quota exceeded: tenant ", tenant_name, " has no quota for instance type ",
                     s.TypeName(type), " in site ", s.sites[site],
                     " (its quota for the type is per site)",
                     named ? "" : ", and no site it has quota in can take this request now",
                     "; name a site it has quota in, or ask an operator to grant one"),
        details);
  }
  return QuotaExceededError(
      absl::StrCat("quota exceeded: tenant ", tenant_name, " may hold ", max_machines, " ",
                   s.TypeName(type), " machines (", limit, " GPUs) in site ", s.sites[site], "; ",
                   in_use, " GPUs are in use there and this request needs ", gpus, " more",
                   named ? "" : ", and no other site the tenant has quota in can take it now",
                   "; delete instances there or ask for a higher quota"),
      details);
}

// Places with `place(site)`, then holds the result to the tenant's per-site quota: a
// placement without a named site that lands in a site whose quota cannot take it is planned
// again in each other site, in site index order, whose quota can; the first that fits wins.
// None: the per-site quota error of the site it first landed in. A named site was checked
// before. Cost: O(1) on top of `place` unless the tenant has per-site quotas for the type
// and the first site refuses.
template <typename PlaceFn>
absl::Status PlaceWithinSiteQuota(const FleetState& s, TenantIndex tenant, TypeIndex type,
                                  int64_t gpus, SiteIndex named, Placement* out, PlaceFn place) {
  absl::Status placed = place(named);
  if (!placed.ok() || named != kNoIndex || !s.tenants[tenant].site_limited[type]) return placed;
  const SiteIndex landed = s.domains[out->instances.front().domain].site;
  if (SiteQuotaAllows(s, tenant, type, landed, gpus)) return placed;
  for (SiteIndex site = 0; site < s.sites.size(); ++site) {
    if (site == landed || !SiteQuotaAllows(s, tenant, type, site, gpus)) continue;
    out->instances.clear();
    if (place(site).ok()) return absl::OkStatus();
  }
  out->instances.clear();
  return SiteQuotaError(s, tenant, type, landed, gpus, /*named=*/false);
}

// A batch never spans sites: a cross-domain batch larger than every site's machines of its
// type (or than the named site's), or a batch naming a site without machines of its type, can
// never be placed: INVALID_ARGUMENT, not RESOURCE_EXHAUSTED. O(sites).
absl::Status CheckSiteFeasible(const FleetState& s, TypeIndex type, const BatchRequest& request,
                               SiteIndex site) {
  const TypeState& ts = s.type_states[type];
  if (site != kNoIndex && ts.site_total[site] == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "infeasible: site ", s.sites[site], " has no ", s.TypeName(type),
        " machines, so the batch could never be placed; pick a site that has them (ListOffers) "
        "or leave site_id empty"));
  }
  if (request.topology_optimized) return absl::OkStatus();
  SiteIndex largest = site;
  if (site == kNoIndex) {
    for (SiteIndex i = 0; i < s.sites.size(); ++i) {
      if (largest == kNoIndex || ts.site_capacity[i] > ts.site_capacity[largest]) largest = i;
    }
  }
  if (largest == kNoIndex || request.count <= ts.site_capacity[largest]) return absl::OkStatus();
  const int64_t spares = ts.site_total[largest] - ts.site_capacity[largest];
  return absl::InvalidArgumentError(absl::StrCat(
      "infeasible: ", request.count, " ", s.TypeName(type), " machines requested, but a batch "
      "never spans sites and ",
      site == kNoIndex ? "the largest site, " : "site ", s.sites[largest],
      site == kNoIndex ? "," : "", " has only ", ts.site_capacity[largest],
      " machines of that type to place",
      spares > 0 ? absl::StrCat(" (", ts.site_total[largest], " less ", spares,
                                " spare trays kept for ReplaceInstance)")
                 : std::string(),
      "; ask for at most ", ts.site_capacity[largest]));
}

// Machines a segmented batch could take in one site now: segment for each domain of the site
// outside `excluded` with a segment free. Error path only: O(domains).
int64_t SegmentedRoomInSite(const FleetState& s, TypeIndex type, int segment,
                            absl::Span<const DomainIndex> excluded, SiteIndex site) {
  int64_t room = 0;
  for (DomainIndex d = 0; d < s.domains.size(); ++d) {
    if (s.domains[d].site != site || ListsDomain(excluded, d)) continue;
    if (s.cell(type, d).Placeable() >= segment) room += segment;
  }
  return room;
}

// A cross-domain batch (with or without segments) in one site: the named one, or, when the
// fleet's machines of the type are in more than one site, the site that fits it most tightly
// (fewest free machines outside `excluded` that still hold count, ties by site index), then
// the next, until one takes it. All sites refusing is RESOURCE_EXHAUSTED naming the most one
// site could take. Cost: the policy's, plus O(sites * excluded) to order the sites (no
// allocation up to 8 sites).
absl::Status PlaceCrossDomainInOneSite(const FleetState& s, TypeIndex type,
                                       const BatchRequest& request, SiteIndex site,
                                       absl::Span<const DomainIndex> excluded,
                                       absl::Span<const PartitionIndex> partitions,
                                       Placement* out) {
  auto place = [&](SiteIndex in) {
    return request.segment_size > 0
               ? PlaceSegmented(s, type, request.count, request.segment_size, excluded,
                                FindAffinityDomains(s, partitions), out, in)
               : PlaceCrossDomain(s, type, request.count, request.spread_policy, excluded, out,
                                  in);
  };
  const TypeState& ts = s.type_states[type];
  if (site != kNoIndex) return place(site);
  int sites_with_type = 0;
  for (SiteIndex i = 0; i < s.sites.size() && sites_with_type < 2; ++i) {
    if (ts.site_total[i] > 0) ++sites_with_type;
  }
  // All the type's machines in one site: the policy answers alone, on its exact path.
  if (sites_with_type <= 1) return place(kNoIndex);
  absl::InlinedVector<std::pair<int64_t, SiteIndex>, 8> candidates;
  int64_t most_in_one_site = 0;
  SiteIndex most_site = kNoIndex;
  for (SiteIndex i = 0; i < s.sites.size(); ++i) {
    if (ts.site_total[i] == 0) continue;
    int64_t free = FreeMachinesOutside(s, type, excluded, i);
    if (free >= request.count) candidates.emplace_back(free, i);
    int64_t room = request.segment_size > 0
                       ? SegmentedRoomInSite(s, type, request.segment_size, excluded, i)
                       : free;
    if (most_site == kNoIndex || room > most_in_one_site) {
      most_in_one_site = room;
      most_site = i;
    }
  }
  std::sort(candidates.begin(), candidates.end());
  absl::Status refused = absl::OkStatus();
  for (const auto& [free, candidate] : candidates) {
    refused = place(candidate);
    if (refused.ok()) return refused;
  }
  const int64_t total = FreeMachinesOutside(s, type, excluded, kNoIndex);
  CapacityShortfall shortfall{s.types[type].spec.id, CapacityUnit::kMachines, request.count,
                              ts.best_fit.LargestFree(excluded), total};
  return CapacityExhaustedError(
      absl::StrCat("not enough free capacity now in any one site: ", request.count, " ",
                   s.TypeName(type), " machines requested across NVLink domains",
                   request.segment_size > 0
                       ? absl::StrCat(" in segments of ", request.segment_size)
                       : std::string(),
                   ", but a batch never spans sites and the most one site can take now is ",
                   most_in_one_site, " (site ", s.sites[most_site], "; ", total,
                   " free in all sites); retry later, ask for at most ", most_in_one_site,
                   ", or name a site_id"),
      shortfall);
}

// A strict batch that fits some domain's size but no domain's size less its spare trays.
// Error path: O(domains) to name the domain the batch came closest to.
absl::Status SpareTraysInfeasible(const FleetState& s, TypeIndex type, int count) {
  const TypeState& ts = s.type_states[type];
  DomainIndex best = kNoIndex;
  for (DomainIndex d = 0; d < s.domains.size(); ++d) {
    const DomainCell& cell = ts.cells[d];
    if (cell.total == 0) continue;
    if (best == kNoIndex || cell.Capacity() > ts.cells[best].Capacity()) best = d;
  }
  const DomainCell& cell = ts.cells[best];  // exists: count <= LargestDomain()
  return absl::InvalidArgumentError(absl::StrCat(
      "infeasible: a topology-optimized batch of ", count, " ", s.TypeName(type),
      " machines can never be placed in one NVLink domain: at most ", cell.Capacity(),
      " of a domain's ", cell.total, " machines can be placed (NVLink domain ",
      s.DomainName(best), "): ", cell.spares,
      cell.spares == 1 ? " is a spare tray" : " are spare trays",
      " kept for ReplaceInstance; ask for at most ", ts.LargestCapacity(),
      ", or set topology_optimized=false to spread over domains"));
}

absl::Status UnknownType(std::string_view id) {
  return absl::NotFoundError(absl::StrCat(
      "instance type \"", AbslView(id), "\" is not known; list instance types for valid ids"));
}

}  // namespace

// Each Plan* builds its result in place and returns that one named object, so the Placement
// (18 instances stored inline, ~900 bytes) is neither zeroed nor copied on the way out.
absl::StatusOr<Placement> Allocator::PlanBatch(const BatchRequest& request) const {
  return PlanBatch(request, PlanConstraints{});
}

absl::StatusOr<Placement> Allocator::PlanSingle(const SingleRequest& request) const {
  return PlanSingle(request, PlanConstraints{});
}

absl::StatusOr<Placement> Allocator::PlanBatch(const BatchRequest& request,
                                               const PlanConstraints& constraints) const {
  absl::StatusOr<Placement> result(absl::in_place);
  if (absl::Status status = PlanBatchInto(request, constraints, &*result); !status.ok()) {
    result = status;
  }
  return result;
}

absl::StatusOr<Placement> Allocator::PlanSingle(const SingleRequest& request,
                                                const PlanConstraints& constraints) const {
  absl::StatusOr<Placement> result(absl::in_place);
  if (absl::Status status = PlanSingleInto(request, constraints, &*result); !status.ok()) {
    result = status;
  }
  return result;
}

absl::StatusOr<ReleasePlan> Allocator::PlanRelease(absl::Span<const InstanceHandle> instances,
                                                   bool machine_health_issue, bool clean) const {
  absl::StatusOr<ReleasePlan> result(absl::in_place);
  if (absl::Status status = PlanReleaseInto(instances, machine_health_issue, clean, &*result);
      !status.ok()) {
    result = status;
  }
  return result;
}

absl::Status Allocator::PlanBatchInto(const BatchRequest& request,
                                      const PlanConstraints& constraints, Placement* out) const {
  const FleetState& s = *state_;
  if (request.count < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("count must be at least 1 (got ", request.count, ")"));
  }
  TenantIndex tenant = s.FindTenant(request.tenant_id);
  if (tenant == kNoIndex) return UnknownTenant(request.tenant_id);
  TypeIndex type = s.FindType(request.instance_type_id);
  if (type == kNoIndex) return UnknownType(request.instance_type_id);
  const TypeState& ts = s.type_states[type];
  if (request.topology_optimized && request.count > ts.LargestDomain()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "infeasible: a topology-optimized batch of ", request.count, " ", s.TypeName(type),
        " machines can never fit in one NVLink domain: the largest domain for that type has ",
        ts.LargestDomain(), " machines; ask for at most ", ts.LargestDomain(),
        ", or set topology_optimized=false to spread over domains"));
  }
  if (request.topology_optimized && request.count > ts.LargestCapacity()) {
    return SpareTraysInfeasible(s, type, request.count);
  }
  if (request.segment_size < 0 || (request.segment_size > 0 && request.topology_optimized)) {
    return absl::InvalidArgumentError(
        "segment_size must be 0, or positive with topology_optimized=false");
  }
  if (request.segment_size > 0) {
    if (request.count % request.segment_size != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "count ", request.count, " is not a multiple of segment_size ", request.segment_size,
          ": every domain the batch uses gets exactly segment_size machines"));
    }
    int64_t big_enough = 0;  // domains that could ever hold a segment
    for (int n = request.segment_size; n <= kMaxMachinesPerDomain; ++n) {
      big_enough += ts.domains_by_capacity[n];  // size less spare trays
    }
    if (big_enough < request.count / request.segment_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "infeasible: ", request.count / request.segment_size, " segments of ",
          request.segment_size, " ", s.TypeName(type), " machines need as many NVLink domains "
          "with at least ", request.segment_size, " machines to place (besides their spare "
          "trays); the fleet has ", big_enough,
          "; ask for fewer segments or a smaller segment_size"));
    }
  }
  if (!request.topology_optimized && request.count > ts.total_machines) {
    return absl::InvalidArgumentError(absl::StrCat(
        "infeasible: ", request.count, " ", s.TypeName(type), " machines requested but the fleet has only ",
        ts.total_machines, " machines of that type; ask for at most ", ts.total_machines));
  }
  if (!request.topology_optimized && request.count > ts.capacity_machines) {
    return absl::InvalidArgumentError(absl::StrCat(
        "infeasible: ", request.count, " ", s.TypeName(type), " machines requested but only ",
        ts.capacity_machines, " of the fleet's ", ts.total_machines,
        " machines of that type can be placed: ", ts.total_machines - ts.capacity_machines,
        " are spare trays kept for ReplaceInstance; ask for at most ", ts.capacity_machines));
  }
  absl::StatusOr<SiteIndex> site = SiteOf(s, request.site_id);
  if (!site.ok()) return site.status();
  if (absl::Status status = CheckSiteFeasible(s, type, request, *site); !status.ok()) {
    return status;
  }
  int64_t requested_gpus = int64_t{request.count} * s.types[type].spec.gpus_per_machine;
  if (absl::Status quota =
          CheckQuota(tenant, type, requested_gpus, constraints.committed_quota_gpus);
      !quota.ok()) {
    return quota;
  }
  if (*site != kNoIndex && !SiteQuotaAllows(s, tenant, type, *site, requested_gpus)) {
    return SiteQuotaError(s, tenant, type, *site, requested_gpus, /*named=*/true);
  }
  absl::InlinedVector<PartitionIndex, 4> partitions;
  if (absl::Status status = ResolvePartitions(request.nvlink_partition_ids, &partitions);
      !status.ok()) {
    return status;
  }

  Placement& placement = *out;
  placement.tenant = tenant;
  placement.type = type;
  placement.topology_optimized = request.topology_optimized;
  placement.planned_at = version_;
  // Strict batches never go to a DEGRADED domain: they are excluded like reserved ones.
  absl::InlinedVector<DomainIndex, 8> excluded;
  absl::Span<const DomainIndex> strict_excluded = constraints.excluded_domains;
  if (request.topology_optimized && !s.degraded_domains.empty()) {
    excluded.assign(constraints.excluded_domains.begin(), constraints.excluded_domains.end());
    excluded.insert(excluded.end(), s.degraded_domains.begin(), s.degraded_domains.end());
    strict_excluded = excluded;
  }
  auto place = [&](SiteIndex in) {
    return request.topology_optimized
               ? PlaceStrictBatch(s, type, request.count,
                                  PlacementScope{in, partitions, strict_excluded,
                                                 constraints.pinned_domain},
                                  &placement)
               : PlaceCrossDomainInOneSite(s, type, request, in, constraints.excluded_domains,
                                           partitions, &placement);
  };
  absl::Status placed =
      PlaceWithinSiteQuota(s, tenant, type, requested_gpus, *site, &placement, place);
  if (!placed.ok()) return placed;
  placement.nvlink_partition_ids = request.nvlink_partition_ids;
  placement.spot = request.spot;
  return absl::OkStatus();
}

absl::Status Allocator::PlanSingleInto(const SingleRequest& request,
                                       const PlanConstraints& constraints, Placement* out) const {
  const FleetState& s = *state_;
  if (request.gpu_count < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gpu_count must be 0 (whole machine) or a positive GPU count (got ", request.gpu_count, ")"));
  }
  TenantIndex tenant = s.FindTenant(request.tenant_id);
  if (tenant == kNoIndex) return UnknownTenant(request.tenant_id);
  TypeIndex type = s.FindType(request.instance_type_id);
  if (type == kNoIndex) return UnknownType(request.instance_type_id);
  const InstanceType& spec = s.types[type].spec;
  if (request.gpu_count > spec.gpus_per_machine) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gpu_count ", request.gpu_count, " is more than the ", spec.gpus_per_machine,
        " GPUs a ", s.TypeName(type), " machine has; ask for 1..", spec.gpus_per_machine,
        " GPUs, or 0 for a whole machine"));
  }
  absl::StatusOr<SiteIndex> site = SiteOf(s, request.site_id);
  if (!site.ok()) return site.status();
  if (s.type_states[type].total_machines == 0) return NoMachinesOfType(s, type);
  bool whole = request.gpu_count == 0;
  int64_t requested_gpus = whole ? spec.gpus_per_machine : request.gpu_count;
  if (absl::Status quota =
          CheckQuota(tenant, type, requested_gpus, constraints.committed_quota_gpus);
      !quota.ok()) {
    return quota;
  }
  if (*site != kNoIndex && !SiteQuotaAllows(s, tenant, type, *site, requested_gpus)) {
    return SiteQuotaError(s, tenant, type, *site, requested_gpus, /*named=*/true);
  }
  absl::InlinedVector<PartitionIndex, 4> partitions;
  if (absl::Status status = ResolvePartitions(request.nvlink_partition_ids, &partitions);
      !status.ok()) {
    return status;
  }

  Placement& placement = *out;
  placement.tenant = tenant;
  placement.type = type;
  placement.topology_optimized = true;
  placement.planned_at = version_;
  auto place = [&](SiteIndex in) {
    PlacementScope scope{in, partitions, constraints.excluded_domains, constraints.pinned_domain};
    return whole ? PlaceStrictBatch(s, type, 1, scope, &placement)
                 : PlaceGpuGranular(s, type, request.gpu_count, scope, &placement);
  };
  absl::Status placed =
      PlaceWithinSiteQuota(s, tenant, type, requested_gpus, *site, &placement, place);
  if (!placed.ok()) return placed;
  placement.nvlink_partition_ids = request.nvlink_partition_ids;
  placement.spot = request.spot;
  return absl::OkStatus();
}

void Allocator::Apply(const Placement& placement, std::string_view batch_id,
                      absl::Span<InstanceHandle> handles) {
  FleetState& s = *state_;
  assert(placement.planned_at == version_ && "placement planned against an older state");
  assert(handles.size() == placement.size());
  ++version_;
  absl::InlinedVector<PartitionIndex, 4> partitions;
  for (const std::string& id : placement.nvlink_partition_ids) {
    partitions.push_back(s.InternPartition(id));
  }
  std::sort(partitions.begin(), partitions.end());
  partitions.erase(std::unique(partitions.begin(), partitions.end()), partitions.end());

  UndoJournal& journal = *journal_;
  BatchIndex batch = kNoIndex;
  if (!batch_id.empty()) {
    batch = s.AddBatch(batch_id);
    journal.Push(UndoKind::kBatchAdded, batch);
  }
  // AttachClaim for each instance, with its cell updates collected per domain (one
  // FlushRun + SyncCell per domain) and its counts (quota usage, the batch's and the
  // fleet's live claims) summed once: every instance has the placement's tenant and type.
  // The placement's fields are read into locals first: the stores into claim records could
  // alias them, so the compiler would otherwise reload them for every instance.
  const TenantIndex tenant = placement.tenant;
  const TypeIndex type = placement.type;
  const bool topology_optimized = placement.topology_optimized;
  const bool spot = placement.spot;
  const int64_t started_micros = placement.started_micros;
  const bool has_partitions = !partitions.empty();
  const size_t n = placement.size();
  const PlacedInstance* instances = placement.instances.data();
  UndoRecord* undo = journal.Append(n);
  InstanceHandle* handle = handles.data();
  FreeMachineRun run(/*taking=*/true);
  DomainIndex pending = kNoIndex;
  int64_t gpus = 0;
  int64_t gpus_counted = 0;  // of `gpus`, those already counted in their site's usage
  for (size_t i = 0; i < n; ++i) {
    const PlacedInstance& placed = instances[i];
    if (placed.domain != pending) {
      if (pending != kNoIndex) {
        s.FlushRun(&run);
        s.SyncCell(type, pending);
        s.CountSiteUsage(tenant, type, s.domains[pending].site, gpus - gpus_counted);
        gpus_counted = gpus;
      }
      pending = placed.domain;
    }
    ClaimIndex c = s.AllocateClaim();
    ClaimRecord& claim = s.claims[c];
    claim.batch = batch;
    claim.tenant = tenant;
    claim.type = type;
    claim.machine = placed.machine;
    claim.gpu_count = placed.gpu_count;
    claim.whole_machine = placed.whole_machine;
    claim.topology_optimized = topology_optimized;
    claim.spot = spot;
    claim.preempted = false;
    claim.started_micros = started_micros;
    claim.live = true;
    s.HoldMachine(c, claim, s.machines[placed.machine], &run);
    if (batch != kNoIndex) s.LinkToBatch(c, claim);
    if (has_partitions || !claim.partitions.empty()) {
      claim.partitions.assign(partitions.begin(), partitions.end());
      if (has_partitions) s.CountPartitions(claim, placed.domain, +1);
    }
    gpus += placed.gpu_count;
    undo[i].kind = UndoKind::kClaimAdded;
    undo[i].index = c;
    handle[i] = InstanceHandle{c, claim.generation};
  }
  if (pending != kNoIndex) {
    s.FlushRun(&run);
    s.SyncCell(type, pending);
    s.CountSiteUsage(tenant, type, s.domains[pending].site, gpus - gpus_counted);
  }
  s.CountClaims(tenant, type, batch, static_cast<int32_t>(n), gpus);
}

absl::Status Allocator::PlanReleaseInto(absl::Span<const InstanceHandle> instances,
                                        bool machine_health_issue, bool clean,
                                        ReleasePlan* out) const {
  const FleetState& s = *state_;
  ReleasePlan& plan = *out;
  plan.machine_health_issue = machine_health_issue;
  plan.clean = clean;
  plan.planned_at = version_;
  plan.claims.resize(instances.size());  // inline up to kInlineBatch: no allocation
  ClaimIndex* claims = plan.claims.data();
  // Duplicates, without allocating for short lists (every batch): a 64-bit filter on the
  // slot says "certainly not seen" for almost every handle, and only a possible repeat is
  // confirmed by scanning the claims so far. Long lists use a hash set.
  constexpr size_t kScanLimit = 64;
  uint64_t filter = 0;
  absl::flat_hash_set<ClaimIndex> seen;
  for (size_t i = 0; i < instances.size(); ++i) {
    ClaimIndex c = s.FindClaim(instances[i]);
    if (c == kNoIndex) {
      return absl::NotFoundError(absl::StrCat(
          "instance \"", s.InstanceName(instances[i]),
          "\" is not known (never created, or already deleted); nothing was released"));
    }
    bool duplicate;
    if (instances.size() <= kScanLimit) {
      uint64_t bit = uint64_t{1} << (c & 63);
      duplicate = (filter & bit) != 0 && std::find(claims, claims + i, c) != claims + i;
      filter |= bit;
    } else {
      duplicate = !seen.insert(c).second;
    }
    if (duplicate) {
      return absl::InvalidArgumentError(absl::StrCat(
          "instance \"", s.InstanceName(c), "\" is listed twice; list each instance once"));
    }
    claims[i] = c;
  }
  return absl::OkStatus();
}

void Allocator::Apply(const ReleasePlan& plan) {
  assert(plan.planned_at == version_ && "release planned against an older state");
  ++version_;
  ReleaseClaims(plan.claims, plan.machine_health_issue, plan.clean);
}

// DetachClaim for each claim, with cell updates collected per (type, domain) run of claims
// as in Apply (a health issue changes each machine in place, so it flushes first).
void Allocator::ReleaseClaims(absl::Span<const ClaimIndex> claims, bool machine_health_issue,
                              bool clean) {
  FleetState& s = *state_;
  UndoJournal& journal = *journal_;
  FreeMachineRun run(/*taking=*/false);
  DomainIndex pending_domain = kNoIndex;
  TypeIndex pending_type = kNoIndex;
  for (ClaimIndex c : claims) {
    ClaimRecord& claim = s.claims[c];
    MachineIndex m = claim.machine;
    MachineRecord& machine = s.machines[m];
    if (machine.domain != pending_domain || machine.type != pending_type) {
      if (pending_domain != kNoIndex) {
        s.FlushRun(&run);
        s.SyncCell(pending_type, pending_domain);
      }
      pending_domain = machine.domain;
      pending_type = machine.type;
    }
    s.UnholdMachine(c, claim, machine, &run);
    if (claim.batch != kNoIndex) s.UnlinkFromBatch(claim);
    int32_t batch_left = s.CountClaims(claim.tenant, claim.type, claim.batch, -1, -claim.gpu_count);
    s.CountSiteUsage(claim.tenant, claim.type, s.domains[machine.domain].site, -claim.gpu_count);
    if (!claim.partitions.empty()) s.CountPartitions(claim, machine.domain, -1);
    claim.live = false;
    s.claim_slots.Release(c);
    journal.Push(UndoKind::kClaimReleased, c);
    // Its last instance gone, the batch ends too. Journaled after the claim, so undo
    // revives the batch before re-attaching the claim.
    if (batch_left == 0) {
      s.batches[claim.batch].live = false;
      s.batch_slots.Release(claim.batch);
      journal.Push(UndoKind::kBatchReleased, claim.batch);
    }
    const bool drain = machine_health_issue && machine.spec.state != MachineState::kMaintenance;
    // Its last instance left: nobody gets it before the control plane has wiped it, whatever
    // state it is in (a machine drained while held must not go back to READY unwiped).
    const bool wipe = clean && !machine.held() && !machine.spec.wipe_pending;
    if (drain || wipe) {
      s.FlushRun(&run);
      journal.Save(machine.spec);
      journal.Push(UndoKind::kMachineChanged, m);
      s.RemoveContribution(m);
      if (drain) {
        machine.spec.state = MachineState::kMaintenance;
        machine.spec.state_reason = absl::StrCat("health issue reported when instance ",
                                                 s.InstanceName(c), " was released");
      } else if (machine.spec.state == MachineState::kReady) {
        machine.spec.state = MachineState::kCleaning;
        machine.spec.state_reason = absl::StrCat("cleaning: instance ", s.InstanceName(c),
                                                 " was released; CompleteCleaning when wiped");
      }
      if (wipe) machine.spec.wipe_pending = true;
      s.AddContribution(m);
    }
  }
  if (pending_domain != kNoIndex) {
    s.FlushRun(&run);
    s.SyncCell(pending_type, pending_domain);
  }
}

// ---- Preemption ----

absl::Status Allocator::PlanPreemptionInto(TenantIndex tenant, TypeIndex type, int k, bool spot,
                                           int64_t requested_gpus, const PlacementScope& scope,
                                           const PlanConstraints& constraints,
                                           int64_t now_micros, PreemptionPlan* out) const {
  if (spot) {
    return absl::FailedPreconditionError(
        "a spot request never preempts: it waits or fails like any other");
  }
  if (absl::Status quota = CheckQuota(tenant, type, requested_gpus, constraints.committed_quota_gpus);
      !quota.ok()) {
    return quota;
  }
  const FleetState& s = *state_;
  if (scope.site != kNoIndex && !SiteQuotaAllows(s, tenant, type, scope.site, requested_gpus)) {
    return SiteQuotaError(s, tenant, type, scope.site, requested_gpus, /*named=*/true);
  }
  out->planned_at = version_;
  absl::Status planned = PlanPreemptionInDomain(s, type, k, tenant, scope, now_micros, out);
  if (planned.ok() && scope.site == kNoIndex) {
    // The site the victims leave must take the request under the tenant's per-site quota.
    const SiteIndex site = s.domains[out->domain].site;
    if (!SiteQuotaAllows(s, tenant, type, site, requested_gpus)) {
      return SiteQuotaError(s, tenant, type, site, requested_gpus, /*named=*/false);
    }
  }
  return planned;
}

absl::StatusOr<PreemptionPlan> Allocator::PlanPreemption(const BatchRequest& request,
                                                         const PlanConstraints& constraints,
                                                         int64_t now_micros) const {
  const FleetState& s = *state_;
  TenantIndex tenant = s.FindTenant(request.tenant_id);
  if (tenant == kNoIndex) return UnknownTenant(request.tenant_id);
  TypeIndex type = s.FindType(request.instance_type_id);
  if (type == kNoIndex) return UnknownType(request.instance_type_id);
  if (!request.topology_optimized) {
    return absl::FailedPreconditionError(
        "a cross-domain batch (topology_optimized=false) does not preempt: it waits or fails");
  }
  if (request.count < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("count must be at least 1 (got ", request.count, ")"));
  }
  if (request.count > s.type_states[type].LargestDomain()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a topology-optimized batch of ", request.count, " ", s.TypeName(type),
        " machines can never fit in one NVLink domain (the largest has ",
        s.type_states[type].LargestDomain(), ")"));
  }
  if (request.count > s.type_states[type].LargestCapacity()) {
    return SpareTraysInfeasible(s, type, request.count);
  }
  absl::InlinedVector<PartitionIndex, 4> partitions;
  if (absl::Status status = ResolvePartitions(request.nvlink_partition_ids, &partitions);
      !status.ok()) {
    return status;
  }
  absl::StatusOr<SiteIndex> site = SiteOf(s, request.site_id);
  if (!site.ok()) return site.status();
  absl::InlinedVector<DomainIndex, 8> excluded(constraints.excluded_domains.begin(),
                                               constraints.excluded_domains.end());
  excluded.insert(excluded.end(), s.degraded_domains.begin(), s.degraded_domains.end());
  absl::StatusOr<PreemptionPlan> result(absl::in_place);
  if (absl::Status status = PlanPreemptionInto(
          tenant, type, request.count, request.spot,
          int64_t{request.count} * s.types[type].spec.gpus_per_machine,
          PlacementScope{*site, partitions, excluded}, constraints, now_micros, &*result);
      !status.ok()) {
    result = status;
  }
  return result;
}

absl::StatusOr<PreemptionPlan> Allocator::PlanPreemption(const SingleRequest& request,
                                                         const PlanConstraints& constraints,
                                                         int64_t now_micros) const {
  const FleetState& s = *state_;
  TenantIndex tenant = s.FindTenant(request.tenant_id);
  if (tenant == kNoIndex) return UnknownTenant(request.tenant_id);
  TypeIndex type = s.FindType(request.instance_type_id);
  if (type == kNoIndex) return UnknownType(request.instance_type_id);
  const InstanceType& spec = s.types[type].spec;
  if (request.gpu_count < 0 || request.gpu_count > spec.gpus_per_machine) {
    return absl::InvalidArgumentError(absl::StrCat("gpu_count must be 0..", spec.gpus_per_machine,
                                                   " (got ", request.gpu_count, ")"));
  }
  absl::StatusOr<SiteIndex> site = SiteOf(s, request.site_id);
  if (!site.ok()) return site.status();
  if (s.type_states[type].total_machines == 0) return NoMachinesOfType(s, type);
  absl::InlinedVector<PartitionIndex, 4> partitions;
  if (absl::Status status = ResolvePartitions(request.nvlink_partition_ids, &partitions);
      !status.ok()) {
    return status;
  }
  absl::StatusOr<PreemptionPlan> result(absl::in_place);
  const int64_t gpus = request.gpu_count == 0 ? spec.gpus_per_machine : request.gpu_count;
  if (absl::Status status = PlanPreemptionInto(
          tenant, type, 1, request.spot, gpus,
          PlacementScope{*site, partitions, constraints.excluded_domains}, constraints, now_micros,
          &*result);
      !status.ok()) {
    result = status;
  }
  return result;
}

void Allocator::MarkPreempted(const PreemptionPlan& plan) {
  FleetState& s = *state_;
  assert(plan.planned_at == version_ && "preemption planned against an older state");
  ++version_;
  for (InstanceHandle handle : plan.victims) {
    ClaimIndex c = s.FindClaim(handle);
    assert(c != kNoIndex && s.claims[c].spot && !s.claims[c].preempted);
    s.SetPreempted(c, true);
    journal_->Push(UndoKind::kClaimPreempted, c);
    const MachineRecord& machine = s.machines[s.claims[c].machine];
    s.SyncCell(machine.type, machine.domain);
  }
}

int64_t Allocator::ReclaimableMachines(TypeIndex t) const {
  return t < state_->type_states.size() ? state_->type_states[t].reclaimable_machines : 0;
}

int Allocator::DomainReclaimableMachines(TypeIndex t, DomainIndex d) const {
  if (t >= state_->type_states.size() || d >= state_->domains.size()) return 0;
  return state_->cell(t, d).reclaimable;
}

// ---- Replacement ----

absl::StatusOr<ReplacePlan> Allocator::PlanReplace(InstanceHandle instance,
                                                   bool machine_health_issue, bool clean) const {
  const FleetState& s = *state_;
  const ClaimIndex c = s.FindClaim(instance);
  if (c == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("instance \"", s.InstanceName(instance),
                                            "\" is not known (never created, or already deleted)"));
  }
  const ClaimRecord& claim = s.claims[c];
  const MachineRecord& from = s.machines[claim.machine];
  const DomainRecord& domain = s.domains[from.domain];
  MachineIndex best = kNoIndex;
  int32_t best_free = 0;
  for (MachineIndex m : domain.machines_by_tray) {
    if (m == claim.machine) continue;
    const MachineRecord& rec = s.machines[m];
    if (rec.type != claim.type) continue;
    if (claim.whole_machine) {
      // The same GPU count: the claim (and the tenant's quota usage) keeps its GPUs.
      if (rec.free_whole() && rec.spec.gpu_count == claim.gpu_count) {
        best = m;  // lowest tray
        break;
      }
      continue;
    }
    const int32_t free = rec.free_gpus();
    if (free >= claim.gpu_count && (best == kNoIndex || free < best_free)) {
      best = m;
      best_free = free;
    }
  }
  if (best == kNoIndex) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no healthy ", s.TypeName(claim.type), " machine in NVLink domain ",
        s.DomainName(from.domain), " can take instance ", s.InstanceName(c), " (it needs ",
        claim.whole_machine ? "a whole free machine" : absl::StrCat(claim.gpu_count, " free GPUs"),
        "); an instance is only replaced inside its own domain. Nothing was changed; free a "
        "machine there, or delete and create it again elsewhere"));
  }
  ReplacePlan plan;
  plan.claim = c;
  plan.from = claim.machine;
  plan.to = best;
  plan.machine_health_issue = machine_health_issue;
  plan.clean = clean;
  plan.planned_at = version_;
  return plan;
}

void Allocator::Apply(const ReplacePlan& plan) {
  FleetState& s = *state_;
  assert(plan.planned_at == version_ && "replacement planned against an older state");
  ++version_;
  const ClaimIndex c = plan.claim;
  const TypeIndex type = s.claims[c].type;
  const DomainIndex domain = s.machines[plan.from].domain;
  s.DetachClaim(c);
  s.claims[c].machine = plan.to;
  s.AttachClaim(c);
  journal_->SaveMachineIndex(plan.from);
  journal_->Push(UndoKind::kClaimMoved, c);
  MachineRecord& old = s.machines[plan.from];
  // As in ReleaseClaims: left unheld with `clean`, it waits for a wipe in any state.
  const bool wipe = plan.clean && !old.held() && !old.spec.wipe_pending;
  if (plan.machine_health_issue || wipe) {
    journal_->Save(old.spec);
    journal_->Push(UndoKind::kMachineChanged, plan.from);
    s.RemoveContribution(plan.from);
    if (plan.machine_health_issue) {
      old.spec.state = MachineState::kMaintenance;
      old.spec.state_reason = absl::StrCat("health issue reported; instance ", s.InstanceName(c),
                                           " was moved to machine ", s.machines[plan.to].spec.id);
    } else if (old.spec.state == MachineState::kReady) {
      old.spec.state = MachineState::kCleaning;
      old.spec.state_reason = absl::StrCat("cleaning: instance ", s.InstanceName(c),
                                           " was moved off it; CompleteCleaning when wiped");
    }
    if (wipe) old.spec.wipe_pending = true;
    s.AddContribution(plan.from);
  }
  s.SyncCell(type, domain);
}

}  // namespace nvlsched::allocator
