// ReplyBudget: bounds the memory nvlschedd holds for answers its clients have not taken yet.
//
// gRPC keeps an answer in memory (the message, and its serialized bytes) until the transport
// has sent it, and HTTP/2 flow control sends only as fast as the client reads. A client that
// opens many calls and does not read the answers therefore makes the daemon hold all of them:
// nothing in gRPC bounds it (its ResourceQuota does not count message bytes). The budget counts
// the serialized bytes of every message a call has handed to gRPC and that is not yet sent —
// a server interceptor adds them at PRE_SEND_MESSAGE and takes them back at POST_SEND_MESSAGE
// (or when the call ends) — and CallPath (unary_call.h) refuses calls with RESOURCE_EXHAUSTED
// while the count is at or over the limit: when they arrive, and again on the engine thread
// just before an op builds its answer. The engine builds one read's answer at a time; writes'
// answers are serialized on its completion thread, at most two groups behind. So the count
// passes the limit by at most one read's answer (at most --max_reply_mib) plus the write
// answers of two groups (2 × 1024 writes, about 1 KiB per instance each names).
//
// While the budget is full every CallPath call is refused, so a client that never reads could
// hold it for ever: the answers of CallPath calls are also tracked from Finish to OnDone
// (PendingReply), and a sweeper cancels the calls whose answer has waited longer than the
// timeout (--pending_reply_timeout; the client sees CANCELLED), which frees their memory.
//
// Thread-safety: thread-safe. Admit and the interceptor cost one atomic operation each (plus
// the serialization gRPC would do anyway, which the interceptor asks for); Track and Untrack
// take one mutex, with no allocation.
#ifndef NVLSCHED_DAEMON_SERVICES_REPLY_BUDGET_H_
#define NVLSCHED_DAEMON_SERVICES_REPLY_BUDGET_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_interceptor.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "store/sync.h"

namespace nvlsched::daemon {

// A CallPath call whose answer was handed to gRPC and has not been taken yet (LoggedReactor
// holds one, tracked from Finish to OnDone, while its server context is alive).
class PendingReply {
 public:
  explicit PendingReply(grpc::CallbackServerContext* ctx) : ctx_(ctx) {}
  PendingReply(const PendingReply&) = delete;
  PendingReply& operator=(const PendingReply&) = delete;

 private:
  friend class ReplyBudget;
  grpc::CallbackServerContext* const ctx_;
  // Protected by the ReplyBudget's mutex while tracked.
  absl::Time finished_;
  bool cancelled_ = false;
  PendingReply* prev_ = nullptr;
  PendingReply* next_ = nullptr;
};

class ReplyBudget {
 public:
  // `limit_bytes` > 0.
  explicit ReplyBudget(int64_t limit_bytes) : limit_bytes_(limit_bytes) {}
  ~ReplyBudget();  // StopSweeper()s.
  ReplyBudget(const ReplyBudget&) = delete;
  ReplyBudget& operator=(const ReplyBudget&) = delete;

  // OK while fewer than limit_bytes() are pending; otherwise RESOURCE_EXHAUSTED saying how
  // much the daemon holds and that the call may be retried later.
  absl::Status Admit() const;

  // Serialized bytes handed to gRPC and not yet sent.
  int64_t pending_bytes() const { return pending_bytes_.load(std::memory_order_relaxed); }
  int64_t limit_bytes() const { return limit_bytes_; }

  // Counts the messages of every call of the server (ServerBuilder::experimental()
  // .SetInterceptorCreators). The budget must outlive the server.
  //
  // `typed_services` ("nvlsched.v1.InstanceService", ...) are services whose unary methods
  // answer with a generated protobuf message the handler does not touch after finishing the
  // call (every CallbackService of nvlsched), except `raw_methods`
  // ("/nvlsched.v1.InstanceService/ListInstances"), which answer with a ByteBuffer: once a
  // message answer is serialized its in-memory form is freed at once, so an answer waiting for
  // a slow reader holds only its serialized bytes (a raw answer is nothing else already).
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory(
      std::vector<std::string> typed_services, std::vector<std::string> raw_methods);

  // For the interceptor.
  void Add(int64_t bytes) { pending_bytes_.fetch_add(bytes, std::memory_order_relaxed); }
  void Release(int64_t bytes) { pending_bytes_.fetch_sub(bytes, std::memory_order_relaxed); }

  // Track just before the call's Finish, Untrack in its OnDone (before the context goes).
  void Track(PendingReply* reply);
  void Untrack(PendingReply* reply);
  // Cancels (ServerContext::TryCancel) every tracked call finished before `cutoff` and not
  // cancelled yet: its client has left the answer unread. Returns how many. Cost: the calls
  // finished before `cutoff`, oldest first.
  int CancelFinishedBefore(absl::Time cutoff);
  // Starts a thread that, every `period`, cancels the calls whose answer has waited longer
  // than `timeout` (zero: none), then calls `on_tick` (optional: metrics) with pending_bytes()
  // and cancelled_unread(). StopSweeper joins it; idempotent.
  using TickFn = std::function<void(int64_t pending_bytes, int64_t cancelled_unread)>;
  void StartSweeper(absl::Duration timeout, TickFn on_tick = nullptr,
                    absl::Duration period = absl::Seconds(1));
  void StopSweeper();
  int64_t cancelled_unread() const { return cancelled_unread_.load(); }

 private:
  void Unlink(PendingReply* reply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t limit_bytes_;
  std::atomic<int64_t> pending_bytes_{0};
  std::atomic<int64_t> cancelled_unread_{0};

  Mutex mu_;
  // Tracked calls, oldest first (the order they finished in).
  PendingReply* oldest_ ABSL_GUARDED_BY(mu_) = nullptr;
  PendingReply* newest_ ABSL_GUARDED_BY(mu_) = nullptr;

  Notification stop_sweeper_;
  std::thread sweeper_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_REPLY_BUDGET_H_
