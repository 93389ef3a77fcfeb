#include "daemon/services/reply_budget.h"

#include <pthread.h>
#include <grpcpp/support/byte_buffer.h>
#include <spdlog/spdlog.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "google/protobuf/message.h"

namespace nvlsched::daemon {
namespace {

// "nvlsched.v1.InstanceService" of "/nvlsched.v1.InstanceService/ListInstances".
absl::string_view ServiceOf(absl::string_view method) {
  absl::ConsumePrefix(&method, "/");
  return method.substr(0, method.find('/'));
}

std::string MibText(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

// One per call: the bytes of the message it has in flight (a unary call has one; a stream has
// at most one write outstanding at a time).
class ReplyBytesInterceptor final : public grpc::experimental::Interceptor {
 public:
  ReplyBytesInterceptor(ReplyBudget* budget, bool release_messages)
      : budget_(budget), release_messages_(release_messages) {}
  // The call has ended: whatever it still held is gone with it.
  ~ReplyBytesInterceptor() override { budget_->Release(in_flight_.exchange(0)); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      const void* message = release_messages_ ? methods->GetSendMessage() : nullptr;
      // Serializes now what gRPC would serialize next anyway.
      const grpc::ByteBuffer* bytes = methods->GetSerializedSendMessage();
      if (bytes != nullptr) {
        const auto size = static_cast<int64_t>(bytes->Length());
        budget_->Add(size);
        budget_->Release(in_flight_.exchange(size));
        if (message != nullptr) ReleaseContents(message);
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_SEND_MESSAGE)) {
      budget_->Release(in_flight_.exchange(0));
    }
    methods->Proceed();
  }

 private:
  // Once serialized, gRPC never reads the message again (interceptor.h: "the non-serialized
  // form will be lost"), and nvlsched's handlers do not read their answer after finishing the
  // call. Its contents are freed now rather than when the call ends, so an answer waiting for
  // a slow reader holds only its serialized bytes, not also its in-memory form (2.7 times as
  // large for a page of ListInstances).
  static void ReleaseContents(const void* message) {
    // Only for unary methods of services registered as typed (the factory's list), not their
    // raw methods: the pointer gRPC holds is then the handler's response object, a generated
    // protobuf message.
    auto* full = const_cast<google::protobuf::Message*>(
        static_cast<const google::protobuf::Message*>(message));
    std::unique_ptr<google::protobuf::Message> contents(full->New());
    full->GetReflection()->Swap(full, contents.get());
  }

  ReplyBudget* const budget_;
  const bool release_messages_;
  std::atomic<int64_t> in_flight_{0};
};

class ReplyBytesInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  ReplyBytesInterceptorFactory(ReplyBudget* budget, std::vector<std::string> typed_services,
                               std::vector<std::string> raw_methods)
      : budget_(budget),
        typed_services_(std::move(typed_services)),
        raw_methods_(std::move(raw_methods)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    bool release = false;
    if (info->type() == grpc::experimental::ServerRpcInfo::Type::UNARY &&
        info->method() != nullptr) {
      const absl::string_view service = ServiceOf(info->method());
      for (const std::string& typed : typed_services_) release = release || typed == service;
      for (const std::string& raw : raw_methods_) release = release && raw != info->method();
    }
    return new ReplyBytesInterceptor(budget_, release);
  }

 private:
  ReplyBudget* const budget_;
  const std::vector<std::string> typed_services_;
  const std::vector<std::string> raw_methods_;
};

}  // namespace

absl::Status ReplyBudget::Admit() const {
  const int64_t pending = pending_bytes();
  if (pending < limit_bytes_) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "nvlschedd is overloaded: it holds ", MibText(pending),
      " of answers its clients have not read yet (the limit, --max_pending_reply_mib, is ",
      MibText(limit_bytes_), "); read the answers of calls in flight, then retry with backoff"));
}

namespace {
// Set while this thread cancels calls holding mu_: if gRPC ran a cancelled call's OnDone inside
// TryCancel (it runs reactors' callbacks on its own threads, but nothing promises it), its
// Untrack must not take mu_ again.
thread_local bool sweeping = false;
}  // namespace

ReplyBudget::~ReplyBudget() { StopSweeper(); }

void ReplyBudget::Track(PendingReply* reply) {
  MutexLock lock(&mu_);
  reply->finished_ = absl::Now();
  reply->prev_ = newest_;
  reply->next_ = nullptr;
  if (newest_ != nullptr) {
    newest_->next_ = reply;
  } else {
    oldest_ = reply;
  }
  newest_ = reply;
}

void ReplyBudget::Untrack(PendingReply* reply) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (sweeping) {  // mu_ is held by this thread, in CancelFinishedBefore
    Unlink(reply);
    return;
  }
  MutexLock lock(&mu_);
  Unlink(reply);
}

void ReplyBudget::Unlink(PendingReply* reply) {
  if (reply->prev_ != nullptr) {
    reply->prev_->next_ = reply->next_;
  } else {
    oldest_ = reply->next_;
  }
  if (reply->next_ != nullptr) {
    reply->next_->prev_ = reply->prev_;
  } else {
    newest_ = reply->prev_;
  }
  reply->prev_ = reply->next_ = nullptr;
}

int ReplyBudget::CancelFinishedBefore(absl::Time cutoff) {
  MutexLock lock(&mu_);
  sweeping = true;
  int cancelled = 0;
  for (PendingReply* r = oldest_; r != nullptr && r->finished_ < cutoff;) {
    PendingReply* next = r->next_;  // r may be untracked inside TryCancel
    if (!r->cancelled_) {
      r->cancelled_ = true;
      r->ctx_->TryCancel();
      ++cancelled;
    }
    r = next;
  }
  sweeping = false;
  cancelled_unread_.fetch_add(cancelled);
  return cancelled;
}

void ReplyBudget::StartSweeper(absl::Duration timeout, TickFn on_tick, absl::Duration period) {
  sweeper_ = std::thread([this, timeout, on_tick = std::move(on_tick), period] {
    pthread_setname_np(pthread_self(), "nvl-replies");
    while (!stop_sweeper_.WaitForNotificationWithDeadline(absl::Now() + period)) {
      if (timeout > absl::ZeroDuration()) {
        const int cancelled = CancelFinishedBefore(absl::Now() - timeout);
        if (cancelled > 0) {
          spdlog::warn(
              "cancelled {} calls whose answers their clients left unread for more "
              "than {} (--pending_reply_timeout); {} still held",
              cancelled, absl::FormatDuration(timeout), MibText(pending_bytes()));
        }
      }
      if (on_tick) on_tick(pending_bytes(), cancelled_unread());
    }
  });
}

void ReplyBudget::StopSweeper() {
  if (!stop_sweeper_.HasBeenNotified()) stop_sweeper_.Notify();
  if (sweeper_.joinable()) sweeper_.join();
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ReplyBudget::InterceptorFactory(std::vector<std::string> typed_services,
                                std::vector<std::string> raw_methods) {
  return std::make_unique<ReplyBytesInterceptorFactory>(this, std::move(typed_services),
                                                        std::move(raw_methods));
}

}  // namespace nvlsched::daemon
