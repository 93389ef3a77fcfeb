#include "bench/replay/policy_factory.h"

#include <cstddef>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/replay/allocator_policy.h"
#include "bench/replay/baseline_policies.h"

namespace nvlsched::replay {
namespace {

// FNV-1a of the name mixed with the seed: stable across runs, builds and platforms.
uint64_t PolicySeed(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::vector<std::string> KnownPolicies() { return {"best-fit", "carbide", "first-fit", "random"}; }

bool IsKnownPolicy(const std::string& name) {
  for (const std::string& known : KnownPolicies()) {
    if (name == known) return true;
  }
  return false;
}

bool PolicyCanQueue(const std::string& name) { return name == "best-fit"; }

bool PolicyCanPreempt(const std::string& name) { return name == "best-fit"; }

absl::StatusOr<std::unique_ptr<PlacementPolicy>> MakePolicy(const std::string& name,
                                                            const FleetSpec& spec,
                                                            uint64_t seed,
                                                            int32_t reservation_depth,
                                                            bool preemption) {
  const uint64_t policy_seed = PolicySeed(seed, name);
  if (name == "best-fit") {
    allocator::GangQueue::Options queue_options;
    queue_options.reservation_depth = reservation_depth;
    queue_options.max_length = std::numeric_limits<size_t>::max();
    absl::StatusOr<std::unique_ptr<AllocatorPolicy>> policy =
        AllocatorPolicy::Create(spec, queue_options, preemption);
    if (!policy.ok()) return policy.status();
    return std::unique_ptr<PlacementPolicy>(std::move(*policy));
  }
  if (name == "carbide") return std::make_unique<CarbidePolicy>(spec, policy_seed);
  if (name == "first-fit") return std::make_unique<FirstFitPolicy>(spec, policy_seed);
  if (name == "random") return std::make_unique<RandomPolicy>(spec, policy_seed);
  return absl::InvalidArgumentError(absl::StrCat("unknown policy \"", name, "\"; known: ",
                                                 absl::StrJoin(KnownPolicies(), ",")));
}

}  // namespace nvlsched::replay
