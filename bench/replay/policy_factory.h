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

// A policy holding an empty fleet of `spec`. A randomized policy draws from a generator
// seeded by (seed, its name): the same --seed gives the same run, whichever other
// policies run beside it. INVALID_ARGUMENT for an unknown name or a fleet the policy
// cannot hold.
absl::StatusOr<std::unique_ptr<PlacementPolicy>> MakePolicy(const std::string& name,
                                                            const FleetSpec& spec,
                                                            uint64_t seed);

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_POLICY_FACTORY_H_
