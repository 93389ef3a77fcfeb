// CapacityView: what one instance type has free right now, for offers and dashboards.
// Computed from counters FleetState keeps up to date, so it is O(1) — cheap enough to
// answer every availability query without a scan.
//
// Thread-safety: values; the functions read a const FleetState.
#ifndef NVLSCHED_ALLOCATOR_CAPACITY_VIEW_H_
#define NVLSCHED_ALLOCATOR_CAPACITY_VIEW_H_

#include <cstdint>
#include <string>

#include "allocator/placement.h"

namespace nvlsched::allocator {

class FleetState;  // internal; see fleet_state.h

struct CapacityView {
  std::string instance_type_id{};
  int64_t total_machines = 0;   // live machines of the type, any state
  int64_t free_machines = 0;    // READY and held by nothing (spare trays included)
  // Free machines a new batch or whole single may take: free_machines less spare trays.
  int64_t available_machines = 0;
  int64_t spare_machines = 0;   // free but kept as spare trays (Domain::spare_machines)
  int64_t free_gpus = 0;        // free GPUs on READY machines not held whole (incl. partly held)
  int32_t largest_strict_batch = 0;  // most free machines less spares in one domain: placeable now
  int32_t largest_domain = 0;        // most machines less spares in one domain: placeable ever
  int32_t fully_free_domains = 0;    // domains whose machines of the type are all free
  int64_t stranded_machines = 0;     // placeable, but alone in their domain (fewer than 2)

  friend bool operator==(const CapacityView& a, const CapacityView& b) {
    return a.instance_type_id == b.instance_type_id && a.total_machines == b.total_machines &&
           a.free_machines == b.free_machines && a.spare_machines == b.spare_machines &&
           a.available_machines == b.available_machines &&
           a.free_gpus == b.free_gpus &&
           a.largest_strict_batch == b.largest_strict_batch &&
           a.largest_domain == b.largest_domain &&
           a.fully_free_domains == b.fully_free_domains &&
           a.stranded_machines == b.stranded_machines;
  }
};

// One domain's share of one instance type.
struct DomainCapacity {
  std::string domain_id{};
  std::string instance_type_id{};
  int32_t total_machines = 0;  // any state
  int32_t free_machines = 0;   // READY and held by nothing (spare trays included)
  int32_t available_machines = 0;  // free_machines less the spare trays: what placements take
  int32_t spare_machines = 0;  // free but kept as spare trays
  int64_t free_gpus = 0;       // as in CapacityView
  int32_t cleaning_machines = 0;  // waiting to be wiped (MachineState::kCleaning)
};

// Cost: O(kMaxMachinesPerDomain) (largest_domain), no allocation besides the id string.
CapacityView ComputeCapacityView(const FleetState& state, TypeIndex t);
// Cost: O(kMaxGpusPerMachine).
DomainCapacity ComputeDomainCapacity(const FleetState& state, TypeIndex t, DomainIndex d);

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_CAPACITY_VIEW_H_
