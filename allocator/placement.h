// Results of planning: what Allocator::PlanBatch / PlanSingle / PlanRelease return and
// Allocator::Apply consumes, and the InstanceHandle by which callers name the instances
// Apply records. Plans and handles are values; nothing changes until Apply.
//
// Thread-safety: plain values. A plan is only valid against the Allocator state it was
// planned on (Apply asserts that in debug builds).
#ifndef NVLSCHED_ALLOCATOR_PLACEMENT_H_
#define NVLSCHED_ALLOCATOR_PLACEMENT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"

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
using BatchIndex = uint32_t;
inline constexpr uint32_t kNoIndex = UINT32_MAX;

// How callers name an instance the allocator holds: Apply and RestoreInstance hand one out,
// PlanRelease and FindInstance take it back. The allocator keeps no instance id strings —
// the caller maps its ids to handles (the daemon keeps the handle next to each instance
// record), so no instance id is hashed or copied on the hot path.
//
// A handle is the instance's claim slot plus that slot's generation. The generation goes up
// every time the slot is filled and never goes back (not even on RollbackTo), so a handle
// whose instance was released is stale for good, even once its slot holds another
// instance; checking one is O(1): is the slot live, with this generation? Generations are
// 64-bit and cannot wrap. Valid handles have generation >= 1; a default handle is never
// valid.
struct InstanceHandle {
  ClaimIndex slot = kNoIndex;
  uint64_t generation = 0;

  friend bool operator==(InstanceHandle a, InstanceHandle b) {
    return a.slot == b.slot && a.generation == b.generation;
  }
  friend bool operator!=(InstanceHandle a, InstanceHandle b) { return !(a == b); }
  friend bool operator<(InstanceHandle a, InstanceHandle b) {
    return a.slot != b.slot ? a.slot < b.slot : a.generation < b.generation;
  }
  template <typename H>
  friend H AbslHashValue(H h, InstanceHandle handle) {
    return H::combine(std::move(h), handle.slot, handle.generation);
  }
};

// How text meant for people (error messages, the state_reason of a machine a health issue
// drained) names an instance. The allocator has no instance ids, so its owner, which has,
// installs one (Allocator::SetInstanceNamer). Called only off the hot path.
using InstanceNamer = std::function<std::string(InstanceHandle)>;

// "#<slot>.<generation>": the name used when no InstanceNamer is installed, or the one
// installed returns an empty string.
inline std::string HandleName(InstanceHandle handle) {
  return "#" + std::to_string(handle.slot) + "." + std::to_string(handle.generation);
}

// A batch is at most 18 machines today; 18 entries are stored inline so planning a batch
// does not allocate.
inline constexpr size_t kInlineBatch = 18;

// Where one instance of a plan goes. 16 bytes: a batch plan fills one per machine, so the
// ids are not copied in; Allocator::MachineAt / DomainAt give them when a response is built.
struct PlacedInstance {
  int32_t gpu_count = 0;  // GPUs held: the machine's gpu_count when whole_machine
  bool whole_machine = true;
  MachineIndex machine = kNoIndex;
  DomainIndex domain = kNoIndex;
};

// A planned placement. instances[i] is where the instance of the i-th handle Apply fills
// in goes.
// Machines come grouped by domain and, within a domain, in ascending tray order.
struct Placement {
  // User-provided, so value-initialization (absl::StatusOr's in-place construction) does
  // not zero the inline instance buffer first.
  Placement() {}

  absl::InlinedVector<PlacedInstance, kInlineBatch> instances;
  TenantIndex tenant = kNoIndex;
  TypeIndex type = kNoIndex;
  // True for strict batches and singles: recorded with each instance (invariant 2).
  bool topology_optimized = true;
  // Copied from the request (empty on the common path, so no allocation).
  std::vector<std::string> nvlink_partition_ids;
  // Copied from the request: spot instances may be preempted later.
  bool spot = false;
  // When the instances start holding their machines, in the caller's clock (the allocator
  // has none): set it before Apply. Preemption weighs spot GPU-hours already run from it.
  int64_t started_micros = 0;
  // Allocator state version the plan was made against; Apply asserts it is still current.
  uint64_t planned_at = 0;

  size_t size() const { return instances.size(); }
};

// A planned release of instances; see Allocator::PlanRelease.
struct ReleasePlan {
  ReleasePlan() {}  // as Placement's

  absl::InlinedVector<ClaimIndex, kInlineBatch> claims;
  bool machine_health_issue = false;
  bool clean = false;  // machines left unheld go to CLEANING (Allocator::PlanRelease)
  uint64_t planned_at = 0;

  size_t size() const { return claims.size(); }
};

// A planned move of one instance to another machine of its NVLink domain
// (Allocator::PlanReplace).
struct ReplacePlan {
  ClaimIndex claim = kNoIndex;
  MachineIndex from = kNoIndex;
  MachineIndex to = kNoIndex;
  bool machine_health_issue = false;  // `from` goes to MAINTENANCE
  bool clean = false;                 // else, left unheld, wipe_pending (READY: CLEANING)
  uint64_t planned_at = 0;
};

// What must be evicted for a request that free capacity cannot hold
// (Allocator::PlanPreemption, preemption_policy.h): whole spot gangs (a spot batch with every
// one of its instances, wherever they are, or one spot single) whose machines in `domain`,
// with that domain's free ones, hold the request once they are released.
struct PreemptionPlan {
  PreemptionPlan() {}  // as Placement's

  DomainIndex domain = kNoIndex;  // where the request goes once the victims are released
  // Every instance to evict, gang by gang (in the order chosen), each batch's in claim order.
  absl::InlinedVector<InstanceHandle, kInlineBatch> victims;
  int32_t gangs = 0;          // spot batches and spot singles evicted
  int64_t gpu_seconds = 0;    // spot GPU-seconds the victims had run at plan time
  int64_t gpus = 0;           // GPUs the victims hold
  bool own_tenant = false;    // a victim belongs to the requester's own tenant
  uint64_t planned_at = 0;

  size_t size() const { return victims.size(); }
};

// What a queued request's plan must respect beyond the request itself (allocator/gang_queue.h):
// domains reserved for requests ahead of it, and GPUs of quota already committed to the
// tenant's queued requests (counted with its usage against its quota for the request's type).
// Used by Allocator::PlanBatch / PlanSingle; the default (nothing excluded, nothing committed)
// plans exactly as the overloads without constraints. The span is only read during the call.
//
// What excluding a domain withholds is its free machines (READY, every GPU free), now and as
// they become free: those are what the waiting batch it is reserved for will take. So
// strict and cross-domain batches and whole-machine singles never go there, while a
// GPU-granular single may still take a machine there that is already partly held (some GPUs
// held by GPU-granular instances: not a free machine, so no use to the batch) — never a free
// machine of the domain.
//
// pinned_domain: a request that preempted spot instances (PreemptionPlan) is placed only in
// the domain its victims are leaving; strict batches and singles then look at that domain
// alone (cross-domain batches ignore it: they never preempt).
struct PlanConstraints {
  absl::Span<const DomainIndex> excluded_domains;  // any order; small (a few entries)
  int64_t committed_quota_gpus = 0;
  DomainIndex pinned_domain = kNoIndex;
};

// True when d is one of `domains` (a short, unordered list: a linear scan).
inline bool ListsDomain(absl::Span<const DomainIndex> domains, DomainIndex d) {
  for (DomainIndex e : domains) {
    if (e == d) return true;
  }
  return false;
}

// A position in the undo journal; see Allocator::Mark.
struct JournalMark {
  size_t position = 0;
  uint64_t epoch = 0;  // changes on ClearJournal, so a stale mark is caught
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_PLACEMENT_H_
