#include "daemon/engine/engine.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace nvlsched::daemon {

Engine::Engine(State* state, store::Store* store, Options options,
               std::function<void(const CommitReport&)> on_commit,
               std::function<void(const absl::Status&)> on_read_only)
    : state_(state),
      store_(store),
      options_(options),
      on_commit_(std::move(on_commit)),
      on_read_only_(std::move(on_read_only)) {}

Engine::~Engine() { Stop(); }

void Engine::Start() {
  MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  // A loaded queue gets its first pass at once: it recomputes the reservations (the same
  // ones as before the restart: they follow from the queue and the fleet) and expires what
  // timed out while the daemon was down; preempted instances whose deadline passed meanwhile
  // are released then too (and the pass arms the timer for the next deadline).
  if (!state_->queue().empty() || state_->NextPreemptionDeadline().has_value()) {
    next_deadline_ = absl::InfinitePast();
  }
  view_.PublishAll(*state_);  // before the engine thread: it owns State from here on
  completion_thread_ = std::thread([this] { RunCompletions(); });
  thread_ = std::thread([this] { Run(); });
}

void Engine::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    work_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
  // After the engine thread: every completion it handed over still runs.
  {
    MutexLock lock(&completion_mu_);
    completion_stopping_ = true;
    completion_work_.SignalAll();
  }
  if (completion_thread_.joinable()) completion_thread_.join();
}

void Engine::RunCompletions() {
  pthread_setname_np(pthread_self(), "nvl-completions");
  std::vector<absl::AnyInvocable<void()>> batch;
  while (true) {
    {
      MutexLock lock(&completion_mu_);
      while (completions_.empty() && !completion_stopping_) completion_work_.Wait(&completion_mu_);
      if (completions_.empty()) return;  // stopping, and everything handed over has run
      batch.swap(completions_);
      completion_room_.SignalAll();
    }
    for (absl::AnyInvocable<void()>& fn : batch) std::move(fn)();
    batch.clear();
  }
}

size_t Engine::queued() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

void Engine::SetRefusal(absl::Status refusal) {
  MutexLock lock(&mu_);
  refusal_ = std::move(refusal);
  refusing_.store(true, std::memory_order_release);
}

absl::Status Engine::Refusal() const {
  if (!refusing_.load(std::memory_order_acquire)) return absl::OkStatus();
  MutexLock lock(&mu_);
  return refusal_;
}

absl::Status Engine::Enqueue(Op op, bool is_write) {
  if (options_.on_write_stages) op.submitted = absl::Now();
  MutexLock lock(&mu_);
  if (refusing_.load(std::memory_order_relaxed)) return refusal_;
  if (stopping_ || !started_) {
    return absl::UnavailableError("nvlschedd is shutting down; retry against the new instance");
  }
  if (is_write && read_only_.load(std::memory_order_acquire)) {
    return absl::UnavailableError(
        "nvlschedd is read-only after a failed database commit; fix the disk and restart it");
  }
  if (queue_.size() >= options_.max_queued) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "nvlschedd is overloaded: ", queue_.size(), " calls are already queued; retry with backoff"));
  }
  queue_.push_back(std::move(op));
  work_.Signal();
  return absl::OkStatus();
}

absl::Status Engine::SubmitWrite(WriteFn write, DoneFn done, absl::Time deadline) {
  Op op;
  op.write = std::move(write);
  op.done = std::move(done);
  op.deadline = deadline;
  return Enqueue(std::move(op), /*is_write=*/true);
}

absl::Status Engine::SubmitRead(ReadFn read, absl::Time deadline, DoneFn refused) {
  Op op;
  op.read = std::move(read);
  op.done = std::move(refused);
  op.deadline = deadline;
  return Enqueue(std::move(op), /*is_write=*/false);
}

void Engine::Run() {
  pthread_setname_np(pthread_self(), "nvl-engine");
  std::deque<Op> group;
  while (true) {
    {
      MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) {
        // A queued request's deadline is a change with no op: wake for it.
        if (next_deadline_ != absl::InfiniteFuture()) {
          if (work_.WaitWithDeadline(&mu_, next_deadline_)) break;
        } else {
          work_.Wait(&mu_);
        }
      }
      if (queue_.empty() && stopping_) return;  // everything queued has been served
      // Take everything queued (up to max_group): these ops share one commit.
      while (!queue_.empty() && group.size() < options_.max_group) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunGroup(group);
    group.clear();
  }
}

void Engine::PublishNextDeadline() {
  // Read-only: no pass can run, so nothing is worth waking for.
  absl::Time next = absl::InfiniteFuture();
  if (!read_only_.load(std::memory_order_acquire)) {
    if (std::optional<int64_t> d = state_->queue().NextDeadline()) next = absl::FromUnixMicros(*d);
    if (std::optional<absl::Time> d = state_->NextPreemptionDeadline()) next = std::min(next, *d);
  }
  MutexLock lock(&mu_);
  next_deadline_ = next;
}

void Engine::RunGroup(std::deque<Op>& group) {
  const State::JournalMark group_mark = state_->Mark();
  std::vector<absl::Status> results(group.size());
  int changed_ops = 0;

  const absl::Time now = absl::Now();  // also when the group was taken (WriteStages)
  for (size_t i = 0; i < group.size(); ++i) {
    Op& op = group[i];
    if (!op.write) continue;
    if (read_only_.load(std::memory_order_acquire)) {
      results[i] = absl::UnavailableError(
          "nvlschedd is read-only after a failed database commit; fix the disk and restart it");
      continue;
    }
    if (op.deadline < now) {
      results[i] = absl::DeadlineExceededError(
          "the call's deadline passed while it was queued; nothing was done");
      continue;
    }
    const State::JournalMark op_mark = state_->Mark();
    results[i] = op.write(*state_);
    if (!results[i].ok()) {
      // Ops plan before they apply, so a failed op changed nothing; this only guards against
      // an op that broke that rule, so one bad op can never leak into the commit.
      state_->RollbackTo(op_mark);
    } else if (state_->ChangedSince(op_mark)) {
      ++changed_ops;
    }
  }

  // One pass of the queue, in the same commit, when the group changed what a pass sees
  // (State::queue_pass_due) or a queued request's deadline passed; a group of reads runs none.
  State::QueuePass queue_pass;
  if (!read_only_.load(std::memory_order_acquire)) {
    const absl::Time pass_time = absl::Now();  // after the ops: no wait comes out negative
    // Preempted instances not released by their deadline are released now (their
    // preemptors are then placed by the pass).
    if (std::optional<absl::Time> d = state_->NextPreemptionDeadline(); d && *d <= pass_time) {
      queue_pass.preemptions_released = state_->ReleaseOverduePreemptions(pass_time);
    }
    std::optional<int64_t> deadline = state_->queue().NextDeadline();
    if (state_->queue_pass_due() ||
        (deadline.has_value() && *deadline <= absl::ToUnixMicros(pass_time))) {
      const int released = queue_pass.preemptions_released;
      queue_pass = state_->RunQueue(pass_time);
      queue_pass.preemptions_released = released;
    }
  }

  if (state_->ChangedSince(group_mark)) {
    CommitReport report;
    report.ops = changed_ops;
    report.queue_pass = std::move(queue_pass);
    report.preemptions = state_->TakePreemptions();
    store::ChangeSet cs = state_->ChangesSince(group_mark);
    // The group's events, numbered after the last committed one, in the same transaction.
    std::vector<EncodedEvent> events =
        state_->EventsSince(group_mark, state_->newest_event() + 1, now, &cs);
    // The events' bytes move into the rows for the commit and back afterwards.
    cs.append_events.reserve(events.size());
    for (EncodedEvent& event : events) {
      cs.append_events.push_back(store::EventRow{event.sequence, absl::ToUnixMicros(now),
                                                 event.type, event.org, event.tenant_id,
                                                 std::move(event.bytes)});
    }
    uint64_t oldest = state_->oldest_event();
    const uint64_t newest = state_->newest_event() + events.size();
    if (oldest == 0 && !events.empty()) oldest = events.front().sequence;
    if (oldest > 0 && newest - oldest + 1 > options_.event_retention) {
      const uint64_t through =
          std::min(newest - options_.event_retention, oldest - 1 + kMaxEventsPrunedPerCommit);
      cs.prune_events_through = through;
      oldest = through + 1;
    }
    report.rows = cs.size();
    report.machines_changed = !cs.upsert_machines.empty() || !cs.delete_machine_ids.empty();
    const absl::Time start = absl::Now();
    report.status = store_->Commit(cs);
    report.latency = absl::Now() - start;
    for (size_t i = 0; i < events.size(); ++i) {
      events[i].bytes = std::move(cs.append_events[i].payload);
    }
    if (!report.status.ok()) {
      state_->RollbackTo(group_mark);
      read_only_.store(true, std::memory_order_release);
      spdlog::critical("commit of {} writes failed, they were undone; read-only until restart: {}",
                       changed_ops, report.status.ToString());
      for (size_t i = 0; i < group.size(); ++i) {
        if (group[i].write && results[i].ok()) {
          results[i] = absl::UnavailableError(absl::StrCat(
              "the database commit failed, nothing of this call was kept (",
              report.status.message(), "); nvlschedd is read-only until restarted"));
        }
      }
      report.queue_pass = State::QueuePass{};
      report.preemptions.clear();
      if (on_read_only_) on_read_only_(report.status);
    } else {
      view_.Publish(*state_, group_mark);  // durable: readers may see it, before any answer
      state_->SetEventBounds(oldest, newest);
      report.oldest_event = oldest;
      report.events.reserve(events.size());
      for (EncodedEvent& event : events) {
        report.events.push_back(std::make_shared<const EncodedEvent>(std::move(event)));
      }
    }
    report.queue_length = state_->queue().size();
    report.reservations = state_->queue().reservations().size();
    if (on_commit_) on_commit_(report);
  }
  state_->ClearJournal();
  PublishNextDeadline();

  // Complete in arrival order: writes get their final status; reads see the committed state,
  // unless their caller has given up already (an expired deadline never takes anything). The
  // writes' answers (and the refusals) go out on the completion thread.
  std::vector<absl::AnyInvocable<void()>> completions;
  const absl::Time reply_time = absl::Now();
  for (size_t i = 0; i < group.size(); ++i) {
    Op& op = group[i];
    if (op.write) {
      // The stages so far (op.submitted is set only when on_write_stages is); the completion
      // stage is timed where it ends, on the completion thread.
      completions.push_back([this, stages = WriteStages{now - op.submitted, reply_time - now, {}},
                             reply_time, done = std::move(op.done),
                             status = std::move(results[i])]() mutable {
        if (options_.on_write_stages) {
          stages.completion = absl::Now() - reply_time;
          options_.on_write_stages(stages);
        }
        done(std::move(status));
      });
    } else if (op.done && op.deadline < reply_time) {
      completions.push_back([done = std::move(op.done)]() mutable {
        done(absl::DeadlineExceededError(
            "the call's deadline passed while it was queued; nothing was read"));
      });
    } else {
      op.read(*state_);
    }
  }
  if (!completions.empty()) {
    MutexLock lock(&completion_mu_);
    // Back-pressure: at most one earlier group's completions wait besides this one's.
    while (completions_.size() > options_.max_group) completion_room_.Wait(&completion_mu_);
    for (absl::AnyInvocable<void()>& fn : completions) completions_.push_back(std::move(fn));
    completion_work_.Signal();
  }
}

}  // namespace nvlsched::daemon
