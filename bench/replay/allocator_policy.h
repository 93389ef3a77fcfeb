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
// sequence = arrival index + 1, priority 0, quota GPUs = the GPUs it will hold. Schedule
// runs GangQueue::Schedule, whose sink applies each placement to the allocator (keeping the
// handles, so Release works as after TryPlace) and reports it.
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
  // mode. INVALID_ARGUMENT when the Allocator rejects the fleet (e.g. more than
  // kMaxMachinesPerDomain machines per domain).
  static absl::StatusOr<std::unique_ptr<AllocatorPolicy>> Create(
      const FleetSpec& spec, allocator::GangQueue::Options queue_options = {});

  std::string_view name() const override { return "best-fit"; }
  absl::StatusOr<bool> TryPlace(uint32_t job, const JobShape& shape) override;
  absl::Status Release(uint32_t job) override;
  FleetStats Stats() const override;
  QueueingPolicy* queueing() override { return this; }

  const allocator::Allocator& allocator() const { return allocator_; }
  const allocator::GangQueue& queue() const { return queue_; }

 private:
  class QueueSink;

  AllocatorPolicy(const FleetSpec& spec, allocator::GangQueue::Options queue_options)
      : spec_(spec), queue_(queue_options) {}
  absl::Status BuildFleet();
  // Fills batch_request_ or single_request_ for the shape; true for a batch.
  bool PrepareRequest(const JobShape& shape);
  // Applies a plan made for `job` against the current state and keeps its handles.
  void ApplyPlacement(uint32_t job, bool batch, const allocator::Placement& placement);
  absl::Status NotCapacity(uint32_t job, const JobShape& shape, const absl::Status& status) const;

  // QueueingPolicy.
  absl::StatusOr<bool> Submit(uint32_t job, const JobShape& shape, int64_t now_s,
                              int64_t deadline_s) override;
  absl::Status Schedule(int64_t now_s, Events& events) override;
  size_t queue_length() const override { return queue_.size(); }
  std::optional<int64_t> NextDeadline() const override;

  FleetSpec spec_;
  allocator::Allocator allocator_;
  allocator::GangQueue queue_;
  allocator::TenantIndex tenant_ = allocator::kNoIndex;
  allocator::TypeIndex type_ = allocator::kNoIndex;
  // The allocator's handles of each job's instances (the replay needs no instance ids).
  absl::flat_hash_map<uint32_t, std::vector<allocator::InstanceHandle>> instances_of_job_;
  std::string batch_id_;  // scratch
  allocator::BatchRequest batch_request_;
  allocator::SingleRequest single_request_;
};

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_ALLOCATOR_POLICY_H_
