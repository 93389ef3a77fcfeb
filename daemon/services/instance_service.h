// InstanceServiceImpl: nvlsched.v1.InstanceService over the engine. Each handler validates
// and converts the request on the gRPC thread (instance_requests.h), then queues the core
// request for the op of daemon/engine/instance_ops.h through the shared CallPath; the reply
// is sent once the change is durable. ListInstances is a raw method: it answers with the
// page's wire form as InstanceView::List writes it (records as they are stored or serialized,
// never copied into a message), which clients read as a ListInstancesResponse.
//
// Thread-safety: handlers run on gRPC callback threads and never block; the random source is
// used only by ops, which run on the single engine thread.
#ifndef NVLSCHED_DAEMON_SERVICES_INSTANCE_SERVICE_H_
#define NVLSCHED_DAEMON_SERVICES_INSTANCE_SERVICE_H_

#include "absl/random/random.h"
#include "daemon/auth/auth.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/requests.h"
#include "daemon/services/unary_call.h"
#include "absl/time/clock.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"

namespace nvlsched::daemon {

class InstanceServiceImpl final
    : public v1::InstanceService::WithRawCallbackMethod_ListInstances<
          v1::InstanceService::CallbackService> {
 public:
  struct Options {
    int max_batch_count = 18;
  };
  // `engine`, `access`, `replies` (optional: no reply budget) and `reads` (optional:
  // ListInstances answered on the gRPC thread) outlive the service.
  InstanceServiceImpl(Engine* engine, const AccessControl* access, Options options,
                      ReplyBudget* replies = nullptr, ReadPool* reads = nullptr)
      : calls_(engine, access, replies, reads), options_(options) {}

  grpc::ServerUnaryReactor* BatchCreateInstances(grpc::CallbackServerContext* ctx,
                                                 const v1::BatchCreateInstancesRequest* req,
                                                 v1::BatchCreateInstancesResponse* resp) override;
  grpc::ServerUnaryReactor* CreateInstance(grpc::CallbackServerContext* ctx,
                                           const v1::CreateInstanceRequest* req,
                                           v1::Instance* resp) override;
  grpc::ServerUnaryReactor* GetInstance(grpc::CallbackServerContext* ctx,
                                        const v1::GetInstanceRequest* req,
                                        v1::Instance* resp) override;
  // `raw` is a serialized ListInstancesRequest; *resp is set to a serialized
  // ListInstancesResponse.
  grpc::ServerUnaryReactor* ListInstances(grpc::CallbackServerContext* ctx,
                                          const grpc::ByteBuffer* raw,
                                          grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* UpdateInstanceStatus(grpc::CallbackServerContext* ctx,
                                                 const v1::UpdateInstanceStatusRequest* req,
                                                 v1::Instance* resp) override;
  grpc::ServerUnaryReactor* DeleteInstance(grpc::CallbackServerContext* ctx,
                                           const v1::DeleteInstanceRequest* req,
                                           v1::DeleteInstanceResponse* resp) override;
  grpc::ServerUnaryReactor* ReplaceInstance(grpc::CallbackServerContext* ctx,
                                            const v1::ReplaceInstanceRequest* req,
                                            v1::Instance* resp) override;
  grpc::ServerUnaryReactor* BatchDeleteInstances(grpc::CallbackServerContext* ctx,
                                                 const v1::BatchDeleteInstancesRequest* req,
                                                 v1::BatchDeleteInstancesResponse* resp) override;

 private:
  // The op's context: now, and the random source for ids. Engine thread only.
  OpContext NewOpContext() { return OpContext{absl::Now(), rng_}; }

  const CallPath calls_;
  const Options options_;
  absl::BitGen rng_;  // engine thread only
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_INSTANCE_SERVICE_H_
