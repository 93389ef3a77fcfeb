// The instance operations of the API as engine ops: each runs on the engine thread against
// State, records the rows it changed, and fills the response. No gRPC here, so they are tested
// directly; daemon/instance_service.cc wraps them in handlers.
//
// Every write plans first (tenant, type, quota, placement) and changes nothing if planning
// fails; then it applies the placement, records the instances and, when the request carries a
// request_id, the idempotency record, all in the same commit.
//
// Errors (DESIGN.md "Errors"):
//   INVALID_ARGUMENT   a field that needs state to check (device_instance vs the type's GPUs,
//                      gpu_count vs the machine) — with a google.rpc.BadRequest
//   NOT_FOUND          unknown tenant, instance type or instance (and another org's instance:
//                      it is invisible, not forbidden)
//   PERMISSION_DENIED  the tenant belongs to another org
//   RESOURCE_EXHAUSTED no capacity now (ErrorInfo INSUFFICIENT_CAPACITY) or quota (QuotaFailure)
//   ALREADY_EXISTS     request_id reused with a different body; a name already taken
//   FAILED_PRECONDITION the type costs more than max_price_per_hour
//
// Thread-safety: engine thread only.
#ifndef NVLSCHED_DAEMON_INSTANCE_OPS_H_
#define NVLSCHED_DAEMON_INSTANCE_OPS_H_

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "daemon/change_builder.h"
#include "daemon/state.h"
#include "nvlsched/v1/instance_service.pb.h"

namespace nvlsched::daemon {

// What an op needs besides State: the clock reading and the random source for ids/names.
struct OpContext {
  absl::Time now;
  absl::BitGenRef rng;
};

absl::Status BatchCreateInstances(State& state, ChangeBuilder& changes, const OpContext& ctx,
                                  const v1::BatchCreateInstancesRequest& req,
                                  v1::BatchCreateInstancesResponse* resp);
absl::Status CreateInstance(State& state, ChangeBuilder& changes, const OpContext& ctx,
                            const v1::CreateInstanceRequest& req, v1::Instance* resp);
absl::Status UpdateInstanceStatus(State& state, ChangeBuilder& changes, const OpContext& ctx,
                                  const v1::UpdateInstanceStatusRequest& req, v1::Instance* resp);
absl::Status DeleteInstance(State& state, ChangeBuilder& changes, const OpContext& ctx,
                            const v1::DeleteInstanceRequest& req, v1::DeleteInstanceResponse* resp);
absl::Status BatchDeleteInstances(State& state, ChangeBuilder& changes, const OpContext& ctx,
                                  const v1::BatchDeleteInstancesRequest& req,
                                  v1::BatchDeleteInstancesResponse* resp);

// Reads.
absl::Status GetInstance(const State& state, const v1::GetInstanceRequest& req, v1::Instance* resp);
absl::Status ListInstances(const State& state, const v1::ListInstancesRequest& req,
                           v1::ListInstancesResponse* resp);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_INSTANCE_OPS_H_
