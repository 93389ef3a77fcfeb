#include "daemon/instance_service.h"

#include "absl/time/clock.h"
#include "daemon/instance_ops.h"
#include "daemon/service_support.h"
#include "daemon/validation.h"

namespace nvlsched::daemon {

template <typename Op>
grpc::ServerUnaryReactor* InstanceServiceImpl::Write(grpc::CallbackServerContext* ctx,
                                                     CallInfo call, Op op) {
  return SubmitWriteCall(engine_, ctx, std::move(call),
                         [this, op = std::move(op)](State& state, ChangeBuilder& changes) mutable {
                           OpContext op_ctx{absl::Now(), rng_};
                           return op(state, changes, op_ctx);
                         });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::BatchCreateInstances(
    grpc::CallbackServerContext* ctx, const v1::BatchCreateInstancesRequest* req,
    v1::BatchCreateInstancesResponse* resp) {
  absl::StatusOr<CallInfo> call =
      BeginCall(*access_, ctx, "BatchCreateInstances", Permission::kInstanceWrite, req->org());
  if (!call.ok()) return FinishNow(ctx, call.status());
  call->tenant_id = req->tenant_id();
  ValidationContext vctx;
  vctx.max_batch_count = options_.max_batch_count;
  if (absl::Status s = ValidateBatchCreateInstancesRequest(*req, vctx); !s.ok()) return FinishNow(ctx, s);
  return Write(ctx, *std::move(call), [req, resp](State& state, ChangeBuilder& changes, const OpContext& op_ctx) {
    return daemon::BatchCreateInstances(state, changes, op_ctx, *req, resp);
  });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::CreateInstance(grpc::CallbackServerContext* ctx,
                                                              const v1::CreateInstanceRequest* req,
                                                              v1::Instance* resp) {
  absl::StatusOr<CallInfo> call =
      BeginCall(*access_, ctx, "CreateInstance", Permission::kInstanceWrite, req->org());
  if (!call.ok()) return FinishNow(ctx, call.status());
  call->tenant_id = req->tenant_id();
  if (absl::Status s = ValidateCreateInstanceRequest(*req, ValidationContext{}); !s.ok()) {
    return FinishNow(ctx, s);
  }
  return Write(ctx, *std::move(call), [req, resp](State& state, ChangeBuilder& changes, const OpContext& op_ctx) {
    return daemon::CreateInstance(state, changes, op_ctx, *req, resp);
  });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::UpdateInstanceStatus(
    grpc::CallbackServerContext* ctx, const v1::UpdateInstanceStatusRequest* req,
    v1::Instance* resp) {
  absl::StatusOr<CallInfo> call =
      BeginCall(*access_, ctx, "UpdateInstanceStatus", Permission::kInstanceStatus, req->org());
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateUpdateInstanceStatusRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return Write(ctx, *std::move(call), [req, resp](State& state, ChangeBuilder& changes, const OpContext& op_ctx) {
    return daemon::UpdateInstanceStatus(state, changes, op_ctx, *req, resp);
  });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::DeleteInstance(grpc::CallbackServerContext* ctx,
                                                              const v1::DeleteInstanceRequest* req,
                                                              v1::DeleteInstanceResponse* resp) {
  absl::StatusOr<CallInfo> call =
      BeginCall(*access_, ctx, "DeleteInstance", Permission::kInstanceWrite, req->org());
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateDeleteInstanceRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return Write(ctx, *std::move(call), [req, resp](State& state, ChangeBuilder& changes, const OpContext& op_ctx) {
    return daemon::DeleteInstance(state, changes, op_ctx, *req, resp);
  });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::BatchDeleteInstances(
    grpc::CallbackServerContext* ctx, const v1::BatchDeleteInstancesRequest* req,
    v1::BatchDeleteInstancesResponse* resp) {
  absl::StatusOr<CallInfo> call =
      BeginCall(*access_, ctx, "BatchDeleteInstances", Permission::kInstanceWrite, req->org());
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateBatchDeleteInstancesRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return Write(ctx, *std::move(call), [req, resp](State& state, ChangeBuilder& changes, const OpContext& op_ctx) {
    return daemon::BatchDeleteInstances(state, changes, op_ctx, *req, resp);
  });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::GetInstance(grpc::CallbackServerContext* ctx,
                                                           const v1::GetInstanceRequest* req,
                                                           v1::Instance* resp) {
  absl::StatusOr<CallInfo> call =
      BeginCall(*access_, ctx, "GetInstance", Permission::kInstanceRead, req->org());
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateGetInstanceRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return SubmitReadCall(engine_, ctx, [req, resp](const State& state) {
    return daemon::GetInstance(state, *req, resp);
  });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::ListInstances(grpc::CallbackServerContext* ctx,
                                                             const v1::ListInstancesRequest* req,
                                                             v1::ListInstancesResponse* resp) {
  absl::StatusOr<CallInfo> call =
      BeginCall(*access_, ctx, "ListInstances", Permission::kInstanceRead, req->org());
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (absl::Status s = ValidateListInstancesRequest(*req); !s.ok()) return FinishNow(ctx, s);
  return SubmitReadCall(engine_, ctx, [req, resp](const State& state) {
    return daemon::ListInstances(state, *req, resp);
  });
}

}  // namespace nvlsched::daemon
