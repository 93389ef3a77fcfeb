#include "bench/replay/allocator_policy.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "allocator/errors.h"

namespace nvlsched::replay {
namespace {

constexpr char kTypeId[] = "replay-gpu";
constexpr char kTenantId[] = "replay";

std::string DomainId(int32_t d) { return absl::StrFormat("d%03d", d); }

}  // namespace

absl::StatusOr<std::unique_ptr<AllocatorPolicy>> AllocatorPolicy::Create(const FleetSpec& spec) {
  std::unique_ptr<AllocatorPolicy> policy(new AllocatorPolicy(spec));
  if (absl::Status status = policy->BuildFleet(); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("best-fit: the allocator rejected the fleet: ", status.message()));
  }
  return policy;
}

absl::Status AllocatorPolicy::BuildFleet() {
  allocator::InstanceType type;
  type.id = kTypeId;
  type.name = "replay-gpu";
  type.gpu_model = "replay";
  type.gpus_per_machine = spec_.gpus_per_machine;
  if (absl::Status s = allocator_.UpsertInstanceType(type); !s.ok()) return s;
  for (int32_t d = 0; d < spec_.domains; ++d) {
    allocator::Domain domain;
    domain.id = DomainId(d);
    domain.name = domain.id;
    domain.site_id = "replay-site";
    if (absl::Status s = allocator_.UpsertDomain(domain); !s.ok()) return s;
    for (int32_t t = 0; t < spec_.machines_per_domain; ++t) {
      allocator::Machine machine;
      machine.id = absl::StrFormat("d%03d-t%03d", d, t);
      machine.domain_id = domain.id;
      machine.tray_index = t;
      machine.instance_type_id = kTypeId;
      machine.gpu_count = spec_.gpus_per_machine;
      if (absl::Status s = allocator_.UpsertMachine(machine); !s.ok()) return s;
    }
  }
  allocator::Tenant tenant;
  tenant.id = kTenantId;
  tenant.org = "replay";
  tenant.name = "replay";
  tenant.quota[kTypeId] = spec_.machines();
  if (absl::Status s = allocator_.UpsertTenant(tenant); !s.ok()) return s;
  allocator_.ClearJournal();

  batch_request_.tenant_id = kTenantId;
  batch_request_.instance_type_id = kTypeId;
  batch_request_.spread_policy = allocator::SpreadPolicy::kFill;
  single_request_.tenant_id = kTenantId;
  single_request_.instance_type_id = kTypeId;
  return absl::OkStatus();
}

absl::StatusOr<bool> AllocatorPolicy::TryPlace(uint32_t job, const JobShape& shape) {
  absl::StatusOr<allocator::Placement> plan;
  bool batch = false;
  switch (shape.kind) {
    case JobKind::kGpuSingle:
    case JobKind::kWholeSingle:
      single_request_.gpu_count = shape.kind == JobKind::kGpuSingle ? shape.gpus : 0;
      plan = allocator_.PlanSingle(single_request_);
      break;
    case JobKind::kStrictBatch:
    case JobKind::kCrossDomainBatch:
      batch = true;
      batch_request_.count = shape.machines;
      batch_request_.topology_optimized = shape.kind == JobKind::kStrictBatch;
      plan = allocator_.PlanBatch(batch_request_);
      break;
    case JobKind::kInfeasible:
      return absl::InvalidArgumentError("an infeasible job must not be offered to a policy");
  }
  if (!plan.ok()) {
    if (allocator::GetCapacityShortfall(plan.status()).has_value()) return false;
    // The Allocator checks quota before capacity. The tenant's quota is the whole fleet, so
    // "quota exceeded" means in_use + requested > fleet GPUs, i.e. the fleet cannot hold
    // the job now either: a capacity refusal like any other.
    if (allocator::GetQuotaViolation(plan.status()).has_value()) return false;
    return absl::InternalError(absl::StrCat("best-fit: the allocator refused job ", job,
                                            " (", AbslView(JobKindName(shape.kind)), ", ", shape.gpus,
                                            " GPUs) for a reason other than capacity: ",
                                            plan.status().ToString()));
  }
  batch_id_.clear();
  if (batch) absl::StrAppend(&batch_id_, "b", job);
  std::vector<allocator::InstanceHandle>& handles = instances_of_job_[job];
  handles.resize(plan->size());
  allocator_.Apply(*plan, batch_id_, absl::MakeSpan(handles));
  allocator_.ClearJournal();  // no store to commit to: every change is final
  return true;
}

absl::Status AllocatorPolicy::Release(uint32_t job) {
  auto it = instances_of_job_.find(job);
  if (it == instances_of_job_.end()) {
    return absl::InternalError(absl::StrCat("best-fit: job ", job, " holds nothing to release"));
  }
  absl::StatusOr<allocator::ReleasePlan> plan =
      allocator_.PlanRelease(it->second, /*machine_health_issue=*/false);
  if (!plan.ok()) {
    return absl::InternalError(absl::StrCat("best-fit: releasing job ", job,
                                            " failed: ", plan.status().ToString()));
  }
  allocator_.Apply(*plan);
  allocator_.ClearJournal();
  instances_of_job_.erase(it);
  return absl::OkStatus();
}

FleetStats AllocatorPolicy::Stats() const {
  FleetStats stats;
  absl::StatusOr<allocator::CapacityView> view = allocator_.Capacity(kTypeId);
  if (!view.ok()) return stats;  // cannot happen: the type exists from Create on
  stats.free_gpus = view->free_gpus;
  stats.used_gpus = spec_.gpus() - view->free_gpus;
  stats.free_machines = view->free_machines;
  stats.fully_free_domains = view->fully_free_domains;
  stats.stranded_machines = view->stranded_machines;
  stats.largest_domain_free = view->largest_strict_batch;
  return stats;
}

}  // namespace nvlsched::replay
