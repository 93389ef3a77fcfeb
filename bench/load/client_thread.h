// ClientThread: one client thread of nvlsched-load. It owns a completion queue, `slots`
// in-flight calls on one channel, its share of the held batches and singles, its random
// generator and its LoadResult, so the hot path shares nothing with other threads but the
// call budget (one relaxed atomic add per call).
//
// Each slot is a unary call driven through the async completion-queue API: when its call
// completes the thread records the latency, updates the hold queues and issues the slot's next
// call. Deletes of batches (singles) that have `hold` newer ones go first; then creates. Once
// the duration or the call budget is spent, slots issue the cleanup deletes (if enabled) and
// then go idle; Run() returns when every slot is idle.
//
// In the open loop (LoadOptions::rate > 0) a slot does not send again on completion: the thread
// sends each call of its SendSchedule at the call's intended time, on any idle slot, and measures
// the call's latency from that intended time. The slots are the cap on calls in flight; a call
// due with none idle waits for one (late), and those still waiting at the end are skipped.
//
// Thread-safety: Run() is called once, from one thread. RunBudget is shared by all threads.
#ifndef NVLSCHED_BENCH_LOAD_CLIENT_THREAD_H_
#define NVLSCHED_BENCH_LOAD_CLIENT_THREAD_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench/load/load_options.h"
#include "bench/load/load_result.h"
#include "bench/load/send_schedule.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"

namespace nvlsched::load {

using LoadClock = std::chrono::steady_clock;

// The limits of one run, shared by its threads. The open loop uses start, end and max_calls
// through each thread's SendSchedule, not TakeOne.
struct RunBudget {
  LoadClock::time_point start;
  LoadClock::time_point end;  // start + duration
  int64_t max_calls = 0;
  std::atomic<int64_t> issued{0};

  // True, and one call counted, while neither the duration nor max_calls is spent.
  bool TakeOne();
};

class ClientThread {
 public:
  // `hold_batches` / `hold_singles`: this thread's share of LoadOptions::hold. The daemon
  // refuses a second live instance of a name, so singles are named `single_name_prefix` + a
  // sequence number: the prefix must be unique to the thread and the run.
  // `thread_index` of `thread_count`: which calls of the open loop's schedule are this thread's.
  ClientThread(const LoadOptions& options, RunBudget* budget,
               const std::shared_ptr<grpc::Channel>& channel, int slots, int hold_batches,
               int hold_singles, uint64_t seed, std::string single_name_prefix,
               int thread_index = 0, int thread_count = 1);
  ~ClientThread();

  ClientThread(const ClientThread&) = delete;
  ClientThread& operator=(const ClientThread&) = delete;

  // Runs until the budget is spent, every call has completed and (with cleanup) every held
  // instance has been deleted. Bounded: calls stop being issued at the budget's end and each
  // has a deadline of call_timeout. REQUIRES: budget->start and budget->end are set.
  void Run();

  const LoadResult& result() const { return result_; }

 private:
  struct Slot;

  bool IssueNext(Slot* slot);
  void IssueMeasured(Slot* slot);
  bool IssueCleanup(Slot* slot);
  void DispatchPaced();
  // Waits for the next completion, or (open loop, a slot idle) until the next intended send
  // time. Returns false once the queue is shut down; *tag is null on a timeout.
  bool Wait(void** tag);
  void IssueCreate(Slot* slot);
  void StartBatchCreate(Slot* slot);
  void StartSingleCreate(Slot* slot);
  void StartBatchDelete(Slot* slot, bool cleanup);
  void StartSingleDelete(Slot* slot, bool cleanup);
  void StartHealthCheck(Slot* slot);
  void PrepareCall(Slot* slot, OpKind kind, bool cleanup);
  void Dispatch();
  void Complete(Slot* slot);
  void CompleteDelete(const Slot& slot, int64_t instances, bool is_batch);

  // Constant after construction.
  const LoadOptions& options_;
  RunBudget* const budget_;
  const int hold_batches_;
  const int hold_singles_;
  const std::string single_name_prefix_;
  const int thread_index_;
  const int thread_count_;
  std::unique_ptr<nvlsched::v1::InstanceService::Stub> instances_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;

  // Touched only by the thread in Run().
  grpc::CompletionQueue cq_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Slot*> idle_;
  std::deque<std::vector<std::string>> held_batches_;  // instance ids, oldest first
  std::deque<std::string> held_singles_;               // instance ids, oldest first
  std::mt19937_64 random_;
  int64_t singles_named_ = 0;
  std::optional<SendSchedule> schedule_;  // the open loop only; made by Run()
  bool stopping_ = false;
  bool shut_down_ = false;
  LoadClock::time_point last_measured_;
  LoadResult result_;
};

}  // namespace nvlsched::load

#endif  // NVLSCHED_BENCH_LOAD_CLIENT_THREAD_H_
