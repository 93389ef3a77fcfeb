// SchedulerServiceImpl: nvlsched.v1.SchedulerService, the queue of requests waiting for
// capacity (daemon/engine/queue_reads.h builds the answer).
//
// ListQueue with an org lists that org's entries (a tenant admin only its own; provider roles
// any); with org empty it lists every org's (provider roles only: the kInventoryRead
// permission). Positions count every entry ahead, whoever's it is.
//
// Errors: INVALID_ARGUMENT (page_size outside 0..1000, a page_token not issued here, a
// tenant_id that is not a UUID); PERMISSION_DENIED / UNAUTHENTICATED (auth.h); UNAVAILABLE and
// RESOURCE_EXHAUSTED from the engine queue.
//
// Thread-safety: the handler runs on gRPC callback threads and queues a read on the engine.
#ifndef NVLSCHED_DAEMON_SERVICES_SCHEDULER_SERVICE_H_
#define NVLSCHED_DAEMON_SERVICES_SCHEDULER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "daemon/auth/auth.h"
#include "daemon/engine/engine.h"
#include "daemon/services/unary_call.h"
#include "nvlsched/v1/scheduler_service.grpc.pb.h"

namespace nvlsched::daemon {

class SchedulerServiceImpl final : public v1::SchedulerService::CallbackService {
 public:
  // `engine`, `access` and `replies` (optional: no reply budget) must outlive the service.
  SchedulerServiceImpl(Engine* engine, const AccessControl* access,
                       ReplyBudget* replies = nullptr)
      : calls_(engine, access, replies) {}

  grpc::ServerUnaryReactor* ListQueue(grpc::CallbackServerContext* ctx,
                                      const v1::ListQueueRequest* request,
                                      v1::ListQueueResponse* response) override;

 private:
  const CallPath calls_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_SCHEDULER_SERVICE_H_
