// InventoryService and CapacityService request validation (declared in validation.h).
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "daemon/api/field_checks.h"
#include "daemon/api/field_violations.h"
#include "daemon/api/validation.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;

constexpr int kMaxTypeNameLength = 128;
constexpr int kMaxGpuModelLength = 64;
// Prices are held in micro-dollars in an int64; a million dollars an hour is far beyond any
// real machine and far below the overflow.
constexpr double kMaxPricePerHour = 1e6;
// Tenant priority bounds; the store's CHECK on tenants.priority holds the same range.
constexpr int32_t kMinTenantPriority = -1000;
constexpr int32_t kMaxTenantPriority = 1000;

// UUIDs compare case-insensitively everywhere in the fleet.
std::string Key(absl::string_view id) { return absl::AsciiStrToLower(id); }

// Adds "`path` X is already used by `first_path`" when `id` was seen before.
void CheckUnique(FieldViolations& violations, absl::flat_hash_map<std::string, std::string>& seen,
                 const std::string& path, absl::string_view id, absl::string_view what) {
  if (id.empty() || violations.Has(path)) return;
  auto [it, inserted] = seen.emplace(Key(id), path);
  if (!inserted) {
    violations.Add(path, absl::StrCat(path, " ", Quote(id), " is already the ", what, " of ",
                                      it->second, ": each ", what, " must be unique"));
  }
}

void CheckPrice(FieldViolations& violations, const std::string& path, double price) {
  if (!std::isfinite(price) || price < 0 || price > kMaxPricePerHour) {
    violations.Add(
        path, absl::StrCat(path, " must be between 0 and ", static_cast<int64_t>(kMaxPricePerHour),
                           " USD per machine-hour, got ", price));
  }
}

// CLEANING is set by nvlsched alone (a machine whose last instance was deleted) and ended by
// CompleteCleaning, so only a filter may name it.
void CheckMachineState(FieldViolations& violations, const std::string& path, v1::MachineState state,
                       bool allow_unspecified, bool allow_cleaning = false) {
  if (state == v1::MACHINE_STATE_CLEANING && !allow_cleaning) {
    violations.Add(path, absl::StrCat(path, " cannot be set to MACHINE_STATE_CLEANING: nvlsched "
                                            "sets it when a machine's last instance is deleted, "
                                            "and InventoryService/CompleteCleaning ends it"));
    return;
  }
  if (v1::MachineState_IsValid(state) &&
      (allow_unspecified || state != v1::MACHINE_STATE_UNSPECIFIED)) {
    return;
  }
  violations.Add(path, absl::StrCat(path,
                                    " must be MACHINE_STATE_READY, MACHINE_STATE_MAINTENANCE"
                                    " or MACHINE_STATE_ERROR, got ",
                                    v1::MachineState_IsValid(state) ? v1::MachineState_Name(state)
                                                                    : absl::StrCat(state)));
}

// `type_gpus` (may be null) returns the GPUs per machine of a known instance type, 0 when
// unknown; when null, quota types are only checked for form (the caller answers NOT_FOUND).
void CheckTenant(FieldViolations& violations, const std::string& path, const v1::Tenant& tenant,
                 const std::function<int(absl::string_view)>* type_gpus) {
  CheckRequiredUuid(violations, Child(path, "id"), tenant.id(), "the tenant");
  CheckOrg(violations, Child(path, "org"), tenant.org());
  CheckMaxLength(violations, Child(path, "name"), tenant.name(), kMaxOrgLength);
  absl::flat_hash_map<std::string, std::string> seen_types;
  for (int i = 0; i < tenant.quotas_size(); ++i) {
    const v1::Quota& quota = tenant.quotas(i);
    const std::string quota_path = Index(Child(path, "quotas"), i);
    const std::string type_path = Child(quota_path, "instance_type_id");
    CheckRequiredUuid(violations, type_path, quota.instance_type_id(), "an instance type");
    const std::string site_path = Child(quota_path, "site_id");
    CheckOptionalUuid(violations, site_path, quota.site_id());
    // One entry per (instance type, site): a fleet-wide one (site_id empty) and per-site ones
    // may be given for the same type.
    if (!quota.instance_type_id().empty() && !violations.Has(type_path)) {
      auto [it, inserted] = seen_types.emplace(
          absl::StrCat(Key(quota.instance_type_id()), "/", Key(quota.site_id())), quota_path);
      if (!inserted) {
        violations.Add(type_path,
                       absl::StrCat(quota_path, " repeats the quota for instance type ",
                                    Quote(quota.instance_type_id()),
                                    quota.site_id().empty()
                                        ? std::string(" for all sites")
                                        : absl::StrCat(" in site ", Quote(quota.site_id())),
                                    " of ", it->second,
                                    ": give each (instance type, site_id) one quota"));
      }
    }
    if (type_gpus != nullptr && !violations.Has(type_path) &&
        (*type_gpus)(quota.instance_type_id()) == 0) {
      violations.Add(type_path, absl::StrCat(type_path, " ", Quote(quota.instance_type_id()),
                                             " names no instance type of the fleet or the "
                                             "inventory: add it to instance_types"));
    }
    if (quota.max_machines() < 0) {
      violations.Add(
          Child(quota_path, "max_machines"),
          absl::StrCat(Child(quota_path, "max_machines"),
                       " must be 0 or more (0 forbids the type), got ", quota.max_machines()));
    }
  }
  if (tenant.priority() < kMinTenantPriority || tenant.priority() > kMaxTenantPriority) {
    const std::string priority_path = Child(path, "priority");
    violations.Add(priority_path,
                   absl::StrCat(priority_path, " must be between ", kMinTenantPriority, " and ",
                                kMaxTenantPriority, " (higher is scheduled first, 0 is the "
                                "default), got ", tenant.priority()));
  }
}

void CheckFleet(FieldViolations& violations, const std::string& prefix, const v1::Fleet& fleet,
                const ValidationContext& context) {
  if (fleet.instance_types().empty() && fleet.domains().empty() && fleet.machines().empty() &&
      fleet.tenants().empty() && !fleet.has_default_spare_machines()) {
    violations.Add(prefix.empty() ? "instance_types" : prefix,
                   "the fleet is empty: give at least one instance type, domain, machine or "
                   "tenant, or default_spare_machines");
    return;
  }
  if (fleet.has_default_spare_machines() && fleet.default_spare_machines() < 0) {
    const std::string field = Child(prefix, "default_spare_machines");
    violations.Add(field, absl::StrCat(field, " must be 0 or more (spare trays per NVLink "
                                       "domain), got ", fleet.default_spare_machines()));
  }
  // Instance types: id -> gpus_per_machine (0 while invalid), for machines and quotas below.
  absl::flat_hash_map<std::string, int> type_gpus;
  absl::flat_hash_map<std::string, std::string> seen_ids;
  absl::flat_hash_map<std::string, std::string> seen_names;
  for (int i = 0; i < fleet.instance_types_size(); ++i) {
    const v1::InstanceType& type = fleet.instance_types(i);
    const std::string path = Index(Child(prefix, "instance_types"), i);
    CheckRequiredUuid(violations, Child(path, "id"), type.id(), "the instance type");
    CheckUnique(violations, seen_ids, Child(path, "id"), type.id(), "instance type id");
    CheckName(violations, Child(path, "name"), type.name(), 1, kMaxTypeNameLength,
              /*required=*/true);
    CheckUnique(violations, seen_names, Child(path, "name"), type.name(), "instance type name");
    CheckName(violations, Child(path, "gpu_model"), type.gpu_model(), 1, kMaxGpuModelLength,
              /*required=*/true);
    const int gpus = type.gpus_per_machine();
    if (gpus < 1 || gpus > kMaxGpusPerMachine) {
      violations.Add(Child(path, "gpus_per_machine"),
                     absl::StrCat(Child(path, "gpus_per_machine"), " must be between 1 and ",
                                  kMaxGpusPerMachine, ", got ", gpus));
    }
    if (type.gpu_memory_mib() < 0) {
      violations.Add(
          Child(path, "gpu_memory_mib"),
          absl::StrCat(Child(path, "gpu_memory_mib"),
                       " must be the MiB of one GPU, 0 or more, got ", type.gpu_memory_mib()));
    }
    CheckPrice(violations, Child(path, "price_per_hour"), type.price_per_hour());
    CheckPrice(violations, Child(path, "spot_hourly_price"), type.spot_hourly_price());
    CheckMaxLength(violations, Child(path, "interconnect"), type.interconnect(),
                   kMaxTypeNameLength);
    if (IsUuid(type.id())) {
      type_gpus.emplace(Key(type.id()), gpus >= 1 && gpus <= kMaxGpusPerMachine ? gpus : 0);
    }
  }
  // The fleet's own types win over the inventory's: ApplyFleet upserts them.
  const std::function<int(absl::string_view)> lookup_type_gpus = [&](absl::string_view id) {
    auto it = type_gpus.find(Key(id));
    if (it != type_gpus.end()) return it->second > 0 ? it->second : -1;  // -1: known, invalid
    return context.known_instance_type_gpus ? context.known_instance_type_gpus(id) : 0;
  };

  absl::flat_hash_set<std::string> domains;
  seen_ids.clear();
  for (int i = 0; i < fleet.domains_size(); ++i) {
    const v1::Domain& domain = fleet.domains(i);
    const std::string path = Index(Child(prefix, "domains"), i);
    CheckRequiredUuid(violations, Child(path, "id"), domain.id(), "the NVLink domain");
    CheckUnique(violations, seen_ids, Child(path, "id"), domain.id(), "domain id");
    CheckName(violations, Child(path, "name"), domain.name(), 1, kMaxTypeNameLength,
              /*required=*/false);
    CheckOptionalUuid(violations, Child(path, "site_id"), domain.site_id());
    if (!v1::DomainState_IsValid(domain.state())) {
      violations.Add(Child(path, "state"),
                     absl::StrCat(Child(path, "state"), " must be DOMAIN_STATE_READY, "
                                  "DOMAIN_STATE_DEGRADED or DOMAIN_STATE_MAINTENANCE, got ",
                                  domain.state()));
    }
    CheckMaxLength(violations, Child(path, "state_reason"), domain.state_reason(),
                   kMaxDescriptionLength);
    if (domain.has_spare_machines() && domain.spare_machines() < 0) {
      const std::string field = Child(path, "spare_machines");
      violations.Add(field, absl::StrCat(field, " must be 0 or more (omit it for the fleet's "
                                         "default_spare_machines), got ",
                                         domain.spare_machines()));
    }
    if (IsUuid(domain.id())) domains.insert(Key(domain.id()));
  }

  seen_ids.clear();
  absl::flat_hash_map<std::pair<std::string, int>, std::string> trays;  // (domain, tray) -> path
  std::vector<std::pair<std::string, int>> machines_per_domain;         // in first-seen order
  absl::flat_hash_map<std::string, size_t> domain_slot;
  for (int i = 0; i < fleet.machines_size(); ++i) {
    const v1::Machine& machine = fleet.machines(i);
    const std::string path = Index(Child(prefix, "machines"), i);
    CheckRequiredUuid(violations, Child(path, "id"), machine.id(), "the machine");
    CheckUnique(violations, seen_ids, Child(path, "id"), machine.id(), "machine id");

    const std::string domain_path = Child(path, "domain_id");
    CheckRequiredUuid(violations, domain_path, machine.domain_id(), "its NVLink domain");
    const std::string domain = Key(machine.domain_id());
    const bool domain_ok = !violations.Has(domain_path);
    if (domain_ok && !domains.contains(domain) &&
        !(context.known_domain && context.known_domain(machine.domain_id()))) {
      violations.Add(domain_path, absl::StrCat(domain_path, " ", Quote(machine.domain_id()),
                                               " names no domain of the fleet or the inventory: "
                                               "add it to domains"));
    }

    const std::string type_path = Child(path, "instance_type_id");
    CheckRequiredUuid(violations, type_path, machine.instance_type_id(), "its instance type");
    const int gpus = violations.Has(type_path) ? -1 : lookup_type_gpus(machine.instance_type_id());
    if (gpus == 0) {
      violations.Add(type_path, absl::StrCat(type_path, " ", Quote(machine.instance_type_id()),
                                             " names no instance type of the fleet or the "
                                             "inventory: add it to instance_types"));
    }
    const std::string count_path = Child(path, "gpu_count");
    if (gpus > 0 && machine.gpu_count() != gpus) {
      violations.Add(count_path, absl::StrCat(count_path,
                                              " must equal gpus_per_machine of its "
                                              "instance type (",
                                              gpus, "), got ", machine.gpu_count()));
    } else if (machine.gpu_count() < 1 || machine.gpu_count() > kMaxGpusPerMachine) {
      violations.Add(count_path, absl::StrCat(count_path, " must be between 1 and ",
                                              kMaxGpusPerMachine, ", got ", machine.gpu_count()));
    }

    const std::string tray_path = Child(path, "tray_index");
    if (machine.tray_index() < 0) {
      violations.Add(tray_path,
                     absl::StrCat(tray_path, " must be 0 or more, got ", machine.tray_index()));
    } else if (domain_ok) {
      auto [it, inserted] = trays.emplace(std::make_pair(domain, machine.tray_index()), path);
      if (!inserted) {
        violations.Add(tray_path, absl::StrCat(tray_path, " ", machine.tray_index(),
                                               " is already taken by ", it->second,
                                               " in the same domain: trays must be unique "
                                               "within a domain"));
      }
    }
    if (domain_ok) {
      auto [slot, inserted] = domain_slot.emplace(domain, machines_per_domain.size());
      if (inserted) machines_per_domain.emplace_back(machine.domain_id(), 0);
      ++machines_per_domain[slot->second].second;
    }
    CheckMachineState(violations, Child(path, "state"), machine.state(),
                      /*allow_unspecified=*/true);
    CheckMaxLength(violations, Child(path, "state_reason"), machine.state_reason(),
                   kMaxDescriptionLength);
    CheckLabels(violations, Child(path, "labels"), machine.labels());
  }
  for (const auto& [domain_id, count] : machines_per_domain) {
    if (count > kMaxMachinesPerDomain) {
      violations.Add(
          Child(prefix, "machines"),
          absl::StrCat("domain ", domain_id, " has ", count, " machines in the fleet, at most ",
                       kMaxMachinesPerDomain, " (NVL576) are allowed in one NVLink domain"));
    }
  }

  seen_ids.clear();
  for (int i = 0; i < fleet.tenants_size(); ++i) {
    const std::string path = Index(Child(prefix, "tenants"), i);
    CheckTenant(violations, path, fleet.tenants(i), &lookup_type_gpus);
    CheckUnique(violations, seen_ids, Child(path, "id"), fleet.tenants(i).id(), "tenant id");
  }
}

}  // namespace

absl::Status ValidateFleet(const v1::Fleet& fleet, const ValidationContext& context) {
  FieldViolations violations;
  CheckWireTypes(violations, "", fleet);
  CheckFleet(violations, "", fleet, context);
  return violations.ToStatus("Fleet");
}

absl::Status ValidateApplyFleetRequest(const v1::ApplyFleetRequest& request,
                                       const ValidationContext& context) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckFleet(violations, "fleet", request.fleet(), context);
  return violations.ToStatus("ApplyFleetRequest");
}

absl::Status ValidateSetMachineStateRequest(const v1::SetMachineStateRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckRequiredUuid(violations, "id", request.id(), "the machine");
  CheckMachineState(violations, "state", request.state(), /*allow_unspecified=*/false);
  CheckMaxLength(violations, "reason", request.reason(), kMaxDescriptionLength);
  return violations.ToStatus("SetMachineStateRequest");
}

absl::Status ValidateSetDomainStateRequest(const v1::SetDomainStateRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckRequiredUuid(violations, "domain_id", request.domain_id(), "the NVLink domain");
  if (!v1::DomainState_IsValid(request.state()) ||
      request.state() == v1::DOMAIN_STATE_UNSPECIFIED) {
    violations.Add("state", absl::StrCat("state must be DOMAIN_STATE_READY, DOMAIN_STATE_DEGRADED "
                                         "or DOMAIN_STATE_MAINTENANCE, got ",
                                         v1::DomainState_IsValid(request.state())
                                             ? v1::DomainState_Name(request.state())
                                             : absl::StrCat(request.state())));
  }
  CheckMaxLength(violations, "reason", request.reason(), kMaxDescriptionLength);
  return violations.ToStatus("SetDomainStateRequest");
}

absl::Status ValidateCompleteCleaningRequest(const v1::CompleteCleaningRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  if (request.machine_ids().empty()) {
    violations.Add("machine_ids", "machine_ids is required: the machines that were wiped");
  }
  if (request.machine_ids_size() > kMaxBatchDeleteIds) {
    violations.Add("machine_ids", absl::StrCat("machine_ids lists ", request.machine_ids_size(),
                                               " machines; at most ", kMaxBatchDeleteIds, " per call"));
  }
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < request.machine_ids_size() && i < kMaxBatchDeleteIds; ++i) {
    const std::string path = absl::StrCat("machine_ids[", i, "]");
    CheckRequiredUuid(violations, path, request.machine_ids(i), "the machine");
    // Only a valid id is compared: an invalid one is reported above, and quoting it again
    // could make the answer as large as the request.
    if (!violations.Has(path) && !seen.insert(request.machine_ids(i)).second) {
      violations.Add(path, absl::StrCat("machine ", request.machine_ids(i),
                                        " is listed more than once; list each once"));
    }
  }
  CheckMaxLength(violations, "reason", request.reason(), kMaxDescriptionLength);
  if (request.failed() && request.reason().empty()) {
    violations.Add("reason", "reason is required with failed: say why the wipe failed (it "
                             "becomes the machine's state_reason in MAINTENANCE)");
  }
  return violations.ToStatus("CompleteCleaningRequest");
}

absl::Status ValidateUpsertTenantRequest(const v1::UpsertTenantRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  if (!request.has_tenant()) {
    violations.Add("tenant",
                   "tenant is required: the tenant to create or replace (id, org, "
                   "quotas)");
  } else {
    CheckTenant(violations, "tenant", request.tenant(), nullptr);
  }
  return violations.ToStatus("UpsertTenantRequest");
}

absl::Status ValidateListTenantsRequest(const v1::ListTenantsRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  if (!request.org().empty()) CheckOrg(violations, "org", request.org());
  return violations.ToStatus("ListTenantsRequest");
}

absl::Status ValidateRemoveMachineRequest(const v1::RemoveMachineRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckRequiredUuid(violations, "id", request.id(), "the machine");
  return violations.ToStatus("RemoveMachineRequest");
}

absl::Status ValidateGetMachineRequest(const v1::GetMachineRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckRequiredUuid(violations, "id", request.id(), "the machine");
  return violations.ToStatus("GetMachineRequest");
}

absl::Status ValidateListMachinesRequest(const v1::ListMachinesRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckOptionalUuid(violations, "domain_id", request.domain_id());
  CheckOptionalUuid(violations, "instance_type_id", request.instance_type_id());
  CheckMachineState(violations, "state", request.state(), /*allow_unspecified=*/true,
                    /*allow_cleaning=*/true);
  CheckPageSize(violations, "page_size", request.page_size());
  return violations.ToStatus("ListMachinesRequest");
}

absl::Status ValidateListDomainsRequest(const v1::ListDomainsRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckOptionalUuid(violations, "site_id", request.site_id());
  return violations.ToStatus("ListDomainsRequest");
}

absl::Status ValidateListOffersRequest(const v1::ListOffersRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckMaxLength(violations, "gpu_type", request.gpu_type(), kMaxGpuModelLength);
  CheckOptionalUuid(violations, "site_id", request.site_id());
  if (request.gpu_count() < 0 || request.gpu_count() > kMaxGpusPerMachine) {
    violations.Add("gpu_count", absl::StrCat("gpu_count must be between 0 and ", kMaxGpusPerMachine,
                                             " (0 means any), got ", request.gpu_count()));
  }
  if (!request.sort().empty() && request.sort() != "price") {
    violations.Add("sort",
                   absl::StrCat("sort must be empty or \"price\", got ", Quote(request.sort())));
  }
  return violations.ToStatus("ListOffersRequest");
}

}  // namespace nvlsched::daemon
