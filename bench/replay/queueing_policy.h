// QueueingPolicy: a policy that queues refused jobs itself, for --on_refusal=queue. Only
// nvlsched's own policy has one (AllocatorPolicy, driven by allocator::GangQueue exactly as
// the daemon drives it); the baselines cannot hold reservations and run FIFO wait mode
// instead (simulator.h).
//
// The simulator owns time and the completions; the policy owns the queue: which waiting job
// goes next, which domains are reserved for the batches at its head, which job backfills.
// Times are simulated seconds.
//
// Preemption (--preemption=on, a policy that preempts(): only nvlsched's): an arriving
// on-demand job the fleet cannot hold may evict running spot jobs (JobShape::spot) at once,
// as whole jobs, and take their place; Submit reports each job it killed (Events::Preempted)
// before returning. What happens to a killed job next (resubmitted or lost) is the
// simulator's business.
//
// Thread-safety: like PlacementPolicy, one owner.
#ifndef NVLSCHED_BENCH_REPLAY_QUEUEING_POLICY_H_
#define NVLSCHED_BENCH_REPLAY_QUEUEING_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/replay/placement_policy.h"

namespace nvlsched::replay {

// A deadline that never comes: the job waits until it is placed.
inline constexpr int64_t kNoDeadline = INT64_MAX;

class QueueingPolicy {
 public:
  // What a scheduling pass did, one call per job it took out of the queue.
  class Events {
   public:
    virtual ~Events() = default;
    // The job now holds its placement (Release frees it, as after TryPlace).
    virtual void Started(uint32_t job) = 0;
    // The job's deadline passed while it waited: it never runs.
    virtual void Expired(uint32_t job) = 0;
    // The job, a running spot job, was killed to make room for an arriving on-demand job: it
    // holds nothing any more (do not Release it). Reported during Submit, before the
    // arriving job is placed.
    virtual void Preempted(uint32_t job) = 0;
  };

  virtual ~QueueingPolicy() = default;

  // A job arriving at `now_s` (`job`: an id unique among the jobs queued or placed; a job
  // may come again once it no longer holds anything, e.g. after a preemption): placed now if
  // it fits outside the domains reserved for the jobs waiting ahead of it (true), else —
  // when preempts() and the job is on-demand — placed by evicting running spot jobs (each
  // reported to events.Preempted first; true), else queued until `deadline_s` (kNoDeadline:
  // never expires) behind every job queued before it, and false. An error means the policy
  // is broken (e.g. a refusal for a reason other than capacity).
  // REQUIRES: shape.kind != kInfeasible.
  virtual absl::StatusOr<bool> Submit(uint32_t job, const JobShape& shape, int64_t now_s,
                                      int64_t deadline_s, Events& events) = 0;

  // One pass at `now_s` (expiry, then placement in queue order with backfill and
  // reservations); reports what it did to `events` before returning. Call it whenever
  // capacity was freed, after a Submit that queued, and at NextDeadline().
  virtual absl::Status Schedule(int64_t now_s, Events& events) = 0;

  virtual size_t queue_length() const = 0;
  // True when Submit may preempt spot jobs (the policy was built with preemption on).
  virtual bool preempts() const = 0;
  // The earliest deadline of a waiting job, or nullopt (none waits, or none expires).
  virtual std::optional<int64_t> NextDeadline() const = 0;
};

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_QUEUEING_POLICY_H_
