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

}  // namespace nvlsched::replay
