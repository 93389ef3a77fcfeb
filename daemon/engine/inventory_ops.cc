// InventoryService writes (declared in inventory_ops.h). Reads are in inventory_reads.cc.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "allocator/string_view_compat.h"
#include "absl/strings/str_join.h"
#include "daemon/api/convert.h"
#include "daemon/engine/rows.h"
#include "daemon/api/field_violations.h"
#include "daemon/engine/inventory_ops.h"
#include "daemon/api/status_mapping.h"
#include "daemon/api/validation.h"
#include "google/rpc/error_details.pb.h"

namespace nvlsched::daemon {
namespace {

// `status` with "<path> (id <id>): " in front of its message, payloads kept.
absl::Status WithPath(const absl::Status& status, absl::string_view path, absl::string_view id) {
  absl::Status out(status.code(), absl::StrCat(path, " (id ", id, "): ", status.message()));
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

// The reason of a drained machine that waits for its wipe when it is set READY.
constexpr char kUndrainedUnwiped[] =
    "cleaning: READY was asked, but its last instance left while it was drained and it has "
    "not been reported wiped; CompleteCleaning when wiped";

absl::Status MachineNotFound(absl::string_view id) {
  return ResourceNotFoundError(
      kMachineResource, id,
      absl::StrCat("machine ", id, " does not exist; ListMachines shows the known machines"));
}

// After the fleet's domains, machines and default are in: every domain the fleet names, or
// every domain when it sets the default, must keep at least one placeable machine of each
// type it has (spares < machines), or nothing new could ever be placed there.
// INVALID_ARGUMENT with one field violation per offending setting.
absl::Status CheckSpares(const allocator::Allocator& alloc, const v1::Fleet& fleet) {
  FieldViolations violations;
  auto check = [&](allocator::DomainIndex d, const std::string& field) {
    const int32_t spares = alloc.EffectiveSpareMachines(d);
    if (spares == 0) return;
    alloc.ForEachInstanceType([&](const allocator::InstanceType& type) {
      const int total = alloc.DomainTotalMachines(alloc.TypeIndexOf(type.id), d);
      if (total == 0 || spares < total || violations.Has(field)) return;
      violations.Add(field, absl::StrCat(
          field, " leaves NVLink domain ", alloc.DomainAt(d).id, " ", spares,
          " spare trays but it has only ", total, " ", type.id,
          " machines: spares must be fewer than the domain's machines, or nothing new could be "
          "placed there"));
    });
  };
  for (int i = 0; i < fleet.domains_size(); ++i) {
    const allocator::DomainIndex d = alloc.DomainIndexOf(fleet.domains(i).id());
    if (d == allocator::kNoIndex) continue;
    check(d, fleet.domains(i).has_spare_machines()
                 ? absl::StrCat("fleet.domains[", i, "].spare_machines")
                 : std::string("fleet.default_spare_machines"));
  }
  if (fleet.has_default_spare_machines()) {
    for (allocator::DomainIndex d = 0; d < alloc.domain_count(); ++d) {
      if (!alloc.DomainAt(d).spare_machines.has_value()) check(d, "fleet.default_spare_machines");
    }
  }
  return violations.ToStatus("ApplyFleetRequest");
}

// The fleet's records in dependency order: types, domains, machines, tenants. Each record
// that differs from what the allocator holds is upserted (State records the change).
absl::Status UpsertFleet(State& state, const v1::Fleet& fleet) {
  const allocator::Allocator& alloc = state.allocator();
  for (int i = 0; i < fleet.instance_types_size(); ++i) {
    allocator::InstanceType type = ToCore(fleet.instance_types(i));
    const allocator::InstanceType* before = alloc.FindInstanceType(type.id);
    if (before != nullptr && ToRow(*before) == ToRow(type)) continue;
    if (absl::Status s = state.UpsertInstanceType(type); !s.ok()) {
      return WithPath(s, absl::StrCat("fleet.instance_types[", i, "]"), type.id);
    }
  }
  for (int i = 0; i < fleet.domains_size(); ++i) {
    allocator::Domain domain = ToCore(fleet.domains(i));
    if (const allocator::Domain* before = alloc.FindDomain(domain.id);
        before != nullptr && fleet.domains(i).state() == v1::DOMAIN_STATE_UNSPECIFIED) {
      // As for machines: re-applying a fleet leaves an operator's domain state alone.
      domain.state = before->state;
      domain.state_reason = before->state_reason;
    }
    const allocator::Domain* before = alloc.FindDomain(domain.id);
    if (before != nullptr && ToRow(*before) == ToRow(domain)) continue;
    if (absl::Status s = state.UpsertDomain(domain); !s.ok()) {
      return WithPath(s, absl::StrCat("fleet.domains[", i, "]"), domain.id);
    }
  }
  for (int i = 0; i < fleet.machines_size(); ++i) {
    const v1::Machine& proto = fleet.machines(i);
    allocator::Machine machine = ToCore(proto);
    const allocator::Machine* before = alloc.FindMachine(machine.id);
    if (before != nullptr && proto.state() == v1::MACHINE_STATE_UNSPECIFIED) {
      // A fleet that does not state a machine's state leaves it as it is: re-applying the
      // seed fleet must not undrain machines an operator drained.
      machine.state = before->state;
      machine.state_reason = before->state_reason;
    }
    // Only CompleteCleaning says a machine was wiped; a fleet file does not: a machine
    // waiting for its wipe that the fleet says is READY stays (or, drained, becomes) CLEANING.
    if (before != nullptr) machine.wipe_pending = before->wipe_pending;
    if (machine.wipe_pending && machine.state == allocator::MachineState::kReady) {
      machine.state = allocator::MachineState::kCleaning;
      machine.state_reason = before->state == allocator::MachineState::kCleaning
                                 ? before->state_reason
                                 : std::string(kUndrainedUnwiped);
    }
    if (before != nullptr && ToRow(*before) == ToRow(machine)) continue;
    if (absl::Status s = state.UpsertMachine(machine); !s.ok()) {
      return WithPath(s, absl::StrCat("fleet.machines[", i, "]"), machine.id);
    }
  }
  if (fleet.has_default_spare_machines()) {
    if (absl::Status s = state.SetDefaultSpareMachines(fleet.default_spare_machines()); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckSpares(alloc, fleet); !s.ok()) return s;
  for (int i = 0; i < fleet.tenants_size(); ++i) {
    allocator::Tenant tenant = ToCore(fleet.tenants(i));
    const allocator::Tenant* before = alloc.FindTenant(tenant.id);
    if (before != nullptr && ToRow(*before) == ToRow(tenant)) continue;
    if (absl::Status s = state.UpsertTenant(tenant); !s.ok()) {
      return WithPath(s, absl::StrCat("fleet.tenants[", i, "]"), tenant.id);
    }
  }
  return absl::OkStatus();
}

}  // namespace

MachineHolding HoldingOf(const State& state, absl::string_view machine_id) {
  MachineHolding holding;
  state.allocator().ForEachInstance([&](allocator::InstanceHandle handle,
                                        const allocator::InstanceClaim& claim) {
    if (claim.machine_id != machine_id) return;
    holding.instance_ids.push_back(state.InstanceIdOf(handle));
    if (claim.whole_machine) {
      holding.whole = true;
    } else {
      holding.granular_gpus += claim.gpu_count;
    }
  });
  std::sort(holding.instance_ids.begin(), holding.instance_ids.end());
  return holding;
}

v1::Machine MachineView(const allocator::Machine& machine, const MachineHolding& holding) {
  v1::Machine view = ToProto(machine);
  const bool ready = machine.state == allocator::MachineState::kReady;
  view.set_free_gpus(ready && !holding.whole ? machine.gpu_count - holding.granular_gpus : 0);
  for (const std::string& id : holding.instance_ids) view.add_instance_ids(id);
  return view;
}

absl::Status ApplyFleet(State& state, const v1::ApplyFleetRequest& req,
                        v1::ApplyFleetResponse* resp) {
  const allocator::Allocator& alloc = state.allocator();
  // Validated here rather than on the gRPC thread: references may resolve to records already
  // in the inventory, which only the engine thread may read.
  ValidationContext context;
  context.known_instance_type_gpus = [&alloc](absl::string_view id) {
    const allocator::InstanceType* type = alloc.FindInstanceType(allocator::StdView(id));
    return type == nullptr ? 0 : type->gpus_per_machine;
  };
  context.known_domain = [&alloc](absl::string_view id) {
    return alloc.FindDomain(allocator::StdView(id)) != nullptr;
  };
  if (absl::Status s = ValidateApplyFleetRequest(req, context); !s.ok()) return s;

  const State::JournalMark mark = state.Mark();
  if (absl::Status s = UpsertFleet(state, req.fleet()); !s.ok()) {
    // All or nothing: put back what the records before the failing one changed.
    state.RollbackTo(mark);
    absl::Status out(s.code(), absl::StrCat(s.message(), "; nothing of the fleet was applied"));
    s.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
      out.SetPayload(url, payload);
    });
    return out;
  }
  resp->set_instance_types(req.fleet().instance_types_size());
  resp->set_domains(req.fleet().domains_size());
  resp->set_machines(req.fleet().machines_size());
  resp->set_tenants(req.fleet().tenants_size());
  return absl::OkStatus();
}

absl::Status SetMachineState(State& state, const MachineStateChange& req, v1::Machine* resp) {
  const allocator::Allocator& alloc = state.allocator();
  const allocator::Machine* machine = alloc.FindMachine(req.id);
  if (machine == nullptr) return MachineNotFound(req.id);
  if (machine->state == allocator::MachineState::kCleaning &&
      req.state == allocator::MachineState::kReady) {
    return absl::FailedPreconditionError(absl::StrCat(
        "machine ", req.id, " is CLEANING: its last instance was deleted and it has not been "
        "reported wiped; InventoryService/CompleteCleaning makes it READY (a drain to "
        "MAINTENANCE or ERROR is allowed)"));
  }
  allocator::MachineState next = req.state;
  std::string reason = req.reason;
  if (machine->wipe_pending && next == allocator::MachineState::kReady) {
    // Drained while held and not wiped since its last instance left: the drain ends, the
    // wipe does not get skipped.
    next = allocator::MachineState::kCleaning;
    reason = absl::StrCat(kUndrainedUnwiped, req.reason.empty() ? "" : " (", req.reason,
                          req.reason.empty() ? "" : ")");
  }
  if (machine->state != next || machine->state_reason != reason) {
    if (absl::Status s = state.SetMachineState(req.id, next, reason); !s.ok()) return s;
    machine = alloc.FindMachine(req.id);
  }
  *resp = MachineView(*machine, HoldingOf(state, req.id));
  return absl::OkStatus();
}

absl::Status SetDomainState(State& state, const v1::SetDomainStateRequest& req, v1::Domain* resp) {
  const allocator::Allocator& alloc = state.allocator();
  const allocator::Domain* domain = alloc.FindDomain(req.domain_id());
  if (domain == nullptr) {
    return ResourceNotFoundError(kDomainResource, req.domain_id(),
                                 absl::StrCat("NVLink domain ", req.domain_id(),
                                              " does not exist; ListDomains shows them"));
  }
  const allocator::DomainState next = ToCore(req.state());
  if (domain->state != next || domain->state_reason != req.reason()) {
    if (absl::Status s = state.SetDomainState(req.domain_id(), next, req.reason()); !s.ok()) {
      return s;
    }
  }
  *resp = ToProto(*alloc.FindDomain(req.domain_id()));
  return absl::OkStatus();
}

absl::Status CompleteCleaning(State& state, const v1::CompleteCleaningRequest& req,
                              v1::CompleteCleaningResponse* resp) {
  const allocator::Allocator& alloc = state.allocator();
  for (const std::string& id : req.machine_ids()) {
    const allocator::Machine* machine = alloc.FindMachine(id);
    if (machine == nullptr) return MachineNotFound(id);
    if (!machine->wipe_pending) {
      return absl::FailedPreconditionError(absl::StrCat(
          "machine ", id, " is ", std::string(allocator::MachineStateName(machine->state)),
          ", not CLEANING, and waits for no wipe: only a machine whose last instance left "
          "(CLEANING, or drained with wipe_pending) waits for CompleteCleaning; nothing was "
          "changed"));
    }
  }
  for (const std::string& id : req.machine_ids()) {
    // Wiped: a CLEANING machine is READY again; a drained one stays drained (its drain is
    // the operator's to end). Failed: MAINTENANCE with the reason (an ERROR machine stays
    // ERROR). Either way it no longer waits for a wipe.
    allocator::Machine machine = *alloc.FindMachine(id);
    const bool cleaning = machine.state == allocator::MachineState::kCleaning;
    if (cleaning) {
      machine.state = req.failed() ? allocator::MachineState::kMaintenance
                                   : allocator::MachineState::kReady;
    }
    if (req.failed()) {
      machine.state_reason = absl::StrCat("cleaning failed: ", req.reason());
    } else if (cleaning) {
      machine.state_reason = req.reason();
    }
    machine.wipe_pending = false;
    if (absl::Status s = state.UpsertMachine(machine); !s.ok()) return s;
    *resp->add_machines() = MachineView(*alloc.FindMachine(id), HoldingOf(state, id));
  }
  return absl::OkStatus();
}

absl::Status RemoveMachine(State& state, const std::string& id, v1::RemoveMachineResponse* resp) {
  const allocator::Allocator& alloc = state.allocator();
  const allocator::Machine* machine = alloc.FindMachine(id);
  if (machine == nullptr) return MachineNotFound(id);
  MachineHolding holding = HoldingOf(state, id);
  if (!holding.instance_ids.empty()) {
    absl::Status status = absl::FailedPreconditionError(absl::StrCat(
        "machine ", id, " is held by ", holding.instance_ids.size(), " instance(s): ",
        absl::StrJoin(holding.instance_ids, ", "),
        "; delete them first (DeleteInstance), or drain the machine with SetMachineState "
        "MAINTENANCE so nothing new is placed on it"));
    google::rpc::PreconditionFailure failure;
    for (const std::string& id : holding.instance_ids) {
      google::rpc::PreconditionFailure::Violation* v = failure.add_violations();
      v->set_type("HELD");
      v->set_subject(absl::StrCat("instance:", id));
      v->set_description(absl::StrCat("instance ", id, " holds machine ", id));
    }
    AttachErrorDetail(status, failure);
    return status;
  }
  *resp->mutable_machine() = MachineView(*machine, holding);
  if (absl::Status s = state.RemoveMachine(id); !s.ok()) return s;
  return absl::OkStatus();
}

absl::Status UpsertTenant(State& state, const v1::UpsertTenantRequest& req, v1::Tenant* resp) {
  const allocator::Allocator& alloc = state.allocator();
  const v1::Tenant& proto = req.tenant();
  FieldViolations unknown_types;
  std::string first_unknown;
  std::string first_path;
  for (int i = 0; i < proto.quotas_size(); ++i) {
    const std::string& type_id = proto.quotas(i).instance_type_id();
    if (alloc.FindInstanceType(type_id) != nullptr) continue;
    const std::string path = Child(Index("tenant.quotas", i), "instance_type_id");
    unknown_types.Add(path, absl::StrCat(path, " \"", type_id, "\" names no instance type: add "
                                         "the type with ApplyFleet first (ListInstanceTypes shows "
                                         "the known ones)"));
    if (first_unknown.empty()) {
      first_unknown = type_id;
      first_path = path;
    }
  }
  if (!unknown_types.empty()) {
    absl::Status status = ResourceNotFoundError(
        kInstanceTypeResource, first_unknown,
        absl::StrCat("instance type ", first_unknown, " named by ", first_path,
                     unknown_types.size() > 1
                         ? absl::StrCat(" (and ", unknown_types.size() - 1, " more quota(s))")
                         : std::string(),
                     " does not exist; add it with ApplyFleet first, or drop the quota "
                     "(ListInstanceTypes shows the known types)"));
    if (auto bad_request =
            GetErrorDetail<google::rpc::BadRequest>(unknown_types.ToStatus("UpsertTenantRequest"))) {
      AttachErrorDetail(status, *bad_request);
    }
    return status;
  }
  allocator::Tenant tenant = ToCore(proto);
  const allocator::Tenant* before = alloc.FindTenant(tenant.id);
  if (before == nullptr || ToRow(*before) != ToRow(tenant)) {
    if (absl::Status s = state.UpsertTenant(tenant); !s.ok()) return s;
  }
  *resp = ToProto(*alloc.FindTenant(tenant.id));
  return absl::OkStatus();
}

}  // namespace nvlsched::daemon
