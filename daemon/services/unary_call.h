// daemon/services — the gRPC handlers, thin, over one shared call path.
//
// The one call path of every unary method of nvlschedd's services: on the gRPC thread,
// authenticate and authorize (BeginCall), validate and convert the request into a core request
// (the handler's `prepare`), queue the core request on the engine; on the engine thread, run
// the op and build the reply; finish the call once the op's effect is durable. Calls never
// block a gRPC callback thread.
//
// Thread-safety: the helpers are called from gRPC callback threads; the functions they queue
// run on the engine thread.
#ifndef NVLSCHED_DAEMON_SERVICES_UNARY_CALL_H_
#define NVLSCHED_DAEMON_SERVICES_UNARY_CALL_H_

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/auth/auth.h"
#include "daemon/engine/engine.h"
#include "daemon/services/read_pool.h"
#include "daemon/services/reply_budget.h"
#include "daemon/api/status_mapping.h"

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

// Logs one line for a call: method, request id, caller, outcome, latency. A refusal (any
// non-OK outcome) is a warning; a state change that succeeded is info; a read that succeeded
// is not logged (`is_write` false).
void LogCall(const CallInfo& call, const absl::Status& status, bool is_write);

// What completes a write's answer after its commit (CallPath::WriteThenFill).
using AnswerFill = absl::AnyInvocable<void() &&>;

// The reactor of a call that reaches the engine: finished by the engine thread, it logs the
// call (LogCall) in OnDone, on a gRPC thread, so formatting and writing the log line stay off
// the engine's loop.
// With a ReplyBudget, the answer is tracked from Finish until OnDone (the client has taken it),
// so one left unread too long can be cancelled.
class LoggedReactor final : public grpc::ServerUnaryReactor {
 public:
  LoggedReactor(grpc::CallbackServerContext* ctx, ReplyBudget* replies, CallInfo call,
                bool is_write)
      : call_(std::move(call)), is_write_(is_write), replies_(replies), pending_(ctx) {}
  // Set by a write's op on the engine thread; FinishWith runs it (on the thread that finishes
  // the call, after the engine handed the answer over) when the call succeeded, and drops it
  // either way before the answer goes out.
  AnswerFill* fill() { return &fill_; }
  void FinishWith(absl::Status status) {
    if (fill_) {
      if (status.ok()) std::move(fill_)();
      fill_ = nullptr;
    }
    status_ = std::move(status);
    if (replies_ != nullptr) replies_->Track(&pending_);
    Finish(ToGrpcStatus(status_));
  }
  void OnDone() override {
    if (replies_ != nullptr) replies_->Untrack(&pending_);
    LogCall(call_, status_, is_write_);
    delete this;
  }

 private:
  const CallInfo call_;
  const bool is_write_;
  ReplyBudget* const replies_;
  PendingReply pending_;
  absl::Status status_;  // written before Finish, read in OnDone (after it)
  AnswerFill fill_;
};

// Finishes the call at once with `status` (refused before it reached the engine).
inline grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx,
                                           const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}
// The same, logging the refusal (a call that passed authentication).
inline grpc::ServerUnaryReactor* RefuseNow(grpc::CallbackServerContext* ctx,
                                           const CallInfo& call, const absl::Status& status,
                                           bool is_write) {
  LogCall(call, status, is_write);
  return FinishNow(ctx, status);
}

// Client-supplied text as it goes into a log line: printable ASCII as it is, a backslash
// doubled, every other byte (control characters, bytes of non-ASCII text, bidi overrides) as
// \xNN, so no request can forge or break a line; cut at 256 bytes, the full size noted.
std::string ForLog(absl::string_view text);

// What a method is called (in logs) and what it needs (auth.h).
struct Method {
  const char* name;
  Permission permission;
};

// The shared path from a gRPC handler to the engine. A handler is one call:
//
//   return calls_.Write(ctx, {"DeleteInstance", Permission::kInstanceWrite}, req->org(), "",
//       [req] { return ToDeleteRequest(*req); },                      // gRPC thread
//       [resp](State& state, const DeleteRequest& core) { ... });    // engine thread
//
// `prepare()` returns absl::StatusOr<Core>: the validated core request, or the error the call
// finishes with at once. `op` runs on the engine thread with the State and the core request;
// a write's op returns absl::Status and changes State only through its change methods; a
// read's op gets const State. The response message the handler got stays valid until the
// call finishes, so `op` may fill it.
//
// With a ReplyBudget (reply_budget.h), a call is refused with RESOURCE_EXHAUSTED while the
// daemon holds more unsent answers than the budget allows: when it arrives, and again on the
// engine thread just before its op runs (a burst arrives before any of its answers exist).
class CallPath {
 public:
  // `engine`, `access`, `replies` (optional) and `reads` (optional) outlive the CallPath.
  // Without `reads`, ReadView answers on the calling gRPC thread.
  CallPath(Engine* engine, const AccessControl* access, ReplyBudget* replies = nullptr,
           ReadPool* reads = nullptr)
      : engine_(engine), access_(access), replies_(replies), reads_(reads) {}

  template <typename Prepare, typename Op>
  grpc::ServerUnaryReactor* Write(grpc::CallbackServerContext* ctx, Method method,
                                  absl::string_view org, absl::string_view tenant_id,
                                  Prepare prepare, Op op) const {
    return WriteThenFill(ctx, method, org, tenant_id, std::move(prepare),
                         [op = std::move(op)](State& state, const auto& core, Fill*) mutable {
                           return op(state, core);
                         });
  }

  // A write whose answer is (partly) filled after its commit, on the engine's completion thread
  // (engine.h) instead of the engine thread: `op(state, core, &fill)` may set `fill`, which
  // runs just before the answer goes out, only if the op succeeded and its commit did. For
  // answers that copy records State keeps (RecordPtr: immutable and shared, so `fill` may hold
  // them): the single writer then neither copies them nor frees the copies.
  using Fill = AnswerFill;
  template <typename Prepare, typename Op>
  grpc::ServerUnaryReactor* WriteThenFill(grpc::CallbackServerContext* ctx, Method method,
                                          absl::string_view org, absl::string_view tenant_id,
                                          Prepare prepare, Op op) const {
    grpc::ServerUnaryReactor* finished = nullptr;
    auto started = Start(ctx, method, org, tenant_id, /*is_write=*/true, prepare, &finished);
    if (!started.has_value()) return finished;
    LoggedReactor* reactor = started->first;
    absl::Status queued = engine_->SubmitWrite(
        [replies = replies_, reactor, op = std::move(op),
         core = std::move(started->second)](State& state) mutable {
          // Refused without a change: its answer would add to what clients have not read.
          if (absl::Status s = Admit(replies); !s.ok()) return s;
          // The reactor is finished (and deleted) only by the answer below, after this op.
          return op(state, core, reactor->fill());
        },
        [reactor](absl::Status status) { reactor->FinishWith(std::move(status)); },
        DeadlineOf(ctx));
    if (!queued.ok()) reactor->FinishWith(std::move(queued));
    return reactor;
  }

  // A read runs after every write queued before it is durable.
  template <typename Prepare, typename Op>
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* ctx, Method method,
                                 absl::string_view org, Prepare prepare, Op op) const {
    grpc::ServerUnaryReactor* finished = nullptr;
    auto started = Start(ctx, method, org, "", /*is_write=*/false, prepare, &finished);
    if (!started.has_value()) return finished;
    LoggedReactor* reactor = started->first;
    absl::Status queued = engine_->SubmitRead(
        [replies = replies_, reactor, op = std::move(op),
         core = std::move(started->second)](const State& state) mutable {
          // Checked again here: the answers of the reads queued before it now exist.
          if (absl::Status s = Admit(replies); !s.ok()) {
            reactor->FinishWith(std::move(s));
            return;
          }
          reactor->FinishWith(op(state, core));
        },
        DeadlineOf(ctx), [reactor](absl::Status status) { reactor->FinishWith(std::move(status)); });
    if (!queued.ok()) reactor->FinishWith(std::move(queued));
    return reactor;
  }

  // A read served from the engine's view of the committed records
  // (daemon/engine/instance_view.h) on a thread of the read pool (read_pool.h, lower CPU
  // priority), or on the calling gRPC thread without one: it never queues behind the engine's
  // writes, and it sees every write answered before it arrived. `op(view, core)` fills the
  // response.
  template <typename Prepare, typename Op>
  grpc::ServerUnaryReactor* ReadView(grpc::CallbackServerContext* ctx, Method method,
                                     absl::string_view org, Prepare prepare, Op op) const {
    grpc::ServerUnaryReactor* finished = nullptr;
    auto started = Start(ctx, method, org, "", /*is_write=*/false, prepare, &finished);
    if (!started.has_value()) return finished;
    LoggedReactor* reactor = started->first;
    auto serve = [reactor, replies = replies_, view = &engine_->view(),
                  deadline = DeadlineOf(ctx), op = std::move(op),
                  core = std::move(started->second)]() mutable {
      if (deadline < absl::Now()) {
        reactor->FinishWith(absl::DeadlineExceededError(
            "the call's deadline passed before it was served; nothing was read"));
        return;
      }
      // Checked again here, as on the engine: the answers of the reads scheduled before this
      // one now exist.
      if (absl::Status s = Admit(replies); !s.ok()) {
        reactor->FinishWith(std::move(s));
        return;
      }
      reactor->FinishWith(op(*view, core));
    };
    if (reads_ != nullptr) {
      if (!reads_->TrySchedule(std::move(serve))) {
        reactor->FinishWith(absl::ResourceExhaustedError(
            "too many reads are waiting for a read thread (--read_threads, "
            "--max_queued_reads); nothing was read; retry with backoff"));
      }
    } else {
      serve();
    }
    return reactor;
  }

 private:
  static absl::Status Admit(const ReplyBudget* replies) {
    return replies == nullptr ? absl::OkStatus() : replies->Admit();
  }

  // The steps every call takes before its op: authenticate (BeginCall), prepare() the core
  // request, Admit it against the reply budget. Returns the call's reactor and its core
  // request; or nullopt with `*finished` set when the call was refused (already answered).
  template <typename Prepare>
  auto Start(grpc::CallbackServerContext* ctx, Method method, absl::string_view org,
             absl::string_view tenant_id, bool is_write, Prepare& prepare,
             grpc::ServerUnaryReactor** finished) const
      -> std::optional<std::pair<LoggedReactor*, typename decltype(prepare())::value_type>> {
    // A daemon that stepped down refuses everything, as a standby does (before any check).
    if (absl::Status refusal = engine_->Refusal(); !refusal.ok()) {
      *finished = FinishNow(ctx, refusal);
      return std::nullopt;
    }
    absl::StatusOr<CallInfo> call = BeginCall(*access_, ctx, method.name, method.permission, org);
    if (!call.ok()) {
      *finished = FinishNow(ctx, call.status());
      return std::nullopt;
    }
    call->tenant_id = std::string(tenant_id);
    auto core = prepare();
    if (!core.ok()) {
      *finished = RefuseNow(ctx, *call, core.status(), is_write);
      return std::nullopt;
    }
    if (absl::Status s = Admit(replies_); !s.ok()) {
      *finished = RefuseNow(ctx, *call, s, is_write);
      return std::nullopt;
    }
    return std::make_pair(new LoggedReactor(ctx, replies_, *std::move(call), is_write),
                          *std::move(core));
  }

  Engine* const engine_;
  const AccessControl* const access_;
  ReplyBudget* const replies_;
  ReadPool* const reads_;
};

// prepare() of a request that is only validated: the request itself is the core request
// (small read-only queries whose fields the op reads as they are).
template <typename Req>
auto Validated(const Req* req, absl::Status (*validate)(const Req&)) {
  return [req, validate]() -> absl::StatusOr<const Req*> {
    if (absl::Status s = validate(*req); !s.ok()) return s;
    return req;
  };
}

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_UNARY_CALL_H_
