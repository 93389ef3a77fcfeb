// daemon/engine — the single writer, the ops it runs and the in-memory State.
//
// Engine: the ONE writer. Every call that reads or changes state becomes an op queued here; a
// single engine thread takes the queued ops as a group, applies the writes to the in-memory
// state (allocator + instance records), commits the whole group to the store in one SQLite
// transaction (one fsync), and only then completes the calls — the leveldb DBImpl::Write
// pattern. Reads run after the group's commit, so no caller ever sees a state that could
// still be rolled back. The group's events (State::EventsSince) are written in the same
// transaction and handed to on_commit only once it is durable.
//
// Write replies leave the engine thread: once a group is durable, its writes' `done` callbacks
// (their gRPC Finish, which serializes the answer) run in order on one completion thread, so
// the engine thread goes on to the next group at once. The engine waits for the completion
// thread when more than one group's completions are still waiting, which bounds the answers
// held that way. Reads still answer on the engine thread, one at a time (the reply budget of
// daemon/services/reply_budget.h counts each answer before the next read runs).
//
// If a commit fails, the group's changes are rolled back in memory, its writes fail with
// UNAVAILABLE, and the engine turns read-only: reads are still served, writes are refused with
// UNAVAILABLE until the daemon is restarted (DESIGN.md "Durability").
//
// Thread-safety: Submit* are thread-safe and never block (they are called from gRPC callback
// threads). The ops themselves run on the engine thread only.
#ifndef NVLSCHED_DAEMON_ENGINE_ENGINE_H_
#define NVLSCHED_DAEMON_ENGINE_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "store/sync.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "daemon/engine/state.h"
#include "daemon/engine/encoded_event.h"
#include "daemon/engine/instance_view.h"
#include "store/store.h"

namespace nvlsched::daemon {

// What the engine reports about each group commit (for metrics and logs).
struct CommitReport {
  int ops = 0;              // write ops in the group that changed something
  size_t rows = 0;          // rows written
  absl::Duration latency;   // time in Store::Commit
  bool machines_changed = false;  // the group added, changed or removed machine rows
  absl::Status status;
  // The group's events, committed with it (empty when the commit failed), and the oldest
  // event the store retains after it.
  std::vector<std::shared_ptr<const EncodedEvent>> events;
  uint64_t oldest_event = 0;
  // The queue pass of the group (counted only when the commit succeeded), and the queue as
  // the group left it.
  State::QueuePass queue_pass;
  size_t queue_length = 0;
  size_t reservations = 0;
  // Preemptions decided by the group's ops (empty when the commit failed).
  std::vector<State::PreemptionStat> preemptions;
};

// Where one write's time inside the engine went (for metrics): from Submit until the engine
// thread took it into a group (`queued`), from then until its group was committed and handed
// to the completion thread (`engine`: its group's ops, the commit, on_commit), and from then
// until its completion started (`completion`: the completion thread's wake-up and the answers
// of the writes before it). Together with the gRPC call's own duration this says which stage a
// slow call waited in.
struct WriteStages {
  absl::Duration queued;
  absl::Duration engine;
  absl::Duration completion;
};

// The most events one commit prunes.
inline constexpr uint64_t kMaxEventsPrunedPerCommit = 4096;

class Engine {
 public:
  // Runs on the engine thread with exclusive access to `state`. Either returns an error having
  // changed nothing (plan, then apply), or applies its change through State's change methods,
  // which record it once: the rows committed and the undo are derived from that record.
  using WriteFn = absl::AnyInvocable<absl::Status(State& state)>;
  // Runs on the completion thread after the group's commit; gets the write's final status. It
  // must not block (it finishes a gRPC reactor) and must not touch State.
  using DoneFn = absl::AnyInvocable<void(absl::Status)>;
  // Runs on the engine thread, read-only, after the group's commit. Must not block.
  using ReadFn = absl::AnyInvocable<void(const State& state)>;

  struct Options {
    // Ops queued and not yet taken by the engine thread; beyond this Submit* fail fast with
    // RESOURCE_EXHAUSTED (the daemon's --max_queued_calls).
    size_t max_queued = 4096;
    // The most write ops one commit takes.
    size_t max_group = 1024;
    // Events kept (--event_retention); older ones are pruned, at most kMaxEventsPrunedPerCommit
    // by each commit, which bounds the rows one commit deletes however long the backlog.
    uint64_t event_retention = 1000000;
    // Optional: runs on the completion thread for every write, just before its `done`, with
    // where its time went. Must not block.
    std::function<void(const WriteStages&)> on_write_stages;
  };

  // `state` and `store` must outlive the engine. `on_commit` (optional) runs on the engine
  // thread after every commit attempt; `on_read_only` (optional) runs once when a commit fails.
  Engine(State* state, store::Store* store, Options options,
         std::function<void(const CommitReport&)> on_commit = nullptr,
         std::function<void(const absl::Status&)> on_read_only = nullptr);
  ~Engine();  // Stop()s.

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void Start();
  // Finishes the queued ops, then stops the thread. Later Submit* fail with UNAVAILABLE.
  void Stop();

  // Queues a write. If it returns non-OK, the op was not queued and `done` will not run
  // (RESOURCE_EXHAUSTED: queue full; UNAVAILABLE: read-only or stopped). An op whose deadline
  // has passed when its turn comes is not applied: done(DEADLINE_EXCEEDED).
  absl::Status SubmitWrite(WriteFn write, DoneFn done, absl::Time deadline = absl::InfiniteFuture());
  // Queues a read (same errors, except that reads are accepted while read-only). A read whose
  // deadline has passed when its turn comes does not run: refused(DEADLINE_EXCEEDED) instead
  // (when `refused` is empty, the read runs anyway).
  absl::Status SubmitRead(ReadFn read, absl::Time deadline = absl::InfiniteFuture(),
                          DoneFn refused = nullptr);

  // The committed instance records, for reads off the engine thread (instance_view.h). Filled
  // from State at Start, then published after every successful commit, before its answers.
  const InstanceView& view() const { return view_; }

  bool read_only() const { return read_only_.load(std::memory_order_acquire); }
  size_t queued() const;

  // From now on every Submit* fails with `refusal` (non-OK; UNAVAILABLE naming why and where to
  // go, e.g. "standby, ... the leader is host:port"): the daemon stepped down and no longer
  // leads (daemon.h Daemon::StepDown). Ops already queued still run. May be called again to
  // change the reason. Thread-safe.
  void SetRefusal(absl::Status refusal);
  // OK, or the refusal set last. Thread-safe; no lock taken while none is set.
  absl::Status Refusal() const;

 private:
  struct Op {
    WriteFn write;   // empty for a read
    DoneFn done;     // a write's completion, or a read's refusal
    ReadFn read;
    absl::Time deadline;
    absl::Time submitted;  // set when on_write_stages is
  };

  absl::Status Enqueue(Op op, bool is_write);
  void Run();
  void RunGroup(std::deque<Op>& group);
  // The queue's earliest deadline (engine thread), published for the wait in Run.
  void PublishNextDeadline();
  // The completion thread: runs the groups' completions in order until stopped and drained.
  void RunCompletions();

  // Constant after construction.
  State* const state_;
  store::Store* const store_;
  const Options options_;
  const std::function<void(const CommitReport&)> on_commit_;
  const std::function<void(const absl::Status&)> on_read_only_;

  mutable Mutex mu_;
  CondVar work_;  // signalled when queue_ gains an op or stopping_ is set
  std::deque<Op> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // When the engine must wake with no op queued, to expire queued requests.
  absl::Time next_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();

  std::atomic<bool> read_only_{false};
  std::atomic<bool> refusing_{false};  // refusal_ is set
  absl::Status refusal_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
  InstanceView view_;

  // Completions handed over by the engine thread, not yet run.
  Mutex completion_mu_;
  CondVar completion_work_;  // signalled when completions_ grows or completion_stopping_ is set
  CondVar completion_room_;  // signalled when the completion thread takes completions_
  std::vector<absl::AnyInvocable<void()>> completions_ ABSL_GUARDED_BY(completion_mu_);
  bool completion_stopping_ ABSL_GUARDED_BY(completion_mu_) = false;
  std::thread completion_thread_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_ENGINE_H_
