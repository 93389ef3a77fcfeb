// Helpers every gRPC service of nvlschedd uses to turn a call into an engine op: the calls
// never block a gRPC callback thread; they queue an op and return the reactor, and the engine
// finishes the reactor once the op's effect is durable.
//
// Thread-safety: the helpers are called from gRPC callback threads; the functions they queue
// run on the engine thread.
#ifndef NVLSCHED_DAEMON_SERVICE_SUPPORT_H_
#define NVLSCHED_DAEMON_SERVICE_SUPPORT_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/auth.h"
#include "daemon/engine.h"
#include "daemon/status_mapping.h"

namespace nvlsched::daemon {

// The call's deadline as absl::Time (InfiniteFuture when the client set none).
inline absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// Who made a call and how to find it in the logs.
struct CallInfo {
  const char* method = "";  // e.g. "BatchCreateInstances"
  std::string request_id;   // the client's x-request-id, or one made up here
  std::string org;          // the org the request names ("" when none)
  std::string tenant_id;    // the tenant a create names ("" otherwise)
  Principal principal;
  absl::Time start;
};

// Starts every call of our services: takes (or makes) the request id and echoes it in the
// response's initial metadata as x-request-id, then authenticates the call's
// `authorization` metadata and checks `permission` on `org` (auth.h). On failure the call is
// logged (never the token) and the status is what the handler must finish with:
// UNAUTHENTICATED or PERMISSION_DENIED.
absl::StatusOr<CallInfo> BeginCall(const AccessControl& access, grpc::CallbackServerContext* ctx,
                                   const char* method, Permission permission,
                                   absl::string_view org);

// Logs one line for a state-changing call: method, request id, caller, outcome, latency.
void LogWrite(const CallInfo& call, const absl::Status& status);

// The reactor of a write call: finished by the engine thread, it logs the call (LogWrite) in
// OnDone, on a gRPC thread, so formatting and writing the log line stay off the engine's loop.
class LoggedWriteReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit LoggedWriteReactor(CallInfo call) : call_(std::move(call)) {}
  void FinishWith(absl::Status status) {
    status_ = std::move(status);
    Finish(ToGrpcStatus(status_));
  }
  void OnDone() override {
    LogWrite(call_, status_);
    delete this;
  }

 private:
  const CallInfo call_;
  absl::Status status_;  // written before Finish, read in OnDone (after it)
};

// Queues `write` (absl::Status(State&, ChangeBuilder&)) and finishes the call with its final
// status after the group commit; the call is logged when done. `write` may fill the response
// message the handler got: it stays valid until the reactor finishes.
template <typename WriteFn>
grpc::ServerUnaryReactor* SubmitWriteCall(Engine* engine, grpc::CallbackServerContext* ctx,
                                          CallInfo call, WriteFn write) {
  auto* reactor = new LoggedWriteReactor(std::move(call));
  absl::Status queued = engine->SubmitWrite(
      std::move(write), [reactor](absl::Status status) { reactor->FinishWith(std::move(status)); },
      DeadlineOf(ctx));
  if (!queued.ok()) reactor->FinishWith(std::move(queued));
  return reactor;
}

// Queues `read` (absl::Status(const State&)) and finishes the call with its status. The read
// runs after any writes queued before it are durable.
template <typename ReadFn>
grpc::ServerUnaryReactor* SubmitReadCall(Engine* engine, grpc::CallbackServerContext* ctx,
                                         ReadFn read) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status queued = engine->SubmitRead(
      [reactor, read = std::move(read)](const State& state) mutable {
        reactor->Finish(ToGrpcStatus(read(state)));
      },
      DeadlineOf(ctx));
  if (!queued.ok()) reactor->Finish(ToGrpcStatus(queued));
  return reactor;
}

// Finishes the call at once with `status` (validation failures).
inline grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx,
                                           const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICE_SUPPORT_H_
