// InventoryService reads (declared in inventory_ops.h).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "daemon/api/convert.h"
#include "daemon/engine/rows.h"
#include "daemon/api/field_violations.h"
#include "daemon/api/page_tokens.h"
#include "daemon/engine/inventory_ops.h"
#include "daemon/api/status_mapping.h"

namespace nvlsched::daemon {
namespace {

absl::string_view View(const std::string& s) { return absl::string_view(s); }

bool MatchesFilters(const allocator::Machine& machine, const v1::ListMachinesRequest& req) {
  if (!req.domain_id().empty() && machine.domain_id != req.domain_id()) return false;
  if (!req.instance_type_id().empty() && machine.instance_type_id != req.instance_type_id()) {
    return false;
  }
  if (req.state() != v1::MACHINE_STATE_UNSPECIFIED && ToProto(machine.state) != req.state()) {
    return false;
  }
  return true;
}

}  // namespace

absl::Status ListMachines(const State& state, const v1::ListMachinesRequest& req,
                          v1::ListMachinesResponse* resp) {
  std::string after;
  if (!req.page_token().empty()) {
    std::optional<std::string> decoded = DecodePageToken(req.page_token());
    if (decoded.has_value()) after = *std::move(decoded);
  }
  if (!req.page_token().empty() && after.empty()) {  // a token that does not decode
    FieldViolations violations;
    violations.Add("page_token", "page_token is not one this server issued: pass the "
                                 "next_page_token of the previous page, or nothing for the "
                                 "first page");
    return violations.ToStatus("ListMachinesRequest");
  }
  const allocator::Allocator& alloc = state.allocator();
  std::vector<const allocator::Machine*> matches;
  alloc.ForEachMachine([&](const allocator::Machine& machine) {
    if (MatchesFilters(machine, req)) matches.push_back(&machine);
  });
  // Id order is stable across inserts, removals and restarts, so a token stays meaningful:
  // a page never repeats or skips a machine that existed for the whole walk.
  std::sort(matches.begin(), matches.end(),
            [](const allocator::Machine* a, const allocator::Machine* b) { return a->id < b->id; });
  resp->set_total_size(static_cast<int32_t>(matches.size()));

  auto first = matches.begin();
  if (!after.empty()) {
    first = std::upper_bound(
        matches.begin(), matches.end(), after,
        [](const std::string& id, const allocator::Machine* m) { return id < m->id; });
  }
  const size_t page_size = req.page_size() > 0 ? req.page_size() : kDefaultMachinePageSize;
  const auto last = first + std::min<size_t>(page_size, matches.end() - first);
  if (first == last) return absl::OkStatus();

  // Holders of the machines on this page, in one pass over the instances.
  absl::flat_hash_map<absl::string_view, MachineHolding> holdings;
  for (auto it = first; it != last; ++it) holdings.try_emplace(View((*it)->id));
  alloc.ForEachInstance([&](allocator::InstanceHandle handle,
                            const allocator::InstanceClaim& claim) {
    auto found = holdings.find(View(claim.machine_id));
    if (found == holdings.end()) return;
    found->second.instance_ids.push_back(state.InstanceIdOf(handle));
    if (claim.whole_machine) {
      found->second.whole = true;
    } else {
      found->second.granular_gpus += claim.gpu_count;
    }
  });
  for (auto it = first; it != last; ++it) {
    MachineHolding& holding = holdings[View((*it)->id)];
    std::sort(holding.instance_ids.begin(), holding.instance_ids.end());
    *resp->add_machines() = MachineView(**it, holding);
  }
  if (last != matches.end()) {
    resp->set_next_page_token(EncodePageToken((*(last - 1))->id));
  }
  return absl::OkStatus();
}

absl::Status GetMachine(const State& state, const std::string& id, v1::Machine* resp) {
  const allocator::Machine* machine = state.allocator().FindMachine(id);
  if (machine == nullptr) {
    return ResourceNotFoundError(
        kMachineResource, id,
        absl::StrCat("machine ", id, " does not exist; ListMachines shows the known machines"));
  }
  *resp = MachineView(*machine, HoldingOf(state, id));
  return absl::OkStatus();
}

absl::Status ListDomains(const State& state, const v1::ListDomainsRequest& req,
                         v1::ListDomainsResponse* resp) {
  const allocator::Allocator& alloc = state.allocator();
  struct Counts {
    int32_t total = 0;
    int32_t free = 0;
    int32_t available = 0;
    int32_t spot = 0;
    int32_t cleaning = 0;
  };
  absl::flat_hash_map<std::string, Counts> counts;
  alloc.ForEachInstanceType([&](const allocator::InstanceType& type) {
    // The type exists (we are iterating it), so this cannot fail.
    alloc.ForEachDomainCapacity(type.id, [&](const allocator::DomainCapacity& capacity) {
          Counts& c = counts[capacity.domain_id];
          c.total += capacity.total_machines;
          c.free += capacity.free_machines;
          c.available += capacity.available_machines;
          c.cleaning += capacity.cleaning_machines;
          c.spot += alloc.DomainReclaimableMachines(alloc.TypeIndexOf(type.id),
                                                    alloc.DomainIndexOf(capacity.domain_id));
        }).IgnoreError();
  });
  // Free machines held for waiting batches: all that is free of the holder's type in each
  // domain it reserved, but the spare trays (DomainFreeMachines leaves them out).
  absl::flat_hash_map<std::string, int32_t> reserved;
  for (const allocator::Reservation& r : state.queue().reservations()) {
    for (allocator::DomainIndex d : r.domains) {
      reserved[alloc.DomainAt(d).id] += alloc.DomainFreeMachines(r.type, d);
    }
  }
  alloc.ForEachDomain([&](const allocator::Domain& domain) {
    if (!req.site_id().empty() && domain.site_id != req.site_id()) return;
    v1::Domain* out = resp->add_domains();
    *out = ToProto(domain);
    out->set_effective_spare_machines(alloc.EffectiveSpareMachines(alloc.DomainIndexOf(domain.id)));
    auto it = counts.find(domain.id);
    if (it != counts.end()) {
      out->set_total_machines(it->second.total);
      out->set_free_machines(it->second.free);
      out->set_available_machines(it->second.available);
      out->set_spot_machines(it->second.spot);
      out->set_cleaning_machines(it->second.cleaning);
    }
    auto r = reserved.find(domain.id);
    if (r != reserved.end()) {
      out->set_reserved_machines(r->second);
      out->set_available_machines(out->available_machines() - r->second);
    }
  });
  return absl::OkStatus();
}

absl::Status ListInstanceTypes(const State& state, const v1::ListInstanceTypesRequest& req,
                               v1::ListInstanceTypesResponse* resp) {
  state.allocator().ForEachInstanceType([&](const allocator::InstanceType& type) {
    *resp->add_instance_types() = ToProto(type);
  });
  return absl::OkStatus();
}

absl::Status ListTenants(const State& state, const v1::ListTenantsRequest& req,
                         v1::ListTenantsResponse* resp) {
  state.allocator().ForEachTenant([&](const allocator::Tenant& tenant) {
    if (!req.org().empty() && tenant.org != req.org()) return;
    *resp->add_tenants() = ToProto(tenant);
  });
  return absl::OkStatus();
}

}  // namespace nvlsched::daemon
