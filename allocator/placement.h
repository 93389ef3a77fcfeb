// Results of planning: what Allocator::PlanBatch / PlanSingle / PlanRelease return and
// Allocator::Apply consumes. Plans are values; nothing changes until Apply.
//
// Thread-safety: plain values. A plan is only valid against the Allocator state it was
// planned on (Apply asserts that in debug builds).
#ifndef NVLSCHED_ALLOCATOR_PLACEMENT_H_
#define NVLSCHED_ALLOCATOR_PLACEMENT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace nvlsched::allocator {

// Dense indices used inside the allocator. Exposed so a Placement can carry them to
// Apply without a second id lookup; callers never need to interpret them.
using TypeIndex = uint32_t;
using DomainIndex = uint32_t;
using MachineIndex = uint32_t;
using TenantIndex = uint32_t;
using ClaimIndex = uint32_t;
using SiteIndex = uint32_t;
using PartitionIndex = uint32_t;
inline constexpr uint32_t kNoIndex = UINT32_MAX;

// A batch is at most 18 machines today; 18 entries are stored inline so planning a batch
// does not allocate.
inline constexpr size_t kInlineBatch = 18;

// Where one instance of a plan goes.
struct PlacedInstance {
  // Views into the allocator's own records: valid until that machine is removed or the
  // Allocator is destroyed. Copy them if you keep them longer.
  std::string_view machine_id;
  std::string_view domain_id;
  int32_t gpu_count = 0;  // GPUs held: the machine's gpu_count when whole_machine
  bool whole_machine = true;
  MachineIndex machine = kNoIndex;
  DomainIndex domain = kNoIndex;
};

// A planned placement. instances[i] is where the i-th instance id given to Apply goes.
// Machines come grouped by domain and, within a domain, in ascending tray order.
struct Placement {
  absl::InlinedVector<PlacedInstance, kInlineBatch> instances;
  TenantIndex tenant = kNoIndex;
  TypeIndex type = kNoIndex;
  // True for strict batches and singles: recorded with each instance (invariant 2).
  bool topology_optimized = true;
  // Copied from the request (empty on the common path, so no allocation).
  std::vector<std::string> nvlink_partition_ids;
  // Allocator generation the plan was made against; Apply asserts it is still current.
  uint64_t planned_at = 0;

  size_t size() const { return instances.size(); }
};

// A planned release of instances; see Allocator::PlanRelease.
struct ReleasePlan {
  absl::InlinedVector<ClaimIndex, kInlineBatch> claims;
  bool machine_health_issue = false;
  uint64_t planned_at = 0;

  size_t size() const { return claims.size(); }
};

// A position in the undo journal; see Allocator::Mark.
struct JournalMark {
  size_t position = 0;
  uint64_t epoch = 0;  // changes on ClearJournal, so a stale mark is caught
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_PLACEMENT_H_
