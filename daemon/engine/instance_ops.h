// The instance operations of the API as engine ops: each runs on the engine thread against
// State with a core request (requests.h), changes State through its change methods (which
// record the change once) and fills the reply. daemon/services/instance_service.cc builds the
// core requests and queues these ops.
//
// Every write plans first (tenant, type, quota, placement) and changes nothing if planning
// fails; then it applies the placement, records the instances and, when the request carries a
// request_id, the idempotency record, all in the same commit.
//
// Errors (DESIGN.md "Errors"):
//   INVALID_ARGUMENT   a rule that needs the instance type (device_instance and gpu_count vs
//                      its GPUs: api/validation.h ValidateInstanceTypeFit), or a request no
//                      fleet state could satisfy ("infeasible") — with a google.rpc.BadRequest
//                      naming the field (count for a batch; instance_type_id for a single)
//   NOT_FOUND          unknown tenant, instance type or instance (and another org's instance:
//                      it is invisible, not forbidden)
//   PERMISSION_DENIED  the tenant belongs to another org
//   RESOURCE_EXHAUSTED no capacity now (ErrorInfo INSUFFICIENT_CAPACITY) or quota (QuotaFailure)
//   ALREADY_EXISTS     request_id reused with a different body; a name already taken
//   FAILED_PRECONDITION the type costs more than max_price_per_hour
//
// Thread-safety: engine thread only.
#ifndef NVLSCHED_DAEMON_ENGINE_INSTANCE_OPS_H_
#define NVLSCHED_DAEMON_ENGINE_INSTANCE_OPS_H_

#include <vector>

#include "absl/status/status.h"
#include "daemon/engine/record_ptr.h"
#include "daemon/engine/requests.h"
#include "daemon/engine/state.h"
#include "nvlsched/v1/instance_service.pb.h"

namespace nvlsched::daemon {

// Writes.
// With `created`, a request without a request id (nothing to remember) leaves
// resp->instances empty and appends the new records to *created instead, as State holds them
// (shared, not copied), in the answer's order: the caller copies them into the answer, off the
// engine thread. With a request id, or a validate_only request, they are in resp as always.
absl::Status BatchCreateInstances(State& state, const OpContext& ctx, const CreateRequest& req,
                                  v1::BatchCreateInstancesResponse* resp,
                                  std::vector<RecordPtr>* created = nullptr);
absl::Status CreateInstance(State& state, const OpContext& ctx, const CreateRequest& req,
                            v1::Instance* resp);
absl::Status UpdateInstanceStatus(State& state, const OpContext& ctx, const StatusUpdate& req,
                                  v1::Instance* resp);
// ReplaceInstance: NOT_FOUND (unknown or another org's instance), FAILED_PRECONDITION (it holds no
// machine, or no machine of its domain can take it). Answers the instance as it now is.
absl::Status ReplaceInstance(State& state, const OpContext& ctx, const ReplaceRequest& req,
                             v1::Instance* resp);
// The deleted instances' records, in the order of req.ids: as State held them (shared, not
// copied), or copied into messages.
absl::Status DeleteInstances(State& state, const DeleteRequest& req,
                             std::vector<RecordPtr>* deleted);
absl::Status DeleteInstances(State& state, const DeleteRequest& req,
                             google::protobuf::RepeatedPtrField<v1::Instance>* deleted);

// Reads.
absl::Status GetInstance(const State& state, const InstanceRef& req, v1::Instance* resp);
// ListInstances is served from the engine's committed view, off the engine thread:
// InstanceView::List (instance_view.h).

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_INSTANCE_OPS_H_
