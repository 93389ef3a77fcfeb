// AllocatorPolicy: nvlsched's own placement ("best-fit") behind the replay's
// PlacementPolicy interface. It drives the real allocator::Allocator exactly as the daemon's
// engine does: PlanBatch / PlanSingle, Apply, PlanRelease, Apply, ClearJournal (the replay
// has no store, so every change is "committed" at once).
//
// The fleet is one instance type "replay-gpu" of G GPUs per machine, D domains
// ("d000"...) of M machines ("d000-t00"...), one tenant "replay" whose quota is the whole
// fleet (so a quota violation can only mean "the fleet is too full now": it is counted as a
// capacity refusal, see TryPlace). Strict batches and whole-machine singles go to the best-fit domain; cross-domain
// batches use SpreadPolicy FILL; GPU-granular singles follow gpu_granular_policy.h.
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
#include "bench/replay/placement_policy.h"

namespace nvlsched::replay {

class AllocatorPolicy final : public PlacementPolicy {
 public:
  // Builds the fleet in a fresh Allocator. INVALID_ARGUMENT when the Allocator rejects the
  // fleet (e.g. more than kMaxMachinesPerDomain machines per domain).
  static absl::StatusOr<std::unique_ptr<AllocatorPolicy>> Create(const FleetSpec& spec);

  std::string_view name() const override { return "best-fit"; }
  absl::StatusOr<bool> TryPlace(uint32_t job, const JobShape& shape) override;
  absl::Status Release(uint32_t job) override;
  FleetStats Stats() const override;

  const allocator::Allocator& allocator() const { return allocator_; }

 private:
  explicit AllocatorPolicy(const FleetSpec& spec) : spec_(spec) {}
  absl::Status BuildFleet();

  FleetSpec spec_;
  allocator::Allocator allocator_;
  // The allocator's handles of each job's instances (the replay needs no instance ids).
  absl::flat_hash_map<uint32_t, std::vector<allocator::InstanceHandle>> instances_of_job_;
  std::string batch_id_;  // scratch
  allocator::BatchRequest batch_request_;
  allocator::SingleRequest single_request_;
};

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_ALLOCATOR_POLICY_H_
