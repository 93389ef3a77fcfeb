#include "tests/allocator/reference_model.h"

#include <algorithm>
#include <tuple>

namespace nvlsched::allocator::testing {

void ReferenceModel::AddType(const std::string& id, int gpus_per_machine) {
  types_.push_back({id, gpus_per_machine});
}

void ReferenceModel::AddDomain(const std::string& id, const std::string& site,
                               std::optional<int> spare_machines) {
  domains_.push_back({id, site, DomainState::kReady, spare_machines});
  sites_.insert(site);
}

void ReferenceModel::SetSpares(const std::string& id, std::optional<int> spare_machines) {
  domains_[DomainOf(id)].own_spares = spare_machines;
}

absl::StatusCode ReferenceModel::SetDomainState(const std::string& id, DomainState state) {
  int d = DomainOf(id);
  if (d < 0) return absl::StatusCode::kNotFound;
  domains_[d].state = state;
  return absl::StatusCode::kOk;
}

void ReferenceModel::AddTenant(const std::string& id, const std::map<std::string, int64_t>& quota) {
  tenants_[id] = quota;
}

void ReferenceModel::AddMachine(const std::string& id, const std::string& domain, int tray,
                                const std::string& type, int gpus) {
  machines_.push_back({id, DomainOf(domain), tray, TypeOf(type), gpus});
}

int ReferenceModel::TypeOf(const std::string& id) const {
  for (size_t i = 0; i < types_.size(); ++i) {
    if (types_[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

int ReferenceModel::DomainOf(const std::string& id) const {
  for (size_t i = 0; i < domains_.size(); ++i) {
    if (domains_[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

const ReferenceModel::MachineRow* ReferenceModel::FindMachine(const std::string& id) const {
  for (const MachineRow& m : machines_) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

bool ReferenceModel::HasMachine(const std::string& id) const { return FindMachine(id) != nullptr; }

ReferenceModel::MachineRow* ReferenceModel::MutableMachine(const std::string& id) {
  for (MachineRow& m : machines_) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

bool ReferenceModel::Open(const MachineRow& m) const {
  return m.state == MachineState::kReady && domains_[m.domain].state != DomainState::kMaintenance;
}

bool ReferenceModel::FreeWhole(const MachineRow& m) const { return Open(m) && m.claims == 0; }

int ReferenceModel::FreeGpus(const MachineRow& m) const {
  if (!Open(m) || m.whole > 0) return 0;
  return m.gpus - m.granular;
}

int ReferenceModel::FreeIn(int type, int domain) const {
  int n = 0;
  for (const MachineRow& m : machines_) {
    if (m.type == type && m.domain == domain && FreeWhole(m)) ++n;
  }
  return n;
}

int ReferenceModel::PlaceableIn(int type, int domain) const {
  return std::max(FreeIn(type, domain) - SparesIn(domain), 0);
}

int ReferenceModel::CapacityIn(int type, int domain) const {
  return std::max(TotalIn(type, domain) - SparesIn(domain), 0);
}

int ReferenceModel::TotalIn(int type, int domain) const {
  int n = 0;
  for (const MachineRow& m : machines_) {
    if (m.type == type && m.domain == domain) ++n;
  }
  return n;
}

std::set<int> ReferenceModel::AffinityDomains(const std::vector<std::string>& partitions) const {
  std::set<int> out;
  for (const Claim& c : claims_) {
    for (const std::string& p : c.partitions) {
      if (std::find(partitions.begin(), partitions.end(), p) != partitions.end()) {
        out.insert(FindMachine(c.machine)->domain);
      }
    }
  }
  return out;
}

int64_t ReferenceModel::UsedGpus(const std::string& tenant, int type) const {
  int64_t used = 0;
  for (const Claim& c : claims_) {
    if (c.tenant == tenant && c.type == type) used += c.gpus;
  }
  return used;
}

std::optional<QuotaViolation> ReferenceModel::CheckQuota(const std::string& tenant, int type,
                                                         int64_t gpus) const {
  const auto& quota = tenants_.at(tenant);
  auto it = quota.find(types_[type].id);
  int64_t max_machines = it == quota.end() ? 0 : it->second;
  int64_t limit = max_machines * types_[type].gpus;
  int64_t used = UsedGpus(tenant, type);
  if (used + gpus <= limit) return std::nullopt;
  return QuotaViolation{tenant, types_[type].id, max_machines, limit, used, gpus};
}

std::vector<std::string> ReferenceModel::LowestFreeTrays(int type, int domain, int n) const {
  std::vector<const MachineRow*> free;
  for (const MachineRow& m : machines_) {
    if (m.type == type && m.domain == domain && FreeWhole(m)) free.push_back(&m);
  }
  std::sort(free.begin(), free.end(),
            [](const MachineRow* a, const MachineRow* b) { return a->tray < b->tray; });
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(free[i]->id);
  return out;
}

std::set<int> ReferenceModel::BoundDomains(const std::vector<std::string>& partitions,
                                          const std::string& pinned) const {
  return pinned.empty() ? AffinityDomains(partitions) : std::set<int>{DomainOf(pinned)};
}

ReferenceModel::Decision ReferenceModel::StrictDecision(
    int type, int k, const std::string& site, const std::vector<std::string>& partitions,
    const std::string& pinned, bool strict_batch) const {
  std::set<int> bound = BoundDomains(partitions, pinned);
  auto accepted = [&](int d) {
    if (strict_batch && domains_[d].state == DomainState::kDegraded) return false;
    return (site.empty() || domains_[d].site == site) && (bound.empty() || bound.count(d) > 0);
  };
  Decision out;
  int best = -1;
  int64_t largest = 0, total = 0;
  for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
    if (!accepted(d)) continue;
    int free = PlaceableIn(type, d);
    largest = std::max<int64_t>(largest, free);
    total += free;
    if (free >= k && (best < 0 || free < PlaceableIn(type, best))) best = d;
  }
  if (best < 0) {
    out.code = absl::StatusCode::kResourceExhausted;
    out.shortfall = CapacityShortfall{types_[type].id, CapacityUnit::kMachines, k, largest, total};
    return out;
  }
  out.machines = LowestFreeTrays(type, best, k);
  for (const std::string& id : out.machines) out.gpus.push_back(FindMachine(id)->gpus);
  return out;
}

ReferenceModel::Decision ReferenceModel::GpuDecision(
    int type, int g, const std::string& site, const std::vector<std::string>& partitions,
    const std::string& pinned) const {
  std::set<int> bound = BoundDomains(partitions, pinned);
  auto accepted = [&](int d) {
    return (site.empty() || domains_[d].site == site) && (bound.empty() || bound.count(d) > 0);
  };
  Decision out;
  out.whole = false;
  const MachineRow* best = nullptr;
  std::tuple<int, int, int, int> best_key;
  int64_t most = 0, total = 0;
  for (const MachineRow& m : machines_) {
    if (m.type != type || !accepted(m.domain)) continue;
    int free = FreeGpus(m);
    if (free <= 0) continue;
    // Opening a free machine would take a spare tray.
    if (FreeWhole(m) && PlaceableIn(type, m.domain) == 0) continue;
    most = std::max<int64_t>(most, free);
    total += free;
    if (free < g) continue;
    int domain_total = TotalIn(type, m.domain);
    bool fully_free = domain_total > 0 && FreeIn(type, m.domain) == domain_total;
    auto key = std::make_tuple(free, fully_free ? 1 : 0, m.domain, m.tray);
    if (best == nullptr || key < best_key) {
      best = &m;
      best_key = key;
    }
  }
  if (best == nullptr) {
    out.code = absl::StatusCode::kResourceExhausted;
    out.shortfall = CapacityShortfall{types_[type].id, CapacityUnit::kGpus, g, most, total};
    return out;
  }
  out.machines = {best->id};
  out.gpus = {g};
  return out;
}

std::vector<std::pair<std::string, int64_t>> ReferenceModel::SitesWithType(int type) const {
  std::vector<std::pair<std::string, int64_t>> out;
  for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const auto& s) { return s.first == domains_[d].site; });
    if (it == out.end()) it = out.insert(out.end(), {domains_[d].site, 0});
    it->second += TotalIn(type, d);
  }
  return out;
}

ReferenceModel::Decision ReferenceModel::CrossDecision(int type, int k, SpreadPolicy policy,
                                                       const std::string& site) const {
  Decision out;
  out.strict = false;
  std::vector<std::pair<int, int>> with_free;  // (domain, free), domain order
  int64_t total = 0, largest = 0;
  for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
    if (!site.empty() && domains_[d].site != site) continue;
    int free = PlaceableIn(type, d);
    total += free;
    largest = std::max<int64_t>(largest, free);
    if (free > 0) with_free.emplace_back(d, free);
  }
  if (total < k) {
    out.code = absl::StatusCode::kResourceExhausted;
    out.shortfall = CapacityShortfall{types_[type].id, CapacityUnit::kMachines, k, largest, total};
    return out;
  }
  std::vector<std::pair<int, int>> takes;  // (domain, how many), in emit order
  if (policy == SpreadPolicy::kSpread) {
    size_t n = std::min<size_t>(with_free.size(), static_cast<size_t>(k));
    std::vector<int> take(n, 0);
    int remaining = k;
    while (remaining > 0) {
      for (size_t i = 0; i < n && remaining > 0; ++i) {
        if (take[i] < with_free[i].second) {
          ++take[i];
          --remaining;
        }
      }
    }
    for (size_t i = 0; i < n; ++i) takes.emplace_back(with_free[i].first, take[i]);
  } else {
    std::stable_sort(with_free.begin(), with_free.end(), [&](const auto& a, const auto& b) {
      return policy == SpreadPolicy::kFill ? a.second < b.second : a.second > b.second;
    });
    int remaining = k;
    for (const auto& [d, free] : with_free) {
      if (remaining == 0) break;
      int take = std::min(free, remaining);
      takes.emplace_back(d, take);
      remaining -= take;
    }
  }
  for (const auto& [d, n] : takes) {
    for (const std::string& id : LowestFreeTrays(type, d, n)) {
      out.machines.push_back(id);
      out.gpus.push_back(FindMachine(id)->gpus);
    }
  }
  return out;
}

ReferenceModel::Decision ReferenceModel::SegmentDecision(
    int type, int k, int segment, const std::vector<std::string>& partitions,
    const std::string& site) const {
  Decision out;
  out.strict = false;
  const int wanted = k / segment;
  std::vector<int> chosen;
  auto in_site = [&](int d) { return site.empty() || domains_[d].site == site; };
  auto usable = [&](int d) {
    return in_site(d) && PlaceableIn(type, d) >= segment &&
           std::find(chosen.begin(), chosen.end(), d) == chosen.end();
  };
  for (int d : AffinityDomains(partitions)) {  // a std::set: by index
    if (static_cast<int>(chosen.size()) < wanted && usable(d)) chosen.push_back(d);
  }
  std::vector<std::pair<int, int>> fit;  // (free, domain): the tightest first
  for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
    if (usable(d)) fit.emplace_back(PlaceableIn(type, d), d);
  }
  std::sort(fit.begin(), fit.end());
  for (const auto& [free, d] : fit) {
    if (static_cast<int>(chosen.size()) < wanted) chosen.push_back(d);
  }
  if (static_cast<int>(chosen.size()) < wanted) {
    int64_t total = 0, largest = 0;
    for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
      if (!in_site(d)) continue;
      total += PlaceableIn(type, d);
      largest = std::max<int64_t>(largest, PlaceableIn(type, d));
    }
    out.code = absl::StatusCode::kResourceExhausted;
    out.shortfall = CapacityShortfall{types_[type].id, CapacityUnit::kMachines, k, largest, total};
    return out;
  }
  for (int d : chosen) {
    for (const std::string& id : LowestFreeTrays(type, d, segment)) {
      out.machines.push_back(id);
      out.gpus.push_back(FindMachine(id)->gpus);
    }
  }
  return out;
}

ReferenceModel::Decision ReferenceModel::PlanBatch(const BatchRequest& request,
                                                   const std::string& pinned) const {
  Decision out;
  if (request.count < 1) {
    out.code = absl::StatusCode::kInvalidArgument;
    return out;
  }
  int type = TypeOf(request.instance_type_id);
  if (tenants_.count(request.tenant_id) == 0 || type < 0) {
    out.code = absl::StatusCode::kNotFound;
    return out;
  }
  // What could ever be placed: each domain's machines less its spares.
  int largest_domain = 0, machines = 0;
  for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
    const int capacity = CapacityIn(type, d);
    largest_domain = std::max(largest_domain, capacity);
    machines += capacity;
  }
  if (request.topology_optimized && request.count > largest_domain) {
    out.code = absl::StatusCode::kInvalidArgument;
    return out;
  }
  const int segment = request.segment_size;
  if (segment < 0 || (segment > 0 && request.topology_optimized)) {
    out.code = absl::StatusCode::kInvalidArgument;
    return out;
  }
  if (segment > 0) {
    int big_enough = 0;  // domains that could ever hold a segment
    for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
      big_enough += CapacityIn(type, d) >= segment ? 1 : 0;
    }
    if (request.count % segment != 0 || big_enough < request.count / segment) {
      out.code = absl::StatusCode::kInvalidArgument;
      return out;
    }
  }
  if (!request.topology_optimized && request.count > machines) {
    out.code = absl::StatusCode::kInvalidArgument;
    return out;
  }
  if (!request.site_id.empty() && sites_.count(request.site_id) == 0) {
    out.code = absl::StatusCode::kNotFound;
    return out;
  }
  // A batch never spans sites: a cross-domain batch larger than the named site's (or every
  // site's) machines of the type, or a named site without them, is infeasible.
  std::vector<std::pair<std::string, int64_t>> sites = SitesWithType(type);
  // What a site could ever place: its machines of the type less its domains' spare trays.
  auto site_capacity = [&](const std::string& id) {
    int64_t capacity = 0;
    for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
      if (domains_[d].site == id) capacity += CapacityIn(type, d);
    }
    return capacity;
  };
  bool named_has_type = false;
  int64_t site_limit = 0;
  for (const auto& [id, n] : sites) {
    if (request.site_id.empty() || id == request.site_id) {
      site_limit = std::max(site_limit, site_capacity(id));
      named_has_type |= n > 0;
    }
  }
  if ((!request.site_id.empty() && !named_has_type) ||
      (!request.topology_optimized && request.count > site_limit)) {
    out.code = absl::StatusCode::kInvalidArgument;
    return out;
  }
  out.quota = CheckQuota(request.tenant_id, type, int64_t{request.count} * types_[type].gpus);
  if (out.quota.has_value()) {
    out.code = absl::StatusCode::kResourceExhausted;
    return out;
  }
  // A cross-domain batch, with or without segments, in one site (empty: every domain).
  auto decide = [&](const std::string& site) {
    return segment > 0
               ? SegmentDecision(type, request.count, segment, request.nvlink_partition_ids, site)
               : CrossDecision(type, request.count, request.spread_policy, site);
  };
  if (request.topology_optimized) {
    out = StrictDecision(type, request.count, request.site_id, request.nvlink_partition_ids,
                         pinned, /*strict_batch=*/true);
  } else if (!request.site_id.empty()) {
    out = decide(request.site_id);
  } else if (std::count_if(sites.begin(), sites.end(), [](const auto& s) { return s.second > 0; }) <= 1) {
    out = decide("");
  } else {
    // Best fit over sites: the fewest free machines that still hold the batch, then the order
    // sites were added; the first whose policy takes it (segments may not fit where the
    // machines do).
    std::vector<std::tuple<int64_t, int, std::string>> fits;
    for (int i = 0; i < static_cast<int>(sites.size()); ++i) {
      if (sites[i].second == 0) continue;
      int64_t free = 0;
      for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
        if (domains_[d].site == sites[i].first) free += PlaceableIn(type, d);
      }
      if (free >= request.count) fits.emplace_back(free, i, sites[i].first);
    }
    std::sort(fits.begin(), fits.end());
    bool placed = false;
    for (const auto& fit : fits) {
      Decision in_site = decide(std::get<2>(fit));
      if (in_site.code == absl::StatusCode::kOk) {
        out = in_site;
        placed = true;
        break;
      }
    }
    if (!placed) {
      int64_t largest = 0, total = 0;
      for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
        largest = std::max<int64_t>(largest, PlaceableIn(type, d));
        total += PlaceableIn(type, d);
      }
      out = Decision{};
      out.code = absl::StatusCode::kResourceExhausted;
      out.shortfall = CapacityShortfall{types_[type].id, CapacityUnit::kMachines, request.count,
                                        largest, total};
    }
  }
  out.strict = request.topology_optimized;
  out.tenant = request.tenant_id;
  out.type = request.instance_type_id;
  out.partitions = request.nvlink_partition_ids;
  out.spot = request.spot;
  return out;
}

ReferenceModel::Decision ReferenceModel::PlanSingle(const SingleRequest& request,
                                                    const std::string& pinned) const {
  Decision out;
  if (request.gpu_count < 0) {
    out.code = absl::StatusCode::kInvalidArgument;
    return out;
  }
  int type = TypeOf(request.instance_type_id);
  if (tenants_.count(request.tenant_id) == 0 || type < 0) {
    out.code = absl::StatusCode::kNotFound;
    return out;
  }
  if (request.gpu_count > types_[type].gpus) {
    out.code = absl::StatusCode::kInvalidArgument;
    return out;
  }
  if (!request.site_id.empty() && sites_.count(request.site_id) == 0) {
    out.code = absl::StatusCode::kNotFound;
    return out;
  }
  int machines = 0;
  for (const MachineRow& m : machines_) machines += m.type == type ? 1 : 0;
  if (machines == 0) {
    out.code = absl::StatusCode::kInvalidArgument;
    return out;
  }
  bool whole = request.gpu_count == 0;
  out.quota = CheckQuota(request.tenant_id, type, whole ? types_[type].gpus : request.gpu_count);
  if (out.quota.has_value()) {
    out.code = absl::StatusCode::kResourceExhausted;
    return out;
  }
  out = whole ? StrictDecision(type, 1, request.site_id, request.nvlink_partition_ids, pinned,
                               /*strict_batch=*/false)
              : GpuDecision(type, request.gpu_count, request.site_id, request.nvlink_partition_ids,
                            pinned);
  out.strict = true;
  out.tenant = request.tenant_id;
  out.type = request.instance_type_id;
  out.partitions = request.nvlink_partition_ids;
  out.spot = request.spot;
  return out;
}

void ReferenceModel::Count(const Claim& claim, int delta) {
  MachineRow* m = MutableMachine(claim.machine);
  m->claims += delta;
  if (claim.whole) {
    m->whole += delta;
  } else {
    m->granular += delta * claim.gpus;
  }
}

void ReferenceModel::Apply(const Decision& decision, const std::vector<std::string>& ids,
                           const std::string& batch, int64_t started_micros) {
  std::vector<std::string> partitions = decision.partitions;
  std::sort(partitions.begin(), partitions.end());
  partitions.erase(std::unique(partitions.begin(), partitions.end()), partitions.end());
  for (size_t i = 0; i < ids.size(); ++i) {
    claims_.push_back({ids[i], decision.tenant, TypeOf(decision.type), decision.machines[i],
                       decision.gpus[i], decision.whole, batch, decision.strict, partitions,
                       decision.spot, /*preempted=*/false, started_micros});
    Count(claims_.back(), +1);
  }
}

absl::StatusCode ReferenceModel::Release(const std::vector<std::string>& ids, bool health_issue,
                                         bool clean) {
  for (size_t i = 0; i < ids.size(); ++i) {
    bool known = std::any_of(claims_.begin(), claims_.end(),
                             [&](const Claim& c) { return c.id == ids[i]; });
    if (!known) return absl::StatusCode::kNotFound;
    if (std::find(ids.begin(), ids.begin() + i, ids[i]) != ids.begin() + i) {
      return absl::StatusCode::kInvalidArgument;
    }
  }
  for (const std::string& id : ids) {
    auto it = std::find_if(claims_.begin(), claims_.end(), [&](const Claim& c) { return c.id == id; });
    std::string machine = it->machine;
    Count(*it, -1);
    claims_.erase(it);
    MachineRow* m = MutableMachine(machine);
    if (health_issue) {
      m->state = MachineState::kMaintenance;
    } else if (clean && m->state == MachineState::kReady && m->claims == 0) {
      m->state = MachineState::kCleaning;
    }
  }
  return absl::StatusCode::kOk;
}

ReferenceModel::Replaced ReferenceModel::Replace(const std::string& id, bool health_issue,
                                                 bool clean) {
  auto claim = std::find_if(claims_.begin(), claims_.end(),
                            [&](const Claim& c) { return c.id == id; });
  if (claim == claims_.end()) return {absl::StatusCode::kNotFound, ""};
  const MachineRow* from = FindMachine(claim->machine);
  const MachineRow* best = nullptr;
  for (const MachineRow& m : machines_) {
    if (&m == from || m.domain != from->domain || m.type != claim->type) continue;
    bool better;
    if (claim->whole) {
      better = FreeWhole(m) && m.gpus == claim->gpus && (best == nullptr || m.tray < best->tray);
    } else {
      const int free = FreeGpus(m);
      better = free >= claim->gpus &&
               (best == nullptr || free < FreeGpus(*best) ||
                (free == FreeGpus(*best) && m.tray < best->tray));
    }
    if (better) best = &m;
  }
  if (best == nullptr) return {absl::StatusCode::kFailedPrecondition, ""};
  const std::string old_id = from->id;
  const std::string to = best->id;
  Count(*claim, -1);
  claim->machine = to;
  Count(*claim, +1);
  MachineRow* old = MutableMachine(old_id);
  if (health_issue) {
    old->state = MachineState::kMaintenance;
  } else if (clean && old->state == MachineState::kReady && old->claims == 0) {
    old->state = MachineState::kCleaning;
  }
  return {absl::StatusCode::kOk, to};
}

std::vector<std::string> ReferenceModel::MachinesIn(MachineState state) const {
  std::vector<std::string> ids;
  for (const MachineRow& m : machines_) {
    if (m.state == state) ids.push_back(m.id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

absl::StatusCode ReferenceModel::SetState(const std::string& id, MachineState state) {
  for (MachineRow& m : machines_) {
    if (m.id == id) {
      m.state = state;
      return absl::StatusCode::kOk;
    }
  }
  return absl::StatusCode::kNotFound;
}

absl::StatusCode ReferenceModel::Remove(const std::string& id) {
  auto it = std::find_if(machines_.begin(), machines_.end(),
                         [&](const MachineRow& m) { return m.id == id; });
  if (it == machines_.end()) return absl::StatusCode::kNotFound;
  if (it->claims > 0) return absl::StatusCode::kFailedPrecondition;
  machines_.erase(it);
  return absl::StatusCode::kOk;
}

std::set<int> ReferenceModel::TraysOf(const std::string& domain) const {
  std::set<int> trays;
  int d = DomainOf(domain);
  for (const MachineRow& m : machines_) {
    if (m.domain == d) trays.insert(m.tray);
  }
  return trays;
}

std::string ReferenceModel::Describe() const {
  std::vector<std::string> lines;
  for (const DomainRow& d : domains_) {
    lines.push_back("domain " + d.id + " " + std::string(DomainStateName(d.state)));
  }
  for (const MachineRow& m : machines_) {
    lines.push_back("machine " + m.id + " " + domains_[m.domain].id + " " + std::to_string(m.tray) +
                    " " + types_[m.type].id + " " + std::to_string(m.gpus) + " " +
                    std::string(MachineStateName(m.state)));
  }
  for (const Claim& c : claims_) {
    std::string line = "instance " + c.id + " " + c.tenant + " " + c.machine + " " +
                       std::to_string(c.gpus) + (c.whole ? " whole" : " gpus") + " batch=" +
                       c.batch + (c.strict ? " strict" : " cross") + (c.spot ? " spot" : "") +
                       (c.preempted ? " preempted" : "") + " started=" +
                       std::to_string(c.started_micros);
    for (const std::string& p : c.partitions) line += " p=" + p;
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

ReferenceModel::PreemptionBound ReferenceModel::FewestGangs(
    const std::string& tenant, const std::string& type_id, int k, const std::string& site,
    const std::vector<std::string>& partitions, const std::vector<std::string>& excluded,
    bool strict_batch) const {
  const int type = TypeOf(type_id);
  const std::set<int> bound = AffinityDomains(partitions);
  constexpr int kNever = 1 << 30;
  for (bool allow_own : {false, true}) {
    int fewest = kNever;
    for (int d = 0; d < static_cast<int>(domains_.size()); ++d) {
      if (!site.empty() && domains_[d].site != site) continue;
      if (!bound.empty() && bound.count(d) == 0) continue;
      if (std::find(excluded.begin(), excluded.end(), domains_[d].id) != excluded.end()) continue;
      if (strict_batch && domains_[d].state == DomainState::kDegraded) continue;
      const int need = k - PlaceableIn(type, d);
      if (need <= 0) continue;  // free capacity holds it: no preemption there
      // Machines each gang (a batch id, or a single's own id) holds here that a preemption
      // may free: READY, held whole by a spot instance not yet preempted.
      std::map<std::string, int> here;
      for (const Claim& c : claims_) {
        const MachineRow* m = FindMachine(c.machine);
        if (m->type != type || m->domain != d || !Open(*m)) continue;
        if (!c.whole || !c.spot || c.preempted) continue;
        if (c.tenant == tenant && !allow_own) continue;
        ++here[c.batch.empty() ? "single " + c.id : "batch " + c.batch];
      }
      // fewest_for[s]: the fewest of the gangs so far whose machines here add up to s (to
      // need or more, for s == need).
      std::vector<int> fewest_for(need + 1, kNever);
      fewest_for[0] = 0;
      for (const auto& [gang, n] : here) {
        for (int s = need; s >= 0; --s) {
          if (fewest_for[s] == kNever) continue;
          int& to = fewest_for[std::min(need, s + n)];
          to = std::min(to, fewest_for[s] + 1);
        }
      }
      fewest = std::min(fewest, fewest_for[need]);
    }
    if (fewest != kNever) return PreemptionBound{true, fewest, allow_own};
  }
  return PreemptionBound{};
}

void ReferenceModel::MarkPreempted(const std::vector<std::string>& ids) {
  for (Claim& c : claims_) {
    if (std::find(ids.begin(), ids.end(), c.id) != ids.end()) c.preempted = true;
  }
}

const ReferenceModel::Claim* ReferenceModel::FindClaim(const std::string& id) const {
  for (const Claim& c : claims_) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

std::vector<std::string> ReferenceModel::BatchMembers(const std::string& batch) const {
  std::vector<std::string> ids;
  for (const Claim& c : claims_) {
    if (c.batch == batch) ids.push_back(c.id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

int ReferenceModel::FreeMachines(const std::string& type, const std::string& domain) const {
  return FreeIn(TypeOf(type), DomainOf(domain));
}

int ReferenceModel::PlaceableMachines(const std::string& type, const std::string& domain) const {
  return PlaceableIn(TypeOf(type), DomainOf(domain));
}

std::vector<std::string> ReferenceModel::LiveInstanceIds() const {
  std::vector<std::string> ids;
  for (const Claim& c : claims_) ids.push_back(c.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace nvlsched::allocator::testing
