// daemon/api — the wire rules (validation, conversion, status mapping, fleets): what tools/ and bench/ link.
//
// Request validation for every request of InstanceService, InventoryService and
// CapacityService: the rules of the seed batch-create API (shared/seeds/000_*.txt) and of
// nvlsched's additions, checked on the proto alone, before anything is looked up.
//
// Each function returns OK or INVALID_ARGUMENT. The message lists every violation
// ("invalid BatchCreateInstancesRequest: count must be between 2 and 18, got 20; ..."), and a
// google.rpc.BadRequest with one FieldViolation per bad field (paths such as `count`,
// `interfaces[1].ip_address`, `labels["k"]`) is attached as a payload under
// kBadRequestTypeUrl (field_violations.h); ToGrpcStatus (status_mapping.h) turns it into gRPC
// error details.
//
// What is NOT checked here, because it needs state the caller owns:
//   - whether ids exist (tenant, instance type, instance, machine, domain): the caller answers
//     NOT_FOUND with ResourceInfo; for an unknown instance type it never sets
//     instance_type_gpus, so device_instance bounds are then left to the caller;
//   - whether the org owns the tenant (PERMISSION_DENIED), page_token validity, whether an
//     operating system allows user_data or is of iPXE type, the VPC's virtualization type;
//   - for a Fleet: whether a machine's tray or a domain's machine count collides with
//     machines already in the inventory but absent from the fleet (ApplyFleet upserts).
//
// Choices where the seed is ambiguous (see also the comments in validation.cc):
//   - virtual_function_id "must be specified if isPhysical is false": is_physical is optional
//     in the API, so an explicit false without a virtual function is INVALID_ARGUMENT at
//     interfaces[i].virtual_function_id (and infiniband_interfaces[i]...); an absent
//     is_physical states nothing and requires none. A negative one is never valid.
//   - UUIDs are accepted in any version but only in lower case (RFC 4122's printed form): ids
//     are compared exactly downstream, so an upper-case id is INVALID_ARGUMENT naming the field
//     rather than validating here and then being NOT_FOUND (or, in a fleet, a reference that
//     validation resolved and the allocator did not).
//   - A known field that arrived with the wrong wire type (CheckWireTypes) is INVALID_ARGUMENT
//     at its path; unknown field numbers are ignored.
//   - Instance, batch and machine ids are UUIDs (the seed's Instance.id is format: uuid).
//   - A single CreateInstance may omit networking (vpc_id and interfaces) and the operating
//     system: a GPU-granular instance is a slice of a machine another system networks. If it
//     names interfaces it must name vpc_id. Batches follow the seed: both required.
//
// Thread-safety: pure functions of their arguments; the callbacks in ValidationContext are
// called on the calling thread only.
#ifndef NVLSCHED_DAEMON_API_VALIDATION_H_
#define NVLSCHED_DAEMON_API_VALIDATION_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "allocator/model.h"
#include "nvlsched/v1/capacity_service.pb.h"
#include "nvlsched/v1/instance_service.pb.h"
#include "nvlsched/v1/inventory_service.pb.h"

namespace nvlsched::daemon {

// Limits of the API that are not per-call context.
inline constexpr int kMaxInterfaces = 16;
inline constexpr int kMinNamePrefixLength = 2;
inline constexpr int kMaxNamePrefixLength = 240;  // leaves room for "-" and a 6-char suffix
inline constexpr int kMinInstanceNameLength = 2;
inline constexpr int kMaxInstanceNameLength = 256;
// The allocator's limits are the API's: one number each, so a fleet the API accepts is one the
// allocator can hold.
inline constexpr int kMaxGpusPerMachine = allocator::kMaxGpusPerMachine;
inline constexpr int kMaxMachinesPerDomain = allocator::kMaxMachinesPerDomain;  // NVL576
inline constexpr int kMaxBatchDeleteIds = 1000;

// What validation needs to know beyond the request. All fields optional.
struct ValidationContext {
  // The largest batch (the daemon's --max_batch_count). BatchCreateInstances only.
  int max_batch_count = 18;
  // GPUs per machine of the request's instance type when the caller knows the type; 0 when
  // not (then nv_link_interfaces[].device_instance and gpu_count get no upper bound here:
  // the engine checks them with ValidateInstanceTypeFit once it has found the type).
  // BatchCreateInstances and CreateInstance only.
  int instance_type_gpus = 0;
  // ApplyFleet/ValidateFleet only: the inventory the fleet is applied to. A machine or quota
  // may reference an instance type or domain that is in the fleet or known here; an unset
  // callback means the inventory is empty (a seed fleet). known_instance_type_gpus returns
  // the type's gpus_per_machine, or 0 when the id is unknown.
  std::function<int(absl::string_view instance_type_id)> known_instance_type_gpus;
  std::function<bool(absl::string_view domain_id)> known_domain;
};

// InstanceService.
absl::Status ValidateBatchCreateInstancesRequest(
    const nvlsched::v1::BatchCreateInstancesRequest& request, const ValidationContext& context);
absl::Status ValidateCreateInstanceRequest(const nvlsched::v1::CreateInstanceRequest& request,
                                           const ValidationContext& context);
// The rules of a create request that need its instance type, for the engine once it has found
// the type: the same rules, messages and field paths as the two functions above with
// ValidationContext::instance_type_gpus set (gpu_count at most the type's GPUs; each
// nv_link_interfaces[i].device_instance below them, unless gpu_count makes the instance
// GPU-granular, whose own bound was checked without the type).
struct InstanceTypeFit {
  absl::string_view request_name;  // "BatchCreateInstancesRequest" or "CreateInstanceRequest"
  int type_gpus = 0;               // the type's gpus_per_machine
  int gpu_count = 0;               // a single's gpu_count; 0 for a whole machine or a batch
  absl::Span<const int32_t> nvlink_device_instances;
};
absl::Status ValidateInstanceTypeFit(const InstanceTypeFit& fit);

absl::Status ValidateGetInstanceRequest(const nvlsched::v1::GetInstanceRequest& request);
absl::Status ValidateListInstancesRequest(const nvlsched::v1::ListInstancesRequest& request);
absl::Status ValidateUpdateInstanceStatusRequest(
    const nvlsched::v1::UpdateInstanceStatusRequest& request);
absl::Status ValidateDeleteInstanceRequest(const nvlsched::v1::DeleteInstanceRequest& request);
absl::Status ValidateReplaceInstanceRequest(const nvlsched::v1::ReplaceInstanceRequest& request);
absl::Status ValidateBatchDeleteInstancesRequest(
    const nvlsched::v1::BatchDeleteInstancesRequest& request);

// InventoryService.
absl::Status ValidateApplyFleetRequest(const nvlsched::v1::ApplyFleetRequest& request,
                                       const ValidationContext& context);
// The fleet alone, e.g. the --seed_fleet file: paths such as `machines[3].tray_index`
// (ValidateApplyFleetRequest reports the same problem at `fleet.machines[3].tray_index`).
// Every id a UUID, unique within its kind; every reference resolves within the fleet or
// through the context's callbacks; gpus_per_machine 1..kMaxGpusPerMachine; a machine's gpu_count equals its
// type's gpus_per_machine; tray_index >= 0 and unique within a domain; at most 144 machines
// of the fleet per domain; prices and quotas >= 0; tenants have an org. Read-only fields
// (Domain.total_machines/free_machines, Machine.free_gpus/instance_ids) are ignored.
absl::Status ValidateFleet(const nvlsched::v1::Fleet& fleet, const ValidationContext& context);
absl::Status ValidateSetMachineStateRequest(const nvlsched::v1::SetMachineStateRequest& request);
absl::Status ValidateSetDomainStateRequest(const nvlsched::v1::SetDomainStateRequest& request);
absl::Status ValidateCompleteCleaningRequest(const nvlsched::v1::CompleteCleaningRequest& request);
absl::Status ValidateUpsertTenantRequest(const nvlsched::v1::UpsertTenantRequest& request);
// org is optional (empty: every org's tenants), and when given must be a well-formed org.
absl::Status ValidateListTenantsRequest(const nvlsched::v1::ListTenantsRequest& request);
absl::Status ValidateRemoveMachineRequest(const nvlsched::v1::RemoveMachineRequest& request);
absl::Status ValidateGetMachineRequest(const nvlsched::v1::GetMachineRequest& request);
absl::Status ValidateListMachinesRequest(const nvlsched::v1::ListMachinesRequest& request);
absl::Status ValidateListDomainsRequest(const nvlsched::v1::ListDomainsRequest& request);

// CapacityService.
absl::Status ValidateListOffersRequest(const nvlsched::v1::ListOffersRequest& request);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_API_VALIDATION_H_
