#include "daemon/services/event_service.h"

#include <atomic>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/api/field_checks.h"
#include "daemon/api/field_violations.h"
#include "daemon/api/status_mapping.h"
#include "daemon/services/unary_call.h"

namespace nvlsched::daemon {
namespace {

absl::Status ValidateWatchEventsRequest(const v1::WatchEventsRequest& req) {
  FieldViolations violations;
  if (!req.org().empty()) CheckOrg(violations, "org", req.org());
  CheckOptionalUuid(violations, "tenant_id", req.tenant_id());
  if (req.from_now() && req.after_sequence() != 0) {
    violations.Add("after_sequence",
                   absl::StrCat("after_sequence must be 0 with from_now (got ",
                                req.after_sequence(), "): give one resume point or the other"));
  }
  for (int i = 0; i < req.types_size(); ++i) {
    const int type = req.types(i);
    if (type == v1::EVENT_TYPE_UNSPECIFIED || !v1::EventType_IsValid(type)) {
      violations.Add(Index("types", i),
                     absl::StrCat(Index("types", i),
                                  " must be an EventType (EVENT_TYPE_INSTANCE_CREATED, ...), got ",
                                  type));
    }
  }
  return violations.ToStatus("WatchEventsRequest");
}

// One watch stream: the hub sends through it; gRPC completes it. Finish is called once, by
// whichever comes first: a refusal at the start, the hub ending the watch, or a cancellation.
class WatchReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>, public EventSink {
 public:
  explicit WatchReactor(EventHub* hub) : hub_(hub) {}

  // Registers with the hub, or finishes with the error.
  void Start(EventFilter filter, uint64_t after_sequence, bool from_now) {
    if (absl::Status s = hub_->Add(this, std::move(filter), after_sequence, from_now); !s.ok()) {
      FinishOnce(ToGrpcStatus(s));
    }
  }
  void FinishOnce(const grpc::Status& status) {
    if (!finished_.exchange(true)) Finish(status);
  }

  // EventSink (delivery thread).
  void Send(std::shared_ptr<const EncodedEvent> event) override {
    // The slice refers to the shared bytes and keeps them alive until gRPC is done with them.
    auto* keep = new std::shared_ptr<const EncodedEvent>(std::move(event));
    grpc::Slice slice(const_cast<char*>((*keep)->bytes.data()), (*keep)->bytes.size(),
                      [](void* p) { delete static_cast<std::shared_ptr<const EncodedEvent>*>(p); },
                      keep);
    in_flight_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&in_flight_);
  }
  void End(const absl::Status& status) override { FinishOnce(ToGrpcStatus(status)); }

  // gRPC.
  void OnWriteDone(bool ok) override {
    if (ok) hub_->WriteDone(this);  // else the stream is broken; OnDone follows
  }
  void OnCancel() override {
    hub_->Remove(this);
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the watch"));
  }
  void OnDone() override {
    hub_->Remove(this);
    delete this;
  }

 private:
  EventHub* const hub_;
  std::atomic<bool> finished_{false};
  grpc::ByteBuffer in_flight_;  // the write in flight (one at a time)
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* EventServiceImpl::WatchEvents(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw) {
  auto* reactor = new WatchReactor(hub_);
  v1::WatchEventsRequest request;
  grpc::ByteBuffer copy(*raw);
  if (grpc::Status parsed =
          grpc::SerializationTraits<v1::WatchEventsRequest>::Deserialize(&copy, &request);
      !parsed.ok()) {
    reactor->FinishOnce(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "the request is not a nvlsched.v1.WatchEventsRequest"));
    return reactor;
  }
  const v1::WatchEventsRequest* req = &request;
  absl::StatusOr<CallInfo> call =
      BeginCall(*access_, ctx, "WatchEvents", Permission::kInstanceRead, req->org());
  if (!call.ok()) {
    reactor->FinishOnce(ToGrpcStatus(call.status()));
    return reactor;
  }
  if (absl::Status s = ValidateWatchEventsRequest(*req); !s.ok()) {
    reactor->FinishOnce(ToGrpcStatus(s));
    return reactor;
  }
  EventFilter filter;
  filter.org = req->org();
  filter.tenant_id = req->tenant_id();
  for (int type : req->types()) filter.types.insert(type);
  reactor->Start(std::move(filter), req->after_sequence(), req->from_now());
  return reactor;
}

}  // namespace nvlsched::daemon
