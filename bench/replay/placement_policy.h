// PlacementPolicy: the one interface every policy compared by nvlsched-replay sits behind —
// nvlsched's own Allocator (allocator_policy.h) and the baselines (baseline_policies.h).
//
// A policy owns its own copy of the fleet. The simulator (simulator.h) asks it to place a
// job of a given shape and later to release it; it never looks inside.
//
// Thread-safety: a policy object is used by one thread; different objects share nothing,
// so the simulator may run several policies on several threads.
#ifndef NVLSCHED_BENCH_REPLAY_PLACEMENT_POLICY_H_
#define NVLSCHED_BENCH_REPLAY_PLACEMENT_POLICY_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "allocator/string_view_compat.h"

namespace nvlsched::replay {

class QueueingPolicy;  // queueing_policy.h

using allocator::AbslView;  // allocator/string_view_compat.h: the one copy of the shim

// D domains x M machines x G GPUs, every machine of one instance type.
struct FleetSpec {
  int32_t domains = 35;
  int32_t machines_per_domain = 18;
  int32_t gpus_per_machine = 4;

  int64_t machines() const { return int64_t{domains} * machines_per_domain; }
  int64_t gpus() const { return machines() * gpus_per_machine; }
};

// How a trace job maps onto the fleet (job_shape.h decides).
enum class JobKind : uint8_t {
  kGpuSingle,         // fewer GPUs than a machine has: one GPU-granular instance
  kWholeSingle,       // exactly one machine's GPUs: one whole-machine instance
  kStrictBatch,       // 2..M whole machines, all in one NVLink domain
  kCrossDomainBatch,  // more machines than a domain holds, spread over domains
  kInfeasible,        // can never be placed on this fleet; never reaches a policy
};
inline constexpr int kJobKinds = 5;
std::string_view JobKindName(JobKind kind);

struct JobShape {
  JobKind kind = JobKind::kGpuSingle;
  int32_t gpus = 0;      // GPUs the job holds (machines * G for whole-machine kinds)
  int32_t machines = 0;  // whole machines (0 for a GPU-granular single)
  // Billing (--spot_share, job_shape.h IsSpotJob): a spot job may be preempted by an
  // on-demand one and never preempts. Only a policy that preempts looks at it; the others
  // place spot jobs like any other.
  bool spot = false;
};

// What the fleet looks like now, for the report and the refusal diagnosis.
struct FleetStats {
  int64_t used_gpus = 0;
  int64_t free_gpus = 0;            // GPUs not held by anything
  int64_t free_machines = 0;        // machines held by nothing (a batch could use them)
  int64_t fully_free_domains = 0;   // domains whose machines are all free
  int64_t stranded_machines = 0;    // free, but in a domain with fewer than 2 free
  int64_t largest_domain_free = 0;  // most free machines in one domain
};

class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;

  virtual std::string_view name() const = 0;

  // Places `job` (an id unique among jobs currently placed) if the policy finds room:
  // true = placed, false = refused now (nothing changed). An error means the policy itself
  // is broken (e.g. the Allocator answered something other than "no capacity") and the
  // replay must stop. REQUIRES: shape.kind != kInfeasible.
  virtual absl::StatusOr<bool> TryPlace(uint32_t job, const JobShape& shape) = 0;

  // Frees everything `job` holds. REQUIRES: TryPlace(job, ...) returned true and `job` was
  // not released since.
  virtual absl::Status Release(uint32_t job) = 0;

  virtual FleetStats Stats() const = 0;

  // The policy's own queue for --on_refusal=queue, or nullptr when it has none (it then
  // runs FIFO wait mode). Owned by the policy.
  virtual QueueingPolicy* queueing() { return nullptr; }
};

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_PLACEMENT_POLICY_H_
