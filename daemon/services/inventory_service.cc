#include "daemon/services/inventory_service.h"

#include "daemon/api/convert.h"
#include "daemon/api/validation.h"
#include "daemon/engine/inventory_ops.h"

namespace nvlsched::daemon {
namespace {

// prepare() of a request with nothing to check on the gRPC thread.
template <typename Req>
auto AsIs(const Req* req) {
  return [req]() -> absl::StatusOr<const Req*> { return req; };
}

}  // namespace

grpc::ServerUnaryReactor* InventoryServiceImpl::ApplyFleet(grpc::CallbackServerContext* ctx,
                                                           const v1::ApplyFleetRequest* req,
                                                           v1::ApplyFleetResponse* resp) {
  // Validated by the op: a fleet may reference records already in the inventory.
  return calls_.Write(ctx, {"ApplyFleet", Permission::kInventoryWrite}, "", "", AsIs(req),
                      [resp](State& state, const v1::ApplyFleetRequest* r) {
                        return daemon::ApplyFleet(state, *r, resp);
                      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListMachines(grpc::CallbackServerContext* ctx,
                                                             const v1::ListMachinesRequest* req,
                                                             v1::ListMachinesResponse* resp) {
  return calls_.Read(ctx, {"ListMachines", Permission::kInventoryRead}, "",
                     Validated(req, &ValidateListMachinesRequest),
                     [resp](const State& state, const v1::ListMachinesRequest* r) {
                       return daemon::ListMachines(state, *r, resp);
                     });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::GetMachine(grpc::CallbackServerContext* ctx,
                                                           const v1::GetMachineRequest* req,
                                                           v1::Machine* resp) {
  return calls_.Read(ctx, {"GetMachine", Permission::kInventoryRead}, "",
                     [req]() -> absl::StatusOr<std::string> {
                       if (absl::Status s = ValidateGetMachineRequest(*req); !s.ok()) return s;
                       return req->id();
                     },
                     [resp](const State& state, const std::string& id) {
                       return daemon::GetMachine(state, id, resp);
                     });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::SetMachineState(
    grpc::CallbackServerContext* ctx, const v1::SetMachineStateRequest* req, v1::Machine* resp) {
  return calls_.Write(ctx, {"SetMachineState", Permission::kInventoryWrite}, "", "",
                      [req]() -> absl::StatusOr<MachineStateChange> {
                        if (absl::Status s = ValidateSetMachineStateRequest(*req); !s.ok()) {
                          return s;
                        }
                        return MachineStateChange{req->id(), ToCore(req->state()),
                                                  req->reason()};
                      },
                      [resp](State& state, const MachineStateChange& change) {
                        return daemon::SetMachineState(state, change, resp);
                      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::SetDomainState(
    grpc::CallbackServerContext* ctx, const v1::SetDomainStateRequest* req, v1::Domain* resp) {
  return calls_.Write(ctx, {"SetDomainState", Permission::kInventoryWrite}, "", "",
                      Validated(req, &ValidateSetDomainStateRequest),
                      [resp](State& state, const v1::SetDomainStateRequest* r) {
                        return daemon::SetDomainState(state, *r, resp);
                      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::CompleteCleaning(
    grpc::CallbackServerContext* ctx, const v1::CompleteCleaningRequest* req,
    v1::CompleteCleaningResponse* resp) {
  return calls_.Write(ctx, {"CompleteCleaning", Permission::kInventoryWrite}, "", "",
                      Validated(req, &ValidateCompleteCleaningRequest),
                      [resp](State& state, const v1::CompleteCleaningRequest* r) {
                        return daemon::CompleteCleaning(state, *r, resp);
                      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::RemoveMachine(grpc::CallbackServerContext* ctx,
                                                              const v1::RemoveMachineRequest* req,
                                                              v1::RemoveMachineResponse* resp) {
  return calls_.Write(ctx, {"RemoveMachine", Permission::kInventoryWrite}, "", "",
                      [req]() -> absl::StatusOr<std::string> {
                        if (absl::Status s = ValidateRemoveMachineRequest(*req); !s.ok()) return s;
                        return req->id();
                      },
                      [resp](State& state, const std::string& id) {
                        return daemon::RemoveMachine(state, id, resp);
                      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListDomains(grpc::CallbackServerContext* ctx,
                                                            const v1::ListDomainsRequest* req,
                                                            v1::ListDomainsResponse* resp) {
  return calls_.Read(ctx, {"ListDomains", Permission::kInventoryRead}, "",
                     Validated(req, &ValidateListDomainsRequest),
                     [resp](const State& state, const v1::ListDomainsRequest* r) {
                       return daemon::ListDomains(state, *r, resp);
                     });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListInstanceTypes(
    grpc::CallbackServerContext* ctx, const v1::ListInstanceTypesRequest* req,
    v1::ListInstanceTypesResponse* resp) {
  return calls_.Read(ctx, {"ListInstanceTypes", Permission::kCatalogRead}, "", AsIs(req),
                     [resp](const State& state, const v1::ListInstanceTypesRequest* r) {
                       return daemon::ListInstanceTypes(state, *r, resp);
                     });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::UpsertTenant(grpc::CallbackServerContext* ctx,
                                                             const v1::UpsertTenantRequest* req,
                                                             v1::Tenant* resp) {
  return calls_.Write(ctx, {"UpsertTenant", Permission::kInventoryWrite}, "", "",
                      Validated(req, &ValidateUpsertTenantRequest),
                      [resp](State& state, const v1::UpsertTenantRequest* r) {
                        return daemon::UpsertTenant(state, *r, resp);
                      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListTenants(grpc::CallbackServerContext* ctx,
                                                            const v1::ListTenantsRequest* req,
                                                            v1::ListTenantsResponse* resp) {
  return calls_.Read(ctx, {"ListTenants", Permission::kTenantRead}, req->org(),
                     Validated(req, &ValidateListTenantsRequest),
                     [resp](const State& state, const v1::ListTenantsRequest* r) {
                       return daemon::ListTenants(state, *r, resp);
                     });
}

}  // namespace nvlsched::daemon
