// EventServiceImpl: nvlsched.v1.EventService/WatchEvents, a server-streaming call over the
// EventHub (event_hub.h). The handler authenticates (tenant admins must name their own org;
// viewers and provider admins may watch every org), validates, registers the watcher with the
// hub and streams until the client cancels, the daemon stops, or the watcher falls behind.
//
// Errors: UNAUTHENTICATED / PERMISSION_DENIED (auth.h); INVALID_ARGUMENT (org, tenant_id,
// types); OUT_OF_RANGE (after_sequence pruned or beyond the newest event, see
// event_service.proto); RESOURCE_EXHAUSTED (fell more than --watch_buffer behind);
// UNAVAILABLE (shutting down).
//
// Thread-safety: handlers run on gRPC callback threads and never block.
#ifndef NVLSCHED_DAEMON_SERVICES_EVENT_SERVICE_H_
#define NVLSCHED_DAEMON_SERVICES_EVENT_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "daemon/auth/auth.h"
#include "daemon/services/event_hub.h"
#include "nvlsched/v1/event_service.grpc.pb.h"

namespace nvlsched::daemon {

// WatchEvents is served "raw": each event goes out as the bytes the engine serialized once
// (EncodedEvent), shared by every watcher, never re-serialized per stream. Clients see the
// ordinary nvlsched.v1.Event messages (reflection and grpcurl included).
class EventServiceImpl final
    : public v1::EventService::WithRawCallbackMethod_WatchEvents<v1::EventService::Service> {
 public:
  // `hub` and `access` outlive the service.
  EventServiceImpl(EventHub* hub, const AccessControl* access) : hub_(hub), access_(access) {}

  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchEvents(grpc::CallbackServerContext* ctx,
                                                          const grpc::ByteBuffer* req) override;

 private:
  EventHub* const hub_;
  const AccessControl* const access_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_EVENT_SERVICE_H_
