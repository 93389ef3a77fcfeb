// InventoryServiceImpl: nvlsched.v1.InventoryService over the engine — the machines, NVLink
// domains, instance types and tenants of the site. Each handler validates the request on the
// gRPC thread where no state is needed (validation.h), then queues the operation from
// daemon/engine/inventory_ops.h through the shared CallPath (unary_call.h); writes reply once
// durable, reads see only committed state.
//
// Errors per method (gRPC code; details as google.rpc messages; see inventory_ops.h):
//   ApplyFleet       INVALID_ARGUMENT + BadRequest (fleet.* paths; checked on the engine
//                    thread, since references may name records already in the inventory);
//                    FAILED_PRECONDITION / INVALID_ARGUMENT / NOT_FOUND from the allocator,
//                    message prefixed with the record's path. All or nothing.
//   ListMachines     INVALID_ARGUMENT + BadRequest (filter ids not UUIDs, page_size outside
//                    0..1000, a page_token this server did not issue).
//   GetMachine       INVALID_ARGUMENT (id); NOT_FOUND + ResourceInfo.
//   SetMachineState  INVALID_ARGUMENT (id, state UNSPECIFIED or unknown, reason too long);
//                    NOT_FOUND + ResourceInfo. Never evicts: holders keep the machine.
//   RemoveMachine    INVALID_ARGUMENT (id); NOT_FOUND + ResourceInfo; FAILED_PRECONDITION +
//                    PreconditionFailure naming every holding instance.
//   ListDomains      INVALID_ARGUMENT (site_id not a UUID).
//   ListInstanceTypes none.
//   UpsertTenant     INVALID_ARGUMENT + BadRequest (tenant missing, id, org, quotas, priority);
//                    NOT_FOUND + ResourceInfo + BadRequest for a quota on an unknown type.
//   ListTenants      none.
// Every method may also fail with the engine's UNAVAILABLE (shutting down, read-only after a
// failed commit), RESOURCE_EXHAUSTED (queue full) or DEADLINE_EXCEEDED (expired while queued).
//
// Thread-safety: handlers run on gRPC callback threads and never block.
#ifndef NVLSCHED_DAEMON_SERVICES_INVENTORY_SERVICE_H_
#define NVLSCHED_DAEMON_SERVICES_INVENTORY_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "daemon/auth/auth.h"
#include "daemon/engine/engine.h"
#include "daemon/services/unary_call.h"
#include "nvlsched/v1/inventory_service.grpc.pb.h"

namespace nvlsched::daemon {

class InventoryServiceImpl final : public v1::InventoryService::CallbackService {
 public:
  // `engine`, `access` and `replies` (optional: no reply budget) must outlive the service.
  InventoryServiceImpl(Engine* engine, const AccessControl* access,
                       ReplyBudget* replies = nullptr)
      : calls_(engine, access, replies) {}

  grpc::ServerUnaryReactor* ApplyFleet(grpc::CallbackServerContext* ctx,
                                       const v1::ApplyFleetRequest* req,
                                       v1::ApplyFleetResponse* resp) override;
  grpc::ServerUnaryReactor* ListMachines(grpc::CallbackServerContext* ctx,
                                         const v1::ListMachinesRequest* req,
                                         v1::ListMachinesResponse* resp) override;
  grpc::ServerUnaryReactor* GetMachine(grpc::CallbackServerContext* ctx,
                                       const v1::GetMachineRequest* req,
                                       v1::Machine* resp) override;
  grpc::ServerUnaryReactor* SetDomainState(grpc::CallbackServerContext* ctx,
                                           const v1::SetDomainStateRequest* req,
                                           v1::Domain* resp) override;
  grpc::ServerUnaryReactor* CompleteCleaning(grpc::CallbackServerContext* ctx,
                                             const v1::CompleteCleaningRequest* req,
                                             v1::CompleteCleaningResponse* resp) override;
  grpc::ServerUnaryReactor* SetMachineState(grpc::CallbackServerContext* ctx,
                                            const v1::SetMachineStateRequest* req,
                                            v1::Machine* resp) override;
  grpc::ServerUnaryReactor* RemoveMachine(grpc::CallbackServerContext* ctx,
                                          const v1::RemoveMachineRequest* req,
                                          v1::RemoveMachineResponse* resp) override;
  grpc::ServerUnaryReactor* ListDomains(grpc::CallbackServerContext* ctx,
                                        const v1::ListDomainsRequest* req,
                                        v1::ListDomainsResponse* resp) override;
  grpc::ServerUnaryReactor* ListInstanceTypes(grpc::CallbackServerContext* ctx,
                                              const v1::ListInstanceTypesRequest* req,
                                              v1::ListInstanceTypesResponse* resp) override;
  grpc::ServerUnaryReactor* UpsertTenant(grpc::CallbackServerContext* ctx,
                                         const v1::UpsertTenantRequest* req,
                                         v1::Tenant* resp) override;
  grpc::ServerUnaryReactor* ListTenants(grpc::CallbackServerContext* ctx,
                                        const v1::ListTenantsRequest* req,
                                        v1::ListTenantsResponse* resp) override;

 private:
  const CallPath calls_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_INVENTORY_SERVICE_H_
