#include "allocator/fleet_state.h"

#include <algorithm>
#include <cassert>

#include "allocator/string_view_compat.h"

namespace nvlsched::allocator {
namespace {

// Maps keyed by std::string take Abseil's own string_view for heterogeneous lookup.
template <typename Map>
uint32_t Lookup(const Map& map, std::string_view id) {
  auto it = map.find(AbslView(id));
  return it == map.end() ? kNoIndex : it->second;
}

}  // namespace

TypeIndex FleetState::FindType(std::string_view id) const { return Lookup(type_by_id, id); }
DomainIndex FleetState::FindDomain(std::string_view id) const { return Lookup(domain_by_id, id); }
MachineIndex FleetState::FindMachine(std::string_view id) const {
  return machine_by_id.Find(id);
}
TenantIndex FleetState::FindTenant(std::string_view id) const { return Lookup(tenant_by_id, id); }
SiteIndex FleetState::FindSite(std::string_view id) const { return Lookup(site_by_id, id); }
PartitionIndex FleetState::FindPartition(std::string_view id) const {
  return Lookup(partition_by_id, id);
}

std::string FleetState::InstanceName(InstanceHandle handle) const {
  std::string name = instance_namer ? instance_namer(handle) : std::string();
  return name.empty() ? HandleName(handle) : name;
}

const std::string& FleetState::TypeName(TypeIndex t) const {
  const InstanceType& spec = types[t].spec;
  return spec.name.empty() ? spec.id : spec.name;
}

const std::string& FleetState::DomainName(DomainIndex d) const {
  const Domain& spec = domains[d].spec;
  return spec.name.empty() ? spec.id : spec.name;
}

bool FleetState::Accepts(const DomainFilter& filter, DomainIndex d) const {
  return InSiteAndAffinity(filter, d) && !ListsDomain(filter.excluded, d);
}

bool FleetState::InSiteAndAffinity(const DomainFilter& filter, DomainIndex d) const {
  if (filter.site != kNoIndex && domains[d].site != filter.site) return false;
  return filter.affinity.empty() ||
         std::binary_search(filter.affinity.begin(), filter.affinity.end(), d);
}

int64_t FleetState::FreeMachinesIn(TypeIndex t, absl::Span<const DomainIndex> domains) const {
  int64_t free = 0;
  for (size_t i = 0; i < domains.size(); ++i) {
    DomainIndex d = domains[i];
    if (d >= this->domains.size() || ListsDomain(domains.first(i), d)) continue;
    free += cell(t, d).Placeable();
  }
  return free;
}

// ---- Structure ----

TypeIndex FleetState::AppendType(const InstanceType& spec) {
  TypeIndex t = static_cast<TypeIndex>(types.size());
  types.push_back(TypeRecord{spec});
  type_by_id.emplace(spec.id, t);
  TypeState& ts = type_states.emplace_back();
  ts.cells.resize(domains.size());
  for (DomainIndex d = 0; d < domains.size(); ++d) ts.cells[d].spares = EffectiveSpares(d);
  ts.best_fit.Reserve(static_cast<uint32_t>(domains.size()));
  ts.granular.Reserve(static_cast<uint32_t>(domains.size()));
  ts.reclaim.Reserve(static_cast<uint32_t>(domains.size()));
  ts.site_free.resize(sites.size());
  ts.site_total.resize(sites.size());
  ts.site_capacity.resize(sites.size());
  for (TenantRecord& tenant : tenants) {
    tenant.max_machines.push_back(0);
    tenant.used_gpus.push_back(0);
    tenant.site_limited.push_back(false);
    tenant.site_max_machines.emplace_back(sites.size(), kNoSiteQuota);
    tenant.site_used_gpus.emplace_back(sites.size(), 0);
  }
  return t;
}

void FleetState::PopType() {
  assert(type_states.back().total_machines == 0);
  type_by_id.erase(types.back().spec.id);
  types.pop_back();
  type_states.pop_back();
  for (TenantRecord& tenant : tenants) {
    tenant.max_machines.pop_back();
    tenant.used_gpus.pop_back();
    tenant.site_limited.pop_back();
    tenant.site_max_machines.pop_back();
    tenant.site_used_gpus.pop_back();
  }
}

DomainIndex FleetState::AppendDomain(const Domain& spec) {
  DomainIndex d = static_cast<DomainIndex>(domains.size());
  domains.emplace_back();
  domains.back().spec = spec;
  domains.back().site = InternSite(spec.site_id);
  domain_by_id.emplace(spec.id, d);
  if (spec.state == DomainState::kDegraded) degraded_domains.push_back(d);  // d is the largest
  for (TypeState& ts : type_states) {
    ts.cells.emplace_back().spares = EffectiveSpares(d);
    // Grow index capacity geometrically so adding domains one by one stays linear.
    uint32_t needed = static_cast<uint32_t>(domains.size());
    if (needed > ts.best_fit.Bucket(1).capacity()) {
      uint32_t capacity = std::max<uint32_t>(64, needed * 2);
      ts.best_fit.Reserve(capacity);
      ts.granular.Reserve(capacity);
      ts.reclaim.Reserve(capacity);
    }
  }
  return d;
}

void FleetState::PopDomain() {
  assert(domains.back().machines_by_tray.empty());
  domain_by_id.erase(domains.back().spec.id);
  if (!degraded_domains.empty() && degraded_domains.back() == domains.size() - 1) {
    degraded_domains.pop_back();
  }
  domains.pop_back();
  for (TypeState& ts : type_states) ts.cells.pop_back();
}

void FleetState::SetDomainSpec(DomainIndex d, const Domain& spec) {
  DomainRecord& rec = domains[d];
  const bool was_closed = rec.spec.state == DomainState::kMaintenance;
  const bool closed = spec.state == DomainState::kMaintenance;
  const std::vector<MachineIndex>& order = rec.machines_by_tray;
  if (was_closed != closed) {
    for (MachineIndex x : order) RemoveContribution(x);
  }
  rec.spec.name = spec.name;
  rec.spec.site_id = spec.site_id;
  rec.spec.state = spec.state;
  rec.spec.state_reason = spec.state_reason;
  const bool spares_changed = rec.spec.spare_machines != spec.spare_machines;
  rec.spec.spare_machines = spec.spare_machines;
  const SiteIndex site = InternSite(spec.site_id);
  if (site != rec.site) {
    // The domain's machines move to the other site's counts, as the indexes reflect them.
    for (TypeState& ts : type_states) {
      const DomainCell& cell = ts.cells[d];
      ts.site_free[rec.site] -= cell.indexed_free;
      ts.site_total[rec.site] -= cell.indexed_total;
      ts.site_capacity[rec.site] -= cell.indexed_capacity;
      ts.site_free[site] += cell.indexed_free;
      ts.site_total[site] += cell.indexed_total;
      ts.site_capacity[site] += cell.indexed_capacity;
    }
    // So does the quota usage of the instances on them (rare: O(instances)).
    for (const ClaimRecord& claim : claims) {
      if (!claim.live || machines[claim.machine].domain != d) continue;
      CountSiteUsage(claim.tenant, claim.type, rec.site, -claim.gpu_count);
      CountSiteUsage(claim.tenant, claim.type, site, claim.gpu_count);
    }
    rec.site = site;
  }
  auto it = std::lower_bound(degraded_domains.begin(), degraded_domains.end(), d);
  const bool listed = it != degraded_domains.end() && *it == d;
  if (spec.state == DomainState::kDegraded && !listed) degraded_domains.insert(it, d);
  if (spec.state != DomainState::kDegraded && listed) degraded_domains.erase(it);
  if (was_closed != closed) {
    for (MachineIndex x : order) {
      machines[x].domain_closed = closed;
      AddContribution(x);
    }
    for (MachineIndex x : order) SyncCell(machines[x].type, d);
  }
  if (spares_changed) SetSpares(d);
}

void FleetState::SetSpares(DomainIndex d) {
  const int32_t spares = EffectiveSpares(d);
  for (TypeIndex t = 0; t < type_states.size(); ++t) {
    type_states[t].cells[d].spares = spares;
    SyncCell(t, d);
  }
}

void FleetState::SetDefaultSpares(int32_t spares) {
  default_spares = spares;
  for (DomainIndex d = 0; d < domains.size(); ++d) {
    if (!domains[d].spec.spare_machines.has_value()) SetSpares(d);
  }
}

SiteIndex FleetState::InternSite(std::string_view site_id) {
  SiteIndex s = FindSite(site_id);
  if (s != kNoIndex) return s;
  s = static_cast<SiteIndex>(sites.size());
  sites.emplace_back(site_id);
  site_by_id.emplace(std::string(site_id), s);
  for (TypeState& ts : type_states) {
    ts.site_free.push_back(0);
    ts.site_total.push_back(0);
    ts.site_capacity.push_back(0);
  }
  for (TenantRecord& tenant : tenants) {
    for (TypeIndex type = 0; type < tenant.site_used_gpus.size(); ++type) {
      tenant.site_used_gpus[type].push_back(0);
      auto it = tenant.spec.site_quota.find({types[type].spec.id, std::string(site_id)});
      tenant.site_max_machines[type].push_back(it == tenant.spec.site_quota.end() ? kNoSiteQuota
                                                                                  : it->second);
    }
  }
  return s;
}

PartitionIndex FleetState::InternPartition(std::string_view partition_id) {
  PartitionIndex p = FindPartition(partition_id);
  if (p != kNoIndex) return p;
  p = static_cast<PartitionIndex>(partitions.size());
  partitions.emplace_back().id = std::string(partition_id);
  partition_by_id.emplace(std::string(partition_id), p);
  return p;
}

void FleetState::SetTenantQuota(TenantIndex t) {
  TenantRecord& tenant = tenants[t];
  tenant.max_machines.assign(types.size(), 0);
  tenant.used_gpus.resize(types.size(), 0);
  tenant.site_limited.assign(types.size(), false);
  tenant.site_max_machines.assign(types.size(), std::vector<int64_t>(sites.size(), kNoSiteQuota));
  tenant.site_used_gpus.resize(types.size());
  for (std::vector<int64_t>& used : tenant.site_used_gpus) used.resize(sites.size(), 0);
  for (const auto& [key, max_machines] : tenant.spec.site_quota) {
    TypeIndex type = FindType(key.first);
    if (type == kNoIndex) continue;
    tenant.site_limited[type] = true;
    tenant.max_machines[type] = kNoFleetQuota;  // unless `quota` has an entry (below)
    SiteIndex site = FindSite(key.second);
    if (site != kNoIndex) tenant.site_max_machines[type][site] = max_machines;
  }
  for (const auto& [type_id, max_machines] : tenant.spec.quota) {
    TypeIndex type = FindType(type_id);
    if (type != kNoIndex) tenant.max_machines[type] = max_machines;
  }
}

void FleetState::ResetPositions(DomainIndex d) {
  std::vector<MachineIndex>& order = domains[d].machines_by_tray;
  for (size_t i = 0; i < order.size(); ++i) machines[order[i]].position = static_cast<int32_t>(i);
}

void FleetState::SyncDomain(DomainIndex d, TypeIndex also) {
  SyncCell(also, d);
  for (MachineIndex x : domains[d].machines_by_tray) SyncCell(machines[x].type, d);
}

// Inserting in the middle shifts every later position, so the whole domain (at most 144
// machines) is taken out of the cells and put back; inventory changes are rare.
void FleetState::LinkMachine(MachineIndex m) {
  MachineRecord& rec = machines[m];
  std::vector<MachineIndex>& order = domains[rec.domain].machines_by_tray;
  for (MachineIndex x : order) RemoveContribution(x);
  rec.domain_closed = domains[rec.domain].spec.state == DomainState::kMaintenance;
  auto at = std::upper_bound(order.begin(), order.end(), rec.spec.tray_index,
                             [this](int32_t tray, MachineIndex x) {
                               return tray < machines[x].spec.tray_index;
                             });
  order.insert(at, m);
  ResetPositions(rec.domain);
  for (MachineIndex x : order) AddContribution(x);
  ++live_machines;
  SyncDomain(rec.domain, rec.type);
}

void FleetState::UnlinkMachine(MachineIndex m) {
  MachineRecord& rec = machines[m];
  std::vector<MachineIndex>& order = domains[rec.domain].machines_by_tray;
  for (MachineIndex x : order) RemoveContribution(x);
  order.erase(std::find(order.begin(), order.end(), m));
  ResetPositions(rec.domain);
  for (MachineIndex x : order) AddContribution(x);
  --live_machines;
  SyncDomain(rec.domain, rec.type);
}

// ---- Incremental maintenance ----

void FleetState::AddContribution(MachineIndex m) {
  const MachineRecord& rec = machines[m];
  TypeState& ts = type_states[rec.type];
  DomainCell& cell = ts.cells[rec.domain];
  ++cell.total;
  ++ts.total_machines;
  if (rec.spec.state == MachineState::kCleaning) ++cell.cleaning;
  if (rec.free_whole()) {
    ++cell.free;
    cell.free_mask.Set(rec.position);
    ++ts.free_machines;
  }
  int32_t f = rec.free_gpus();
  if (f > 0) {
    cell.granular_mask.Set(rec.position);
    if (cell.granular_hist[f]++ == 0) cell.granular_bits |= 1u << f;
    ts.free_gpus += f;
  }
  if (rec.reclaimable()) {
    ++cell.reclaimable;
    cell.reclaim_mask.Set(rec.position);
    ++ts.reclaimable_machines;
  }
}

void FleetState::RemoveContribution(MachineIndex m) {
  const MachineRecord& rec = machines[m];
  TypeState& ts = type_states[rec.type];
  DomainCell& cell = ts.cells[rec.domain];
  --cell.total;
  --ts.total_machines;
  if (rec.spec.state == MachineState::kCleaning) --cell.cleaning;
  if (rec.free_whole()) {
    --cell.free;
    cell.free_mask.Reset(rec.position);
    --ts.free_machines;
  }
  int32_t f = rec.free_gpus();
  if (f > 0) {
    cell.granular_mask.Reset(rec.position);
    if (--cell.granular_hist[f] == 0) cell.granular_bits &= ~(1u << f);
    ts.free_gpus -= f;
  }
  if (rec.reclaimable()) {
    --cell.reclaimable;
    cell.reclaim_mask.Reset(rec.position);
    --ts.reclaimable_machines;
  }
}

void FleetState::ChangeContribution(const MachineRecord& rec, Contribution before) {
  TypeState& ts = type_states[rec.type];
  DomainCell& cell = ts.cells[rec.domain];
  bool free_whole = rec.free_whole();
  if (free_whole != before.free_whole) {
    int32_t delta = free_whole ? 1 : -1;
    cell.free += delta;
    ts.free_machines += delta;
    if (free_whole) {
      cell.free_mask.Set(rec.position);
    } else {
      cell.free_mask.Reset(rec.position);
    }
  }
  int32_t old_f = std::max(before.free_gpus, 0);
  int32_t new_f = std::max(rec.free_gpus(), 0);
  if (old_f != new_f) {
    if (old_f > 0 && --cell.granular_hist[old_f] == 0) cell.granular_bits &= ~(1u << old_f);
    if (new_f > 0 && cell.granular_hist[new_f]++ == 0) cell.granular_bits |= 1u << new_f;
    if (new_f == 0) {
      cell.granular_mask.Reset(rec.position);
    } else if (old_f == 0) {
      cell.granular_mask.Set(rec.position);
    }
    ts.free_gpus += new_f - old_f;
  }
  bool reclaimable = rec.reclaimable();
  if (reclaimable != before.reclaimable) {
    int32_t delta = reclaimable ? 1 : -1;
    cell.reclaimable += delta;
    ts.reclaimable_machines += delta;
    if (reclaimable) {
      cell.reclaim_mask.Set(rec.position);
    } else {
      cell.reclaim_mask.Reset(rec.position);
    }
  }
}

void FleetState::SyncCell(TypeIndex t, DomainIndex d) {
  TypeState& ts = type_states[t];
  DomainCell& cell = ts.cells[d];
  const SiteIndex site = domains[d].site;
  if (cell.indexed_total != cell.total) {
    ts.site_total[site] += cell.total - cell.indexed_total;
    if (cell.indexed_total > 0 && --ts.domains_by_size[cell.indexed_total] == 0) {
      ts.domain_sizes.Reset(cell.indexed_total);
    }
    if (cell.total > 0 && ts.domains_by_size[cell.total]++ == 0) ts.domain_sizes.Set(cell.total);
    cell.indexed_total = cell.total;
  }
  if (int32_t capacity = cell.Capacity(); cell.indexed_capacity != capacity) {
    if (cell.indexed_capacity > 0 && --ts.domains_by_capacity[cell.indexed_capacity] == 0) {
      ts.domain_capacities.Reset(cell.indexed_capacity);
    }
    if (capacity > 0 && ts.domains_by_capacity[capacity]++ == 0) ts.domain_capacities.Set(capacity);
    ts.capacity_machines += capacity - cell.indexed_capacity;
    ts.site_capacity[site] += capacity - cell.indexed_capacity;
    cell.indexed_capacity = capacity;
  }
  if (int32_t placeable = cell.Placeable(); cell.indexed_free != placeable) {
    ts.best_fit.Update(d, cell.indexed_free, placeable);
    ts.placeable_machines += placeable - cell.indexed_free;
    ts.site_free[site] += placeable - cell.indexed_free;
    cell.indexed_free = placeable;
  }
  if (int32_t reach = cell.Reach(); reach != cell.indexed_reach) {
    ts.reclaim.Update(d, cell.indexed_reach, reach);
    cell.indexed_reach = reach;
  }
  bool fully_free = cell.FullyFree();
  if (fully_free != cell.indexed_fully_free) {
    // The domain changes class: move every free-GPU entry to the other class.
    for (uint32_t bits = cell.indexed_granular_bits; bits != 0; bits &= bits - 1) {
      ts.granular.Erase(__builtin_ctz(bits), cell.indexed_fully_free, d);
    }
    for (uint32_t bits = cell.granular_bits; bits != 0; bits &= bits - 1) {
      ts.granular.Insert(__builtin_ctz(bits), fully_free, d);
    }
    ts.fully_free_domains += fully_free ? 1 : -1;
    cell.indexed_fully_free = fully_free;
    cell.indexed_granular_bits = cell.granular_bits;
  } else if (cell.indexed_granular_bits != cell.granular_bits) {
    for (uint32_t diff = cell.indexed_granular_bits ^ cell.granular_bits; diff != 0;
         diff &= diff - 1) {
      int f = __builtin_ctz(diff);
      if (cell.granular_bits & (1u << f)) {
        ts.granular.Insert(f, fully_free, d);
      } else {
        ts.granular.Erase(f, fully_free, d);
      }
    }
    cell.indexed_granular_bits = cell.granular_bits;
  }
}

// ---- Claims ----

void FleetState::HoldMachineInPlace(ClaimIndex c, const ClaimRecord& claim,
                                    MachineRecord& machine) {
  Contribution before = ContributionOf(machine);
  if (claim.whole_machine) {
    machine.whole_claim = c;
    machine.spot_whole = claim.Reclaimable();
  } else {
    machine.granular_gpus += claim.gpu_count;
    ++machine.granular_claims;
  }
  ChangeContribution(machine, before);
}

void FleetState::UnholdMachineInPlace(const ClaimRecord& claim, MachineRecord& machine) {
  Contribution before = ContributionOf(machine);
  if (claim.whole_machine) {
    machine.whole_claim = kNoIndex;
    machine.spot_whole = false;
  } else {
    machine.granular_gpus -= claim.gpu_count;
    --machine.granular_claims;
  }
  ChangeContribution(machine, before);
}

void FleetState::SetPreempted(ClaimIndex c, bool preempted) {
  ClaimRecord& claim = claims[c];
  MachineRecord& machine = machines[claim.machine];
  Contribution before = ContributionOf(machine);
  claim.preempted = preempted;
  if (claim.whole_machine && machine.whole_claim == c) machine.spot_whole = claim.Reclaimable();
  ChangeContribution(machine, before);
}

void FleetState::CountPartitions(const ClaimRecord& claim, DomainIndex d, int32_t delta) {
  for (PartitionIndex p : claim.partitions) {
    auto& entries = partitions[p].domains;
    auto it = std::find_if(entries.begin(), entries.end(),
                           [d](const auto& entry) { return entry.first == d; });
    if (it == entries.end()) {
      entries.emplace_back(d, delta);
    } else {
      it->second += delta;
    }
  }
}

void FleetState::AppendFreeMachines(TypeIndex t, DomainIndex d, int n, Placement* out) const {
  const DomainCell& c = cell(t, d);
  const MachineIndex* by_tray = domains[d].machines_by_tray.data();
  // Sized once (one size update, not n), then filled through a pointer.
  size_t first = out->instances.size();
  out->instances.resize(first + static_cast<size_t>(n));
  PlacedInstance* placed = out->instances.data() + first;
  // Lowest trays first: the free mask a word at a time, lowest set bit first.
  for (int w = 0; n > 0 && w < SmallBitset::kWords; ++w) {
    for (uint64_t word = c.free_mask.Word(w); word != 0 && n > 0; word &= word - 1, --n) {
      MachineIndex m = by_tray[(w << 6) + __builtin_ctzll(word)];
      placed->gpu_count = machines[m].spec.gpu_count;
      placed->whole_machine = true;
      placed->machine = m;
      placed->domain = d;
      ++placed;
    }
  }
  assert(n == 0);
}

void FleetState::FillPlaced(MachineIndex m, int32_t gpus, bool whole_machine,
                            PlacedInstance* placed) const {
  placed->gpu_count = gpus;
  placed->whole_machine = whole_machine;
  placed->machine = m;
  placed->domain = machines[m].domain;
}

}  // namespace nvlsched::allocator
