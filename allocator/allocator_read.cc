// Allocator: the read side for the API (lookups, iteration in index order, capacity) and
// the planning queries of a queue over it (by dense index, allocation-free).
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "allocator/string_view_compat.h"
#include "allocator/allocator.h"
#include "allocator/fleet_state.h"
#include "allocator/gpu_granular_policy.h"

namespace nvlsched::allocator {
namespace {

InstanceClaim ToClaim(const FleetState& s, const ClaimRecord& record) {
  InstanceClaim claim;
  claim.tenant_id = s.tenants[record.tenant].spec.id;
  claim.instance_type_id = s.types[record.type].spec.id;
  claim.machine_id = s.machines[record.machine].spec.id;
  claim.gpu_count = record.gpu_count;
  claim.whole_machine = record.whole_machine;
  if (record.batch != kNoIndex) claim.batch_id = s.batches[record.batch].id;
  for (PartitionIndex p : record.partitions) claim.nvlink_partition_ids.push_back(s.partitions[p].id);
  claim.topology_optimized = record.topology_optimized;
  claim.spot = record.spot;
  claim.preempted = record.preempted;
  claim.started_micros = record.started_micros;
  return claim;
}

absl::Status UnknownType(std::string_view id) {
  return absl::NotFoundError(absl::StrCat("instance type \"", AbslView(id), "\" is not known"));
}

}  // namespace

const InstanceType* Allocator::FindInstanceType(std::string_view id) const {
  TypeIndex t = state_->FindType(id);
  return t == kNoIndex ? nullptr : &state_->types[t].spec;
}

const Domain* Allocator::FindDomain(std::string_view id) const {
  DomainIndex d = state_->FindDomain(id);
  return d == kNoIndex ? nullptr : &state_->domains[d].spec;
}

const Machine* Allocator::FindMachine(std::string_view id) const {
  MachineIndex m = state_->FindMachine(id);
  return m == kNoIndex ? nullptr : &state_->machines[m].spec;
}

const Tenant* Allocator::FindTenant(std::string_view id) const {
  TenantIndex t = state_->FindTenant(id);
  return t == kNoIndex ? nullptr : &state_->tenants[t].spec;
}

std::optional<InstanceClaim> Allocator::FindInstance(InstanceHandle instance) const {
  ClaimIndex c = state_->FindClaim(instance);
  if (c == kNoIndex) return std::nullopt;
  return ToClaim(*state_, state_->claims[c]);
}

absl::StatusOr<int64_t> Allocator::QuotaUsageGpus(std::string_view tenant_id,
                                                  std::string_view instance_type_id) const {
  TenantIndex tenant = state_->FindTenant(tenant_id);
  if (tenant == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("tenant \"", AbslView(tenant_id), "\" is not known"));
  }
  TypeIndex type = state_->FindType(instance_type_id);
  if (type == kNoIndex) return UnknownType(instance_type_id);
  return state_->tenants[tenant].used_gpus[type];
}

absl::StatusOr<int64_t> Allocator::SiteQuotaUsageGpus(std::string_view tenant_id,
                                                      std::string_view instance_type_id,
                                                      std::string_view site_id) const {
  absl::StatusOr<int64_t> fleet = QuotaUsageGpus(tenant_id, instance_type_id);
  if (!fleet.ok()) return fleet.status();
  SiteIndex site = state_->FindSite(site_id);
  if (site == kNoIndex) return 0;
  return state_->tenants[state_->FindTenant(tenant_id)]
      .site_used_gpus[state_->FindType(instance_type_id)][site];
}

void Allocator::ForEachInstanceType(absl::FunctionRef<void(const InstanceType&)> fn) const {
  for (const TypeRecord& record : state_->types) fn(record.spec);
}

void Allocator::ForEachDomain(absl::FunctionRef<void(const Domain&)> fn) const {
  for (const DomainRecord& record : state_->domains) fn(record.spec);
}

void Allocator::ForEachMachine(absl::FunctionRef<void(const Machine&)> fn) const {
  for (const MachineRecord& record : state_->machines) {
    if (record.live) fn(record.spec);
  }
}

void Allocator::ForEachTenant(absl::FunctionRef<void(const Tenant&)> fn) const {
  for (const TenantRecord& record : state_->tenants) fn(record.spec);
}

void Allocator::ForEachInstance(
    absl::FunctionRef<void(InstanceHandle, const InstanceClaim&)> fn) const {
  const FleetState& s = *state_;
  for (ClaimIndex c = 0; c < s.claims.size(); ++c) {
    if (s.claims[c].live) fn(s.HandleOf(c), ToClaim(s, s.claims[c]));
  }
}

size_t Allocator::machine_count() const { return static_cast<size_t>(state_->live_machines); }
const Machine& Allocator::MachineAt(MachineIndex machine) const {
  return state_->machines[machine].spec;
}
const Domain& Allocator::DomainAt(DomainIndex domain) const { return state_->domains[domain].spec; }

size_t Allocator::instance_count() const { return static_cast<size_t>(state_->live_claims); }

absl::StatusOr<CapacityView> Allocator::Capacity(std::string_view instance_type_id) const {
  TypeIndex t = state_->FindType(instance_type_id);
  if (t == kNoIndex) return UnknownType(instance_type_id);
  return ComputeCapacityView(*state_, t);
}

absl::StatusOr<DomainCapacity> Allocator::GetDomainCapacity(
    std::string_view domain_id, std::string_view instance_type_id) const {
  DomainIndex d = state_->FindDomain(domain_id);
  if (d == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("domain \"", AbslView(domain_id), "\" is not known"));
  }
  TypeIndex t = state_->FindType(instance_type_id);
  if (t == kNoIndex) return UnknownType(instance_type_id);
  return ComputeDomainCapacity(*state_, t, d);
}

absl::Status Allocator::ForEachDomainCapacity(
    std::string_view instance_type_id, absl::FunctionRef<void(const DomainCapacity&)> fn) const {
  TypeIndex t = state_->FindType(instance_type_id);
  if (t == kNoIndex) return UnknownType(instance_type_id);
  for (DomainIndex d = 0; d < state_->domains.size(); ++d) {
    if (state_->cell(t, d).total > 0) fn(ComputeDomainCapacity(*state_, t, d));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- Planning queries

TypeIndex Allocator::TypeIndexOf(std::string_view instance_type_id) const {
  return state_->FindType(instance_type_id);
}

TenantIndex Allocator::TenantIndexOf(std::string_view tenant_id) const {
  return state_->FindTenant(tenant_id);
}

DomainIndex Allocator::DomainIndexOf(std::string_view domain_id) const {
  return state_->FindDomain(domain_id);
}

uint32_t Allocator::domain_count() const { return static_cast<uint32_t>(state_->domains.size()); }

int Allocator::LargestFreeInDomain(TypeIndex t, absl::Span<const DomainIndex> excluded) const {
  if (t >= state_->type_states.size()) return 0;
  return state_->type_states[t].best_fit.LargestFree(excluded);
}

int64_t Allocator::TotalFreeMachines(TypeIndex t, absl::Span<const DomainIndex> excluded) const {
  if (t >= state_->type_states.size()) return 0;
  return state_->type_states[t].placeable_machines - state_->FreeMachinesIn(t, excluded);
}

// GpuGranularIndex walked from the most free GPUs down: the first set with a domain not
// excluded answers for the domains not excluded (each set is walked only past excluded
// domains); then the partly held machines of the excluded domains may raise it.
int Allocator::LargestFreeGpus(TypeIndex t, absl::Span<const DomainIndex> excluded) const {
  const FleetState& s = *state_;
  if (t >= s.type_states.size()) return 0;
  const GpuGranularIndex& index = s.type_states[t].granular;
  int largest = 0;
  for (int f = kMaxGpusPerMachine; f >= 1 && largest == 0; --f) {
    for (bool fully_free : {false, true}) {
      const DomainSet& domains = index.Domains(f, fully_free);
      for (DomainIndex d = domains.First(); d != DomainSet::kNone; d = domains.Next(d)) {
        // A domain whose free machines are all spare trays offers its partly held ones only.
        if (!ListsDomain(excluded, d) &&
            (s.cell(t, d).Placeable() > 0 ||
             (!fully_free && MostFreeGpusOnPartlyHeld(s, t, d) >= f))) {
          largest = f;
          break;
        }
      }
      if (largest != 0) break;
    }
  }
  // Excluded domains still offer their partly held machines (PlaceGpuGranular's rule); only
  // those with a machine of more free GPUs than found so far are worth a scan.
  for (DomainIndex d : excluded) {
    if (d >= s.domains.size() || (s.cell(t, d).granular_bits >> (largest + 1)) == 0) continue;
    largest = std::max(largest, MostFreeGpusOnPartlyHeld(s, t, d));
  }
  return largest;
}

int Allocator::DomainFreeMachines(TypeIndex t, DomainIndex d) const {
  if (t >= state_->type_states.size() || d >= state_->domains.size()) return 0;
  return state_->cell(t, d).Placeable();
}

int Allocator::DomainTotalMachines(TypeIndex t, DomainIndex d) const {
  if (t >= state_->type_states.size() || d >= state_->domains.size()) return 0;
  return state_->cell(t, d).total;
}

SiteIndex Allocator::SiteIndexOf(std::string_view site_id) const {
  return state_->FindSite(site_id);
}

int64_t Allocator::SiteMachines(std::string_view type_id, std::string_view site_id) const {
  const TypeIndex t = state_->FindType(type_id);
  const SiteIndex site = state_->FindSite(site_id);
  if (t == kNoIndex || site == kNoIndex) return 0;
  const std::vector<int64_t>& totals = state_->type_states[t].site_total;
  return site < totals.size() ? totals[site] : 0;
}

SiteIndex Allocator::SiteOfDomain(DomainIndex d) const {
  return d < state_->domains.size() ? state_->domains[d].site : kNoIndex;
}

DomainIndex Allocator::MostFreeDomain(TypeIndex t, int min_total,
                                      absl::Span<const DomainIndex> excluded,
                                      SiteIndex site) const {
  const FleetState& s = *state_;
  if (t >= s.type_states.size()) return kNoIndex;
  const TypeState& ts = s.type_states[t];
  min_total = std::max(min_total, 1);
  if (min_total > ts.LargestCapacity()) return kNoIndex;  // no domain is that large (less spares)
  // A domain in MAINTENANCE takes nothing; a DEGRADED one no strict batch (min_total >= 2).
  auto eligible = [&](DomainIndex d) {
    const DomainState state = s.domains[d].spec.state;
    return ts.cells[d].Capacity() >= min_total && !ListsDomain(excluded, d) &&
           (site == kNoIndex || s.domains[d].site == site) &&
           state != DomainState::kMaintenance &&
           !(min_total >= 2 && state == DomainState::kDegraded);
  };
  const BestFitDomainIndex& index = ts.best_fit;
  for (int c = index.LargestFree(); c != 0; c = index.BucketAtMost(c - 1)) {
    const DomainSet& bucket = index.Bucket(c);
    for (DomainIndex d = bucket.First(); d != DomainSet::kNone; d = bucket.Next(d)) {
      if (eligible(d)) return d;
    }
  }
  // Every candidate has 0 free: the lowest-index one.
  for (DomainIndex d = 0; d < s.domains.size(); ++d) {
    if (eligible(d)) return d;
  }
  return kNoIndex;
}

}  // namespace nvlsched::allocator
