// BaselineFleet: the plain fleet model the baseline policies (baseline_policies.h) place
// on — free GPUs per machine and free machines per domain, nothing else. It is a
// comparator, not product code: it has no machine states, tenants or quota.
//
// Machine m = domain * M + tray. A machine is free (usable by a batch or a whole-machine
// single) when all its GPUs are free; a batch or whole single takes all of them.
// Thread-safety: none; one owner.
#ifndef NVLSCHED_BENCH_REPLAY_BASELINE_FLEET_H_
#define NVLSCHED_BENCH_REPLAY_BASELINE_FLEET_H_

#include <cstdint>
#include <vector>

#include "bench/replay/placement_policy.h"

namespace nvlsched::replay {

class BaselineFleet {
 public:
  explicit BaselineFleet(const FleetSpec& spec);

  const FleetSpec& spec() const { return spec_; }
  int32_t machine_count() const { return static_cast<int32_t>(free_gpus_.size()); }
  int32_t domain_of(int32_t machine) const { return machine / spec_.machines_per_domain; }
  int32_t free_gpus(int32_t machine) const { return free_gpus_[machine]; }
  bool machine_free(int32_t machine) const {
    return free_gpus_[machine] == spec_.gpus_per_machine;
  }
  int32_t domain_free_machines(int32_t domain) const { return domain_free_[domain]; }
  int64_t free_machines() const { return free_machines_; }

  // REQUIRES: 1 <= gpus <= free_gpus(machine).
  void Take(int32_t machine, int32_t gpus);
  // REQUIRES: gpus were taken from machine and not returned.
  void Give(int32_t machine, int32_t gpus);

  // Cost: O(domains).
  FleetStats Stats() const;

 private:
  FleetSpec spec_;
  std::vector<int32_t> free_gpus_;    // per machine
  std::vector<int32_t> domain_free_;  // free machines per domain
  int64_t free_machines_ = 0;
  int64_t used_gpus_ = 0;
};

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_BASELINE_FLEET_H_
