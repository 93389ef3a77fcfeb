// AllocatorPolicy: nvlsched's own placement ("best-fit") behind the replay's
// PlacementPolicy interface. It drives the real allocator::Allocator exactly as the daemon's
// engine does: PlanBatch / PlanSingle, Apply, PlanRelease, Apply, ClearJournal (the replay
// has no store, so every change is "committed" at once).
//
// The fleet is one instance type "replay-gpu" of G GPUs per machine, D domains
// ("d000"...) of M machines ("d000-t00"...), one tenant "replay". The trace has no tenants,
// so quota is not what the replay measures: the tenant's quota is unlimited (2^40
// machines). It has to be: in queue mode the GPUs committed to queued requests count
// against quota, and a quota of one fleet would refuse every request once the queue held a
// fleet's worth of GPUs. Every refusal is therefore a capacity refusal; any other is a bug.
// Strict batches and whole-machine singles go to the best-fit domain; cross-domain batches
// use SpreadPolicy FILL; GPU-granular singles follow gpu_granular_policy.h.
//
// Queue mode (QueueingPolicy): the daemon's path through allocator::GangQueue. An arriving
// job is planned with the exclusions a new request gets (ExclusionsForNew, priority 0) and
// the tenant's queued GPUs as committed quota; refused for capacity, it is inserted with
// the next sequence number (1, 2, ... in Submit order, so a resubmitted job queues behind
// every job queued before it), priority 0, quota GPUs = the GPUs it will hold. Schedule
// runs GangQueue::Schedule, whose sink applies each placement to the allocator (keeping the
// handles, so Release works as after TryPlace) and reports it.
//
// Spot and preemption: every request carries JobShape::spot (BatchRequest / SingleRequest
// ::spot) and every placement of queue mode its start time (Placement::started_micros), so
// the allocator knows which instances are spot and how long they have run. Built with
// preemption on, Submit handles a capacity refusal of an on-demand job that is not a
// cross-domain batch (those never preempt, allocator.h) by Allocator::PlanPreemption with the
// same constraints (so the domains reserved for the batches queued ahead are never taken);
// given a plan it kills the victims' jobs at once — no grace period: each is released from
// the allocator and reported to Events::Preempted — and places the job in plan.domain
// (PlanConstraints::pinned_domain). The victims must be exactly the instances of whole jobs
// (a spot batch with all its instances, or a spot single): anything else is reported as a
// bug (INTERNAL). A spot job never preempts; with no plan (RESOURCE_EXHAUSTED) the job
// queues as without preemption. Queued jobs never preempt: GangQueue's pass knows nothing
// of preemption, so only an arrival does. TryPlace (drop and wait modes) never preempts.
// Thread-safety: none; one owner.
#ifndef NVLSCHED_BENCH_REPLAY_ALLOCATOR_POLICY_H_
#define NVLSCHED_BENCH_REPLAY_ALLOCATOR_POLICY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "allocator/allocator.h"
#include "allocator/gang_queue.h"
#include "bench/replay/placement_policy.h"
#include "bench/replay/queueing_policy.h"

namespace nvlsched::replay {

class AllocatorPolicy final : public PlacementPolicy, private QueueingPolicy {
 public:
  // Builds the fleet in a fresh Allocator; `queue_options` configure the queue of queue
  // mode, `preemption` whether its Submit preempts spot jobs (see above). INVALID_ARGUMENT
  // when the Allocator rejects the fleet (e.g. more than kMaxMachinesPerDomain machines per
  // domain).
  static absl::StatusOr<std::unique_ptr<AllocatorPolicy>> Create(
      const FleetSpec& spec, allocator::GangQueue::Options queue_options = {},
      bool preemption = false);

  std::string_view name() const override { return "best-fit"; }
  absl::StatusOr<bool> TryPlace(uint32_t job, const JobShape& shape) override;
  absl::Status Release(uint32_t job) override;
  FleetStats Stats() const override;
  QueueingPolicy* queueing() override { return this; }

  const allocator::Allocator& allocator() const { return allocator_; }
  const allocator::GangQueue& queue() const { return queue_; }

 private:
  class QueueSink;

  AllocatorPolicy(const FleetSpec& spec, allocator::GangQueue::Options queue_options,
                  bool preemption)
      : spec_(spec), queue_(queue_options), preemption_(preemption) {}
  absl::Status BuildFleet();
  // Fills batch_request_ or single_request_ for the shape; true for a batch.
  bool PrepareRequest(const JobShape& shape);
  // Applies a plan made for `job` against the current state, its instances starting at
  // `started_s`, and keeps its handles.
  void ApplyPlacement(uint32_t job, bool batch, const allocator::Placement& placement,
                      int64_t started_s);
  absl::Status NotCapacity(uint32_t job, const JobShape& shape, const absl::Status& status) const;
  // Preemption for `job`, whose request is prepared and was refused for capacity under
  // `constraints`: true when it was placed by killing spot jobs, false when no plan exists.
  absl::StatusOr<bool> PlaceByPreempting(uint32_t job, const JobShape& shape, bool batch,
                                         allocator::PlanConstraints constraints, int64_t now_s,
                                         Events& events);
  // Releases the plan's victims, which must be whole jobs, and reports each job.
  absl::Status KillVictims(const allocator::PreemptionPlan& plan, Events& events);

  // QueueingPolicy.
  absl::StatusOr<bool> Submit(uint32_t job, const JobShape& shape, int64_t now_s,
                              int64_t deadline_s, Events& events) override;
  absl::Status Schedule(int64_t now_s, Events& events) override;
  size_t queue_length() const override { return queue_.size(); }
  bool preempts() const override { return preemption_; }
  std::optional<int64_t> NextDeadline() const override;

  FleetSpec spec_;
  allocator::Allocator allocator_;
  allocator::GangQueue queue_;
  const bool preemption_;
  allocator::TenantIndex tenant_ = allocator::kNoIndex;
  allocator::TypeIndex type_ = allocator::kNoIndex;
  // The allocator's handles of each job's instances (the replay needs no instance ids), and
  // back: whose instance a handle is (to name a preemption's victims).
  absl::flat_hash_map<uint32_t, std::vector<allocator::InstanceHandle>> instances_of_job_;
  absl::flat_hash_map<allocator::InstanceHandle, uint32_t> job_of_instance_;
  // Queue tickets: the job each queued sequence number stands for, and the next number.
  absl::flat_hash_map<uint64_t, uint32_t> job_of_sequence_;
  uint64_t next_sequence_ = 1;  // 0 is never a ticket
  std::vector<uint32_t> victim_jobs_;  // scratch
  std::string batch_id_;  // scratch
  allocator::BatchRequest batch_request_;
  allocator::SingleRequest single_request_;
};

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_ALLOCATOR_POLICY_H_
