#include "daemon/services/instance_service.h"

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/engine/instance_ops.h"
#include "daemon/services/instance_requests.h"

namespace nvlsched::daemon {
namespace {

// The fill of a write's answer (CallPath::WriteThenFill): copies `records` into `out` on the
// completion thread, once the commit is in; the fill is dropped there too, so a deleted record
// that State no longer holds is freed then, not on the engine thread.
CallPath::Fill CopyInto(google::protobuf::RepeatedPtrField<v1::Instance>* out,
                        std::vector<RecordPtr> records) {
  return [out, records = std::move(records)]() { AppendCopies(records, out); };
}

}  // namespace

grpc::ServerUnaryReactor* InstanceServiceImpl::BatchCreateInstances(
    grpc::CallbackServerContext* ctx, const v1::BatchCreateInstancesRequest* req,
    v1::BatchCreateInstancesResponse* resp) {
  ValidationContext vctx;
  vctx.max_batch_count = options_.max_batch_count;
  return calls_.WriteThenFill(
      ctx, {"BatchCreateInstances", Permission::kInstanceWrite}, req->org(), req->tenant_id(),
      [req, vctx] { return ToCreateRequest(*req, vctx); },
      [this, resp](State& state, const CreateRequest& core, CallPath::Fill* fill) {
        std::vector<RecordPtr> created;
        absl::Status s = daemon::BatchCreateInstances(state, NewOpContext(), core, resp, &created);
        if (s.ok() && !created.empty()) {
          *fill = CopyInto(resp->mutable_instances(), std::move(created));
        }
        return s;
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
  return calls_.WriteThenFill(
      ctx, {"BatchDeleteInstances", Permission::kInstanceWrite}, req->org(), "",
      [req] { return ToDeleteRequest(*req); },
      [resp](State& state, const DeleteRequest& core, CallPath::Fill* fill) {
        std::vector<RecordPtr> deleted;
        if (absl::Status s = DeleteInstances(state, core, &deleted); !s.ok()) return s;
        *fill = CopyInto(resp->mutable_instances(), std::move(deleted));
        return absl::OkStatus();
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
                                                             const grpc::ByteBuffer* raw,
                                                             grpc::ByteBuffer* resp) {
  v1::ListInstancesRequest req;
  grpc::ByteBuffer copy(*raw);  // Deserialize consumes its buffer; this one shares the slices
  if (!grpc::SerializationTraits<v1::ListInstancesRequest>::Deserialize(&copy, &req).ok()) {
    return FinishNow(ctx, absl::InvalidArgumentError(
                              "the request is not a nvlsched.v1.ListInstancesRequest"));
  }
  // `req` is read by the prepare step only, which runs before this returns.
  return calls_.ReadView(
      ctx, {"ListInstances", Permission::kInstanceRead}, req.org(),
      [&req] { return ToInstanceQuery(req); },
      [resp](const InstanceView& view, const InstanceQuery& core) -> absl::Status {
        auto wire = std::make_unique<std::string>();
        if (absl::Status s = view.List(core, wire.get()); !s.ok()) return s;
        // The slice owns the string: gRPC sends it as it is and frees it when done.
        std::string* owned = wire.release();
        grpc::Slice slice(owned->data(), owned->size(),
                          [](void* p) { delete static_cast<std::string*>(p); }, owned);
        *resp = grpc::ByteBuffer(&slice, 1);
        return absl::OkStatus();
      });
}

}  // namespace nvlsched::daemon
