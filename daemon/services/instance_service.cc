#include "daemon/services/instance_service.h"

#include "daemon/engine/instance_ops.h"
#include "daemon/services/instance_requests.h"

namespace nvlsched::daemon {

grpc::ServerUnaryReactor* InstanceServiceImpl::BatchCreateInstances(
    grpc::CallbackServerContext* ctx, const v1::BatchCreateInstancesRequest* req,
    v1::BatchCreateInstancesResponse* resp) {
  ValidationContext vctx;
  vctx.max_batch_count = options_.max_batch_count;
  return calls_.Write(
      ctx, {"BatchCreateInstances", Permission::kInstanceWrite}, req->org(), req->tenant_id(),
      [req, vctx] { return ToCreateRequest(*req, vctx); },
      [this, resp](State& state, const CreateRequest& core) {
        return daemon::BatchCreateInstances(state, NewOpContext(), core, resp);
      });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::CreateInstance(grpc::CallbackServerContext* ctx,
                                                              const v1::CreateInstanceRequest* req,
                                                              v1::Instance* resp) {
  return calls_.Write(
      ctx, {"CreateInstance", Permission::kInstanceWrite}, req->org(), req->tenant_id(),
      [req] { return ToCreateRequest(*req); },
      [this, resp](State& state, const CreateRequest& core) {
        return daemon::CreateInstance(state, NewOpContext(), core, resp);
      });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::UpdateInstanceStatus(
    grpc::CallbackServerContext* ctx, const v1::UpdateInstanceStatusRequest* req,
    v1::Instance* resp) {
  return calls_.Write(
      ctx, {"UpdateInstanceStatus", Permission::kInstanceStatus}, req->org(), "",
      [req] { return ToStatusUpdate(*req); },
      [this, resp](State& state, const StatusUpdate& core) {
        return daemon::UpdateInstanceStatus(state, NewOpContext(), core, resp);
      });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::DeleteInstance(grpc::CallbackServerContext* ctx,
                                                              const v1::DeleteInstanceRequest* req,
                                                              v1::DeleteInstanceResponse* resp) {
  return calls_.Write(
      ctx, {"DeleteInstance", Permission::kInstanceWrite}, req->org(), "",
      [req] { return ToDeleteRequest(*req); },
      [resp](State& state, const DeleteRequest& core) {
        google::protobuf::RepeatedPtrField<v1::Instance> deleted;
        if (absl::Status s = DeleteInstances(state, core, &deleted); !s.ok()) return s;
        *resp->mutable_instance() = std::move(deleted[0]);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::ReplaceInstance(
    grpc::CallbackServerContext* ctx, const v1::ReplaceInstanceRequest* req, v1::Instance* resp) {
  return calls_.Write(
      ctx, {"ReplaceInstance", Permission::kInstanceWrite}, req->org(), "",
      [req] { return ToReplaceRequest(*req); },
      [this, resp](State& state, const ReplaceRequest& core) {
        return daemon::ReplaceInstance(state, NewOpContext(), core, resp);
      });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::BatchDeleteInstances(
    grpc::CallbackServerContext* ctx, const v1::BatchDeleteInstancesRequest* req,
    v1::BatchDeleteInstancesResponse* resp) {
  return calls_.Write(
      ctx, {"BatchDeleteInstances", Permission::kInstanceWrite}, req->org(), "",
      [req] { return ToDeleteRequest(*req); },
      [resp](State& state, const DeleteRequest& core) {
        return DeleteInstances(state, core, resp->mutable_instances());
      });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::GetInstance(grpc::CallbackServerContext* ctx,
                                                           const v1::GetInstanceRequest* req,
                                                           v1::Instance* resp) {
  return calls_.Read(
      ctx, {"GetInstance", Permission::kInstanceRead}, req->org(),
      [req] { return ToInstanceRef(*req); },
      [resp](const State& state, const InstanceRef& core) {
        return daemon::GetInstance(state, core, resp);
      });
}

grpc::ServerUnaryReactor* InstanceServiceImpl::ListInstances(grpc::CallbackServerContext* ctx,
                                                             const v1::ListInstancesRequest* req,
                                                             v1::ListInstancesResponse* resp) {
  return calls_.ReadView(
      ctx, {"ListInstances", Permission::kInstanceRead}, req->org(),
      [req] { return ToInstanceQuery(*req); },
      [resp](const InstanceView& view, const InstanceQuery& core) {
        return view.List(core, resp);
      });
}

}  // namespace nvlsched::daemon
