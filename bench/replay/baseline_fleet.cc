#include "bench/replay/baseline_fleet.h"

#include <algorithm>
#include <cassert>

namespace nvlsched::replay {

BaselineFleet::BaselineFleet(const FleetSpec& spec)
    : spec_(spec),
      free_gpus_(static_cast<size_t>(spec.machines()), spec.gpus_per_machine),
      domain_free_(static_cast<size_t>(spec.domains), spec.machines_per_domain),
      free_machines_(spec.machines()) {}

void BaselineFleet::Take(int32_t machine, int32_t gpus) {
  assert(gpus >= 1 && gpus <= free_gpus_[machine]);
  if (machine_free(machine)) {
    --domain_free_[domain_of(machine)];
    --free_machines_;
  }
  free_gpus_[machine] -= gpus;
  used_gpus_ += gpus;
}

void BaselineFleet::Give(int32_t machine, int32_t gpus) {
  free_gpus_[machine] += gpus;
  assert(free_gpus_[machine] <= spec_.gpus_per_machine);
  used_gpus_ -= gpus;
  if (machine_free(machine)) {
    ++domain_free_[domain_of(machine)];
    ++free_machines_;
  }
}

FleetStats BaselineFleet::Stats() const {
  FleetStats stats;
  stats.used_gpus = used_gpus_;
  stats.free_gpus = spec_.gpus() - used_gpus_;
  stats.free_machines = free_machines_;
  for (int32_t free : domain_free_) {
    if (free == spec_.machines_per_domain) ++stats.fully_free_domains;
    if (free == 1) ++stats.stranded_machines;
    stats.largest_domain_free = std::max<int64_t>(stats.largest_domain_free, free);
  }
  return stats;
}

}  // namespace nvlsched::replay
