#include "daemon/inventory_service.h"

#include "daemon/inventory_ops.h"
#include "daemon/service_support.h"
#include "daemon/validation.h"

namespace nvlsched::daemon {

grpc::ServerUnaryReactor* InventoryServiceImpl::ApplyFleet(grpc::CallbackServerContext* ctx,
                                                           const v1::ApplyFleetRequest* req,
                                                           v1::ApplyFleetResponse* resp) {
  absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, "ApplyFleet", Permission::kInventoryWrite, "");
  if (!call.ok()) return FinishNow(ctx, call.status());
  // Validated by the op: a fleet may reference records already in the inventory.
  return SubmitWriteCall(engine_, ctx, *std::move(call), [req, resp](State& state, ChangeBuilder& changes) {
    return daemon::ApplyFleet(state, changes, *req, resp);
  });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListMachines(grpc::CallbackServerContext* ctx,
                                                             const v1::ListMachinesRequest* req,
                                                             v1::ListMachinesResponse* resp) {
  absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, "ListMachines", Permission::kInventoryRead, "");
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateListMachinesRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return SubmitReadCall(engine_, ctx, [req, resp](const State& state) {
    return daemon::ListMachines(state, *req, resp);
  });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::GetMachine(grpc::CallbackServerContext* ctx,
                                                           const v1::GetMachineRequest* req,
                                                           v1::Machine* resp) {
  absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, "GetMachine", Permission::kInventoryRead, "");
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateGetMachineRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return SubmitReadCall(engine_, ctx, [req, resp](const State& state) {
    return daemon::GetMachine(state, *req, resp);
  });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::SetMachineState(
    grpc::CallbackServerContext* ctx, const v1::SetMachineStateRequest* req, v1::Machine* resp) {
  absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, "SetMachineState", Permission::kInventoryWrite, "");
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateSetMachineStateRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return SubmitWriteCall(engine_, ctx, *std::move(call), [req, resp](State& state, ChangeBuilder& changes) {
    return daemon::SetMachineState(state, changes, *req, resp);
  });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::RemoveMachine(grpc::CallbackServerContext* ctx,
                                                              const v1::RemoveMachineRequest* req,
                                                              v1::RemoveMachineResponse* resp) {
  absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, "RemoveMachine", Permission::kInventoryWrite, "");
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateRemoveMachineRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return SubmitWriteCall(engine_, ctx, *std::move(call), [req, resp](State& state, ChangeBuilder& changes) {
    return daemon::RemoveMachine(state, changes, *req, resp);
  });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListDomains(grpc::CallbackServerContext* ctx,
                                                            const v1::ListDomainsRequest* req,
                                                            v1::ListDomainsResponse* resp) {
  absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, "ListDomains", Permission::kInventoryRead, "");
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateListDomainsRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return SubmitReadCall(engine_, ctx, [req, resp](const State& state) {
    return daemon::ListDomains(state, *req, resp);
  });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListInstanceTypes(
    grpc::CallbackServerContext* ctx, const v1::ListInstanceTypesRequest* req,
    v1::ListInstanceTypesResponse* resp) {
  absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, "ListInstanceTypes", Permission::kCatalogRead, "");
  if (!call.ok()) return FinishNow(ctx, call.status());
  return SubmitReadCall(engine_, ctx, [req, resp](const State& state) {
    return daemon::ListInstanceTypes(state, *req, resp);
  });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::UpsertTenant(grpc::CallbackServerContext* ctx,
                                                             const v1::UpsertTenantRequest* req,
                                                             v1::Tenant* resp) {
  absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, "UpsertTenant", Permission::kInventoryWrite, "");
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateUpsertTenantRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return SubmitWriteCall(engine_, ctx, *std::move(call), [req, resp](State& state, ChangeBuilder& changes) {
    return daemon::UpsertTenant(state, changes, *req, resp);
  });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListTenants(grpc::CallbackServerContext* ctx,
                                                            const v1::ListTenantsRequest* req,
                                                            v1::ListTenantsResponse* resp) {
  absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, "ListTenants", Permission::kTenantRead, req->org());
  if (!call.ok()) return FinishNow(ctx, call.status());
  return SubmitReadCall(engine_, ctx, [req, resp](const State& state) {
    return daemon::ListTenants(state, *req, resp);
  });
}

}  // namespace nvlsched::daemon
