// Makes a replay policy by name: "best-fit" (nvlsched's Allocator), "carbide",
// "first-fit", "random".
#ifndef NVLSCHED_BENCH_REPLAY_POLICY_FACTORY_H_
#define NVLSCHED_BENCH_REPLAY_POLICY_FACTORY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/replay/placement_policy.h"

namespace nvlsched::replay {

std::vector<std::string> KnownPolicies();
bool IsKnownPolicy(const std::string& name);
// True when the policy has its own queue for --on_refusal=queue (queueing_policy.h): only
// "best-fit". The others run FIFO wait mode when asked to queue.
bool PolicyCanQueue(const std::string& name);
// True when the policy can preempt spot jobs in queue mode (queueing_policy.h): only
// "best-fit". The others have no notion of spot and run as with preemption off.
bool PolicyCanPreempt(const std::string& name);

// A policy holding an empty fleet of `spec`. A randomized policy draws from a generator
// seeded by (seed, its name): the same --seed gives the same run, whichever other
// policies run beside it. A policy with a queue holds reservations for up to
// `reservation_depth` waiting batches, and its queue has no length limit (the replay
// measures waiting, not admission); with `preemption` (and PolicyCanPreempt) an arriving
// on-demand job may preempt spot jobs. INVALID_ARGUMENT for an unknown name or a fleet the
// policy cannot hold.
absl::StatusOr<std::unique_ptr<PlacementPolicy>> MakePolicy(const std::string& name,
                                                            const FleetSpec& spec,
                                                            uint64_t seed,
                                                            int32_t reservation_depth = 4,
                                                            bool preemption = false);

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_POLICY_FACTORY_H_
