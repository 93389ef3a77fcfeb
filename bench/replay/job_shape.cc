#include "bench/replay/job_shape.h"

namespace nvlsched::replay {

std::string_view JobKindName(JobKind kind) {
  switch (kind) {
    case JobKind::kGpuSingle: return "gpu_single";
    case JobKind::kWholeSingle: return "whole_single";
    case JobKind::kStrictBatch: return "strict_batch";
    case JobKind::kCrossDomainBatch: return "cross_domain_batch";
    case JobKind::kInfeasible: return "infeasible";
  }
  return "unknown";
}

JobShape ShapeJob(int32_t num_gpus, const FleetSpec& fleet, bool cross_domain_when_larger) {
  const int32_t g = fleet.gpus_per_machine;
  if (num_gpus < g) return JobShape{JobKind::kGpuSingle, num_gpus, 0};
  if (num_gpus == g) return JobShape{JobKind::kWholeSingle, g, 1};
  const int64_t machines = (int64_t{num_gpus} + g - 1) / g;
  JobShape shape{JobKind::kStrictBatch, static_cast<int32_t>(machines * g),
                 static_cast<int32_t>(machines)};
  if (machines > fleet.machines_per_domain) {
    shape.kind = cross_domain_when_larger && machines <= fleet.machines()
                     ? JobKind::kCrossDomainBatch
                     : JobKind::kInfeasible;
  }
  return shape;
}

bool IsSpotJob(uint32_t arrival_index, double spot_share, uint64_t seed) {
  if (spot_share <= 0) return false;
  // Output number arrival_index + 1 of SplitMix64 (Steele, Lea, Flood 2014) seeded with
  // `seed`: state seed + n * golden gamma, then its finalizer. Random access, no state.
  uint64_t z = seed + (uint64_t{arrival_index} + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const double u = static_cast<double>(z >> 11) * 0x1.0p-53;
  return u < spot_share;
}

}  // namespace nvlsched::replay
