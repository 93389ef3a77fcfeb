// GpuGranularIndex: for one instance type, the domains that contain a machine with exactly
// f free GPUs (1..kMaxGpusPerMachine), split into domains that are already broken and
// domains that are fully free. GpuGranularPolicy walks f upward from the request and takes
// broken domains before fully free ones, so the first hit is "the machine with the fewest
// free GPUs that still fit, preferring domains already broken", lowest domain index first.
//
// A machine counts here when it is READY and not held whole; its free GPUs are its
// gpu_count minus GPUs held by GPU-granular instances. A domain is "fully free" for a type
// when every machine of that type in it is READY and held by nothing.
//
// Thread-safety: not synchronized; owned by FleetState.
// Invariant: (f, fully_free, d) is a member iff FleetState's cell for d has a machine with
// f free GPUs and the cell's fully-free flag is fully_free (kept by FleetState::SyncCell).
#ifndef NVLSCHED_ALLOCATOR_GPU_GRANULAR_INDEX_H_
#define NVLSCHED_ALLOCATOR_GPU_GRANULAR_INDEX_H_

#include <array>
#include <cstdint>

#include "allocator/domain_set.h"
#include "allocator/model.h"
#include "allocator/placement.h"

namespace nvlsched::allocator {

class GpuGranularIndex {
 public:
  // Makes room for domains 0..num_domains-1. Allocates; inventory path only.
  void Reserve(uint32_t num_domains);

  // Cost: O(1), no allocation. REQUIRES: 1 <= free_gpus <= kMaxGpusPerMachine.
  void Insert(int free_gpus, bool fully_free_domain, DomainIndex d) {
    sets_[free_gpus][fully_free_domain].Insert(d);
  }
  void Erase(int free_gpus, bool fully_free_domain, DomainIndex d) {
    sets_[free_gpus][fully_free_domain].Erase(d);
  }

  // Domains holding a machine with exactly free_gpus free GPUs, in index order.
  const DomainSet& Domains(int free_gpus, bool fully_free_domain) const {
    return sets_[free_gpus][fully_free_domain];
  }

 private:
  std::array<std::array<DomainSet, 2>, kMaxGpusPerMachine + 1> sets_;  // [f][fully_free]
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_GPU_GRANULAR_INDEX_H_
