// The InventoryService operations as engine ops: each runs on the engine thread against
// State, changes it through State's change methods (one record of each change), and fills the
// reply. daemon/services/inventory_service.cc queues them.
//
// ApplyFleet and UpsertTenant take the API request itself: their validation needs the
// inventory (a fleet may reference records already in it), which only the engine thread may
// read. The other ops take core requests.
//
// Writes plan before they change anything where the allocator allows it; ApplyFleet, which
// upserts many records, instead takes a journal mark and rolls back to it on any failure, so
// a fleet is applied all or nothing (the engine would also roll back a failed op).
// A row is recorded only when it actually changed, so re-applying the same fleet commits
// nothing.
//
// Machines are shown with two read-only fields the allocator does not store per machine:
// instance_ids (every instance on it, sorted) and free_gpus (GPUs a GPU-granular instance could
// take now: 0 unless READY and not held whole). They are computed from the instances, O(live
// instances) per call.
//
// Errors (DESIGN.md "Errors"; messages say what is wrong and what to do):
//   ApplyFleet       INVALID_ARGUMENT (validation.h's fleet rules, BadRequest at fleet.*);
//                    any error of the allocator's Upsert* with the record's path prepended,
//                    e.g. "fleet.machines[3] (id ...): tray index 2 in domain ... is already
//                    taken" (INVALID_ARGUMENT), "... is held by ..." (FAILED_PRECONDITION).
//   GetMachine, SetMachineState, RemoveMachine
//                    NOT_FOUND with ResourceInfo{nvlsched.v1.Machine, id}.
//   RemoveMachine    FAILED_PRECONDITION while held: names every holder and attaches a
//                    google.rpc.PreconditionFailure (type "HELD", subject "instance:<id>").
//   UpsertTenant     NOT_FOUND for a quota naming an unknown instance type, with
//                    ResourceInfo{nvlsched.v1.InstanceType, first unknown id} and a BadRequest
//                    violation at tenant.quotas[i].instance_type_id for each unknown one.
//   ListMachines     INVALID_ARGUMENT (BadRequest at page_token) for a token this server did
//                    not issue.
//
// Thread-safety: engine thread only.
#ifndef NVLSCHED_DAEMON_ENGINE_INVENTORY_OPS_H_
#define NVLSCHED_DAEMON_ENGINE_INVENTORY_OPS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "allocator/allocator.h"
#include "daemon/engine/state.h"
#include "nvlsched/v1/inventory_service.pb.h"

namespace nvlsched::daemon {

inline constexpr int kDefaultMachinePageSize = 100;

// Who holds one machine.
struct MachineHolding {
  std::vector<std::string> instance_ids;  // sorted
  int32_t granular_gpus = 0;              // GPUs held by GPU-granular instances
  bool whole = false;                     // held by a whole-machine instance
};

// Every instance on `machine_id`. Cost: O(live instances).
MachineHolding HoldingOf(const State& state, absl::string_view machine_id);

// The machine as the API shows it, with free_gpus and instance_ids from `holding`.
v1::Machine MachineView(const allocator::Machine& machine, const MachineHolding& holding);

// SetMachineState as the engine runs it.
struct MachineStateChange {
  std::string id;
  allocator::MachineState state = allocator::MachineState::kReady;
  std::string reason;
};

// Writes.
absl::Status ApplyFleet(State& state, const v1::ApplyFleetRequest& req,
                        v1::ApplyFleetResponse* resp);
// SetMachineState: READY is FAILED_PRECONDITION for a CLEANING machine; for a drained machine
// that waits for a wipe (wipe_pending) it ends the drain into CLEANING, not READY.
absl::Status SetMachineState(State& state, const MachineStateChange& req, v1::Machine* resp);
absl::Status RemoveMachine(State& state, const std::string& id, v1::RemoveMachineResponse* resp);
// SetDomainState: NOT_FOUND for an unknown domain. Answers the domain as ListDomains shows it.
absl::Status SetDomainState(State& state, const v1::SetDomainStateRequest& req, v1::Domain* resp);
// CompleteCleaning: every machine must wait for a wipe (wipe_pending: CLEANING, or drained
// when its last instance left; NOT_FOUND, FAILED_PRECONDITION otherwise, and then nothing
// changes). Each stops waiting: a CLEANING one goes READY, or MAINTENANCE when the wipe failed;
// a drained one stays drained (failed: MAINTENANCE stays, ERROR stays, reason "cleaning
// failed: ...").
absl::Status CompleteCleaning(State& state, const v1::CompleteCleaningRequest& req,
                              v1::CompleteCleaningResponse* resp);
absl::Status UpsertTenant(State& state, const v1::UpsertTenantRequest& req, v1::Tenant* resp);

// Reads.
// Machines in id order, filtered by domain, instance type and state; page_token is the
// web-safe base64 of the last id returned. Unknown filter ids give an empty page.
absl::Status ListMachines(const State& state, const v1::ListMachinesRequest& req,
                          v1::ListMachinesResponse* resp);
absl::Status GetMachine(const State& state, const std::string& id, v1::Machine* resp);
// Domains in insertion order with total/free machines over every instance type.
absl::Status ListDomains(const State& state, const v1::ListDomainsRequest& req,
                         v1::ListDomainsResponse* resp);
absl::Status ListInstanceTypes(const State& state, const v1::ListInstanceTypesRequest& req,
                               v1::ListInstanceTypesResponse* resp);
// Tenants in insertion order, filtered by org (exact match).
absl::Status ListTenants(const State& state, const v1::ListTenantsRequest& req,
                         v1::ListTenantsResponse* resp);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_INVENTORY_OPS_H_
