// Invariant checker: recounts the whole fleet from the machine and claim records and
// compares the recount with every counter and index FleetState maintains incrementally.
// Run at start-up after restoring instances, and after every step of randomized tests.
//
// Checked (DESIGN.md "Invariants"):
//   1. a machine is held by at most one whole-machine instance, or by GPU-granular
//      instances whose GPUs add up to at most its gpu_count; never both;
//   2. all instances of a topology-optimized batch lie in one NVLink domain;
//   4. every free-capacity index (cells, best-fit buckets, GPU-granular sets, per-type
//      totals, domain-size histogram) equals the recount;
//   and quota usage per (tenant, type), partition counts, batch instance counts, the machine
//   id map and claim handles equal the recount.
//
// Thread-safety: reads a const FleetState.
#ifndef NVLSCHED_ALLOCATOR_INVARIANTS_H_
#define NVLSCHED_ALLOCATOR_INVARIANTS_H_

#include "absl/status/status.h"
#include "allocator/fleet_state.h"

namespace nvlsched::allocator {

// OK; FAILED_PRECONDITION when the data breaks invariant 1 or 2 (e.g. a bad database);
// INTERNAL when an index disagrees with the recount (a bug). The message names the
// machine, domain, batch or instance (FleetState::InstanceName) at fault and both values.
// Cost: O(machines + instances + domains x types x (kMaxMachinesPerDomain / 64)); allocates.
absl::Status CheckFleetInvariants(const FleetState& state);

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_INVARIANTS_H_
