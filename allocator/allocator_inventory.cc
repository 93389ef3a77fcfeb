// Allocator: inventory changes (instance types, domains, machines, tenants). Each method
// validates everything first, then changes state and journals the inverse.
#include <string>

#include "absl/strings/str_cat.h"
#include "allocator/string_view_compat.h"
#include "allocator/allocator.h"
#include "allocator/fleet_state.h"
#include "allocator/undo_journal.h"

namespace nvlsched::allocator {
namespace {

bool ValidState(MachineState state) {
  return state == MachineState::kReady || state == MachineState::kMaintenance ||
         state == MachineState::kError || state == MachineState::kCleaning;
}

bool SameStructure(const MachineRecord& rec, DomainIndex d, TypeIndex t, const Machine& spec) {
  return rec.domain == d && rec.type == t && rec.spec.tray_index == spec.tray_index &&
         rec.spec.gpu_count == spec.gpu_count;
}

std::string DescribeHolders(const FleetState& s, const MachineRecord& rec) {
  if (rec.whole_claim != kNoIndex) {
    return absl::StrCat("instance ", s.InstanceName(rec.whole_claim));
  }
  return absl::StrCat(rec.granular_claims, " GPU-granular instance(s) holding ", rec.granular_gpus,
                      " GPUs");
}

}  // namespace

absl::Status Allocator::UpsertInstanceType(const InstanceType& type) {
  FleetState& s = *state_;
  if (type.id.empty()) return absl::InvalidArgumentError("instance type id must not be empty");
  if (type.gpus_per_machine < 1 || type.gpus_per_machine > kMaxGpusPerMachine) {
    return absl::InvalidArgumentError(absl::StrCat(
        "instance type ", type.id, " has gpus_per_machine ", type.gpus_per_machine,
        "; it must be 1..", kMaxGpusPerMachine));
  }
  if (type.price_per_hour_micros < 0 || type.gpu_memory_mib < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "instance type ", type.id, " has a negative price or GPU memory; both must be >= 0"));
  }
  TypeIndex t = s.FindType(type.id);
  if (t != kNoIndex && type.gpus_per_machine != s.types[t].spec.gpus_per_machine &&
      s.type_states[t].total_machines > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "instance type ", type.id, " has ", s.type_states[t].total_machines,
        " machines; gpus_per_machine can change only while no machine has the type"));
  }
  ++version_;
  if (t == kNoIndex) {
    journal_->Push(UndoKind::kTypeAdded, s.AppendType(type));
    return absl::OkStatus();
  }
  journal_->Save(s.types[t].spec);
  journal_->Push(UndoKind::kTypeChanged, t);
  s.types[t].spec = type;
  return absl::OkStatus();
}

absl::Status Allocator::UpsertDomain(const Domain& domain) {
  FleetState& s = *state_;
  if (domain.id.empty()) return absl::InvalidArgumentError("domain id must not be empty");
  if (domain.spare_machines.has_value() &&
      (*domain.spare_machines < 0 || *domain.spare_machines > kMaxMachinesPerDomain)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "domain ", domain.id, " has spare_machines ", *domain.spare_machines, "; it must be 0..",
        kMaxMachinesPerDomain));
  }
  DomainIndex d = s.FindDomain(domain.id);
  ++version_;
  if (d == kNoIndex) {
    journal_->Push(UndoKind::kDomainAdded, s.AppendDomain(domain));
    return absl::OkStatus();
  }
  journal_->Save(s.domains[d].spec);
  journal_->Push(UndoKind::kDomainChanged, d);
  s.SetDomainSpec(d, domain);
  return absl::OkStatus();
}

absl::Status Allocator::SetDefaultSpareMachines(int32_t spares) {
  FleetState& s = *state_;
  if (spares < 0 || spares > kMaxMachinesPerDomain) {
    return absl::InvalidArgumentError(absl::StrCat(
        "default_spare_machines is ", spares, "; it must be 0..", kMaxMachinesPerDomain));
  }
  if (spares == s.default_spares) return absl::OkStatus();
  ++version_;
  journal_->Push(UndoKind::kDefaultSparesChanged, static_cast<uint32_t>(s.default_spares));
  s.SetDefaultSpares(spares);
  return absl::OkStatus();
}

int32_t Allocator::default_spare_machines() const { return state_->default_spares; }

int32_t Allocator::EffectiveSpareMachines(DomainIndex d) const {
  return d < state_->domains.size() ? state_->EffectiveSpares(d) : 0;
}

absl::Status Allocator::SetDomainState(std::string_view domain_id, DomainState state,
                                       std::string_view reason) {
  FleetState& s = *state_;
  DomainIndex d = s.FindDomain(domain_id);
  if (d == kNoIndex) {
    return absl::NotFoundError(
        absl::StrCat("domain \"", AbslView(domain_id), "\" is not known; ListDomains shows them"));
  }
  ++version_;
  Domain spec = s.domains[d].spec;
  journal_->Save(spec);
  journal_->Push(UndoKind::kDomainChanged, d);
  spec.state = state;
  spec.state_reason = std::string(reason);
  s.SetDomainSpec(d, spec);
  return absl::OkStatus();
}

absl::Status Allocator::ValidateMachine(const Machine& machine, MachineIndex existing) const {
  const FleetState& s = *state_;
  if (machine.id.empty()) return absl::InvalidArgumentError("machine id must not be empty");
  if (!ValidState(machine.state)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "machine ", machine.id, " has an unknown state; use READY, MAINTENANCE or ERROR"));
  }
  if (machine.wipe_pending && machine.state == MachineState::kReady) {
    return absl::InvalidArgumentError(absl::StrCat(
        "machine ", machine.id, " is READY but waits for a wipe (wipe_pending); a machine "
        "waiting for a wipe is CLEANING, MAINTENANCE or ERROR"));
  }
  if (machine.tray_index < 0) {
    return absl::InvalidArgumentError(absl::StrCat("machine ", machine.id, " has tray_index ",
                                                   machine.tray_index, "; it must be >= 0"));
  }
  DomainIndex d = s.FindDomain(machine.domain_id);
  if (d == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("domain \"", machine.domain_id, "\" of machine ",
                                            machine.id, " is not known; add the domain first"));
  }
  TypeIndex t = s.FindType(machine.instance_type_id);
  if (t == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("instance type \"", machine.instance_type_id,
                                            "\" of machine ", machine.id,
                                            " is not known; add the instance type first"));
  }
  int32_t per_machine = s.types[t].spec.gpus_per_machine;
  if (machine.gpu_count < 1 || machine.gpu_count > per_machine) {
    return absl::InvalidArgumentError(absl::StrCat(
        "machine ", machine.id, " has gpu_count ", machine.gpu_count, "; instance type ",
        s.TypeName(t), " allows 1..", per_machine, " GPUs per machine"));
  }
  if (existing != kNoIndex) {
    const MachineRecord& rec = s.machines[existing];
    if (SameStructure(rec, d, t, machine)) return absl::OkStatus();
    if (rec.held()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "machine ", machine.id, " is held by ", DescribeHolders(s, rec),
          "; its domain, tray index, instance type and GPU count can change only while "
          "nothing holds it (state and labels can change any time)"));
    }
  }
  const std::vector<MachineIndex>& order = s.domains[d].machines_by_tray;
  for (MachineIndex x : order) {
    if (x != existing && s.machines[x].spec.tray_index == machine.tray_index) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tray index ", machine.tray_index, " in domain ", s.DomainName(d),
          " is already taken by machine ", s.machines[x].spec.id, "; tray indices are unique "
          "within a domain"));
    }
  }
  bool joins_domain = existing == kNoIndex || s.machines[existing].domain != d;
  if (joins_domain && order.size() >= static_cast<size_t>(kMaxMachinesPerDomain)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "domain ", s.DomainName(d), " already has ", order.size(),
        " machines, the most an NVLink domain holds; put machine ", machine.id,
        " in another domain"));
  }
  return absl::OkStatus();
}

void Allocator::SetMachineSpec(MachineIndex m, const Machine& spec) {
  FleetState& s = *state_;
  MachineRecord& rec = s.machines[m];
  DomainIndex d = s.FindDomain(spec.domain_id);
  TypeIndex t = s.FindType(spec.instance_type_id);
  bool structural = !SameStructure(rec, d, t, spec);
  if (structural) {
    s.UnlinkMachine(m);
  } else {
    s.RemoveContribution(m);
  }
  // Every field but the id, whose characters the id map views.
  rec.spec.domain_id = spec.domain_id;
  rec.spec.tray_index = spec.tray_index;
  rec.spec.instance_type_id = spec.instance_type_id;
  rec.spec.gpu_count = spec.gpu_count;
  rec.spec.state = spec.state;
  rec.spec.state_reason = spec.state_reason;
  rec.spec.labels = spec.labels;
  rec.spec.wipe_pending = spec.wipe_pending;
  rec.domain = d;
  rec.type = t;
  if (structural) {
    s.LinkMachine(m);
  } else {
    s.AddContribution(m);
    s.SyncCell(t, d);
  }
}

absl::Status Allocator::UpsertMachine(const Machine& given) {
  FleetState& s = *state_;
  MachineIndex existing = s.FindMachine(given.id);
  if (absl::Status status = ValidateMachine(given, existing); !status.ok()) return status;
  const bool cleaning = given.state == MachineState::kCleaning;
  Machine with_wipe;
  if (cleaning && !given.wipe_pending) {
    with_wipe = given;
    with_wipe.wipe_pending = true;  // a CLEANING machine waits for its wipe by definition
  }
  const Machine& machine = cleaning && !given.wipe_pending ? with_wipe : given;
  ++version_;
  if (existing != kNoIndex) {
    journal_->Save(s.machines[existing].spec);
    journal_->Push(UndoKind::kMachineChanged, existing);
    SetMachineSpec(existing, machine);
    return absl::OkStatus();
  }
  MachineIndex m = s.machine_slots.Allocate(s.machines);
  MachineRecord& rec = s.machines[m];
  rec = MachineRecord{};
  rec.spec = machine;
  rec.live = true;
  rec.domain = s.FindDomain(machine.domain_id);
  rec.type = s.FindType(machine.instance_type_id);
  s.machine_by_id.Insert(rec.spec.id, m);
  s.LinkMachine(m);
  journal_->Push(UndoKind::kMachineAdded, m);
  return absl::OkStatus();
}

absl::Status Allocator::SetMachineState(std::string_view machine_id, MachineState state,
                                        std::string_view reason) {
  FleetState& s = *state_;
  MachineIndex m = s.FindMachine(machine_id);
  if (m == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("machine \"", AbslView(machine_id), "\" is not known"));
  }
  if (!ValidState(state)) {
    return absl::InvalidArgumentError("unknown machine state; use READY, MAINTENANCE or ERROR");
  }
  Machine spec = s.machines[m].spec;
  spec.state = state;
  spec.state_reason = std::string(reason);
  // READY ends a pending wipe (the daemon sets READY only once the wipe was reported);
  // CLEANING is one.
  if (state == MachineState::kReady) spec.wipe_pending = false;
  if (state == MachineState::kCleaning) spec.wipe_pending = true;
  ++version_;
  journal_->Save(s.machines[m].spec);
  journal_->Push(UndoKind::kMachineChanged, m);
  SetMachineSpec(m, spec);
  return absl::OkStatus();
}

absl::Status Allocator::RemoveMachine(std::string_view machine_id) {
  FleetState& s = *state_;
  MachineIndex m = s.FindMachine(machine_id);
  if (m == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("machine \"", AbslView(machine_id), "\" is not known"));
  }
  MachineRecord& rec = s.machines[m];
  if (rec.held()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "machine ", rec.spec.id, " is held by ", DescribeHolders(s, rec),
        "; delete those instances first (or drain it with MAINTENANCE)"));
  }
  ++version_;
  s.UnlinkMachine(m);
  s.machine_by_id.Erase(rec.spec.id);
  rec.live = false;
  s.machine_slots.Release(m);
  journal_->Push(UndoKind::kMachineRemoved, m);
  return absl::OkStatus();
}

void Allocator::SetTenantSpec(TenantIndex t, const Tenant& spec) {
  state_->tenants[t].spec = spec;
  state_->SetTenantQuota(t);
}

absl::Status Allocator::UpsertTenant(const Tenant& tenant) {
  FleetState& s = *state_;
  if (tenant.id.empty()) return absl::InvalidArgumentError("tenant id must not be empty");
  for (const auto& [type_id, max_machines] : tenant.quota) {
    if (s.FindType(type_id) == kNoIndex) {
      return absl::NotFoundError(absl::StrCat("tenant ", tenant.id, " has a quota for instance type \"",
                                              type_id, "\", which is not known; add the instance type first"));
    }
    if (max_machines < 0) {
      return absl::InvalidArgumentError(absl::StrCat("tenant ", tenant.id, " has quota ", max_machines,
                                                     " for instance type ", type_id, "; it must be >= 0"));
    }
  }
  for (const auto& [key, max_machines] : tenant.site_quota) {
    if (s.FindType(key.first) == kNoIndex) {
      return absl::NotFoundError(absl::StrCat("tenant ", tenant.id, " has a quota in site ",
                                              key.second, " for instance type \"", key.first,
                                              "\", which is not known; add the instance type first"));
    }
    if (key.second.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tenant ", tenant.id, " has a per-site quota with an empty site; an entry for all "
          "sites goes in the fleet-wide quota"));
    }
    if (max_machines < 0) {
      return absl::InvalidArgumentError(absl::StrCat("tenant ", tenant.id, " has quota ", max_machines,
                                                     " for instance type ", key.first, " in site ",
                                                     key.second, "; it must be >= 0"));
    }
  }
  TenantIndex t = s.FindTenant(tenant.id);
  ++version_;
  if (t == kNoIndex) {
    t = static_cast<TenantIndex>(s.tenants.size());
    s.tenants.emplace_back();
    s.tenant_by_id.emplace(tenant.id, t);
    SetTenantSpec(t, tenant);
    journal_->Push(UndoKind::kTenantAdded, t);
    return absl::OkStatus();
  }
  journal_->Save(s.tenants[t].spec);
  journal_->Push(UndoKind::kTenantChanged, t);
  SetTenantSpec(t, tenant);
  return absl::OkStatus();
}

}  // namespace nvlsched::allocator
