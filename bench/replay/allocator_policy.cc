#include "bench/replay/allocator_policy.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "allocator/errors.h"

namespace nvlsched::replay {
namespace {

constexpr char kTypeId[] = "replay-gpu";
constexpr char kTenantId[] = "replay";
// Unlimited for the replay (see the header); small enough that machines x GPUs per machine
// cannot overflow.
constexpr int64_t kUnlimitedQuotaMachines = int64_t{1} << 40;
constexpr int64_t kMicrosPerSecond = 1000000;

std::string DomainId(int32_t d) { return absl::StrFormat("d%03d", d); }

}  // namespace

// Applies what a pass places (GangQueue requires it before the pass plans the next request)
// and tells the simulator.
class AllocatorPolicy::QueueSink final : public allocator::GangQueue::Sink {
 public:
  QueueSink(AllocatorPolicy* policy, QueueingPolicy::Events* events, int64_t now_s)
      : policy_(policy), events_(events), now_s_(now_s) {}

  void Placed(const allocator::QueuedRequest& request,
              const allocator::Placement& placement) override {
    const uint32_t job = TakeJob(request.sequence);
    policy_->ApplyPlacement(job, request.is_batch, placement, now_s_);
    events_->Started(job);
  }
  void Expired(const allocator::QueuedRequest& request) override {
    events_->Expired(TakeJob(request.sequence));
  }

 private:
  uint32_t TakeJob(uint64_t sequence) {
    auto it = policy_->job_of_sequence_.find(sequence);
    const uint32_t job = it->second;  // every queued sequence has one (Submit)
    policy_->job_of_sequence_.erase(it);
    return job;
  }

  AllocatorPolicy* policy_;
  QueueingPolicy::Events* events_;
  int64_t now_s_;
};

absl::StatusOr<std::unique_ptr<AllocatorPolicy>> AllocatorPolicy::Create(
    const FleetSpec& spec, allocator::GangQueue::Options queue_options, bool preemption) {
  std::unique_ptr<AllocatorPolicy> policy(
      new AllocatorPolicy(spec, queue_options, preemption));
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
  tenant.quota[kTypeId] = kUnlimitedQuotaMachines;
  if (absl::Status s = allocator_.UpsertTenant(tenant); !s.ok()) return s;
  allocator_.ClearJournal();
  tenant_ = allocator_.TenantIndexOf(kTenantId);
  type_ = allocator_.TypeIndexOf(kTypeId);

  batch_request_.tenant_id = kTenantId;
  batch_request_.instance_type_id = kTypeId;
  batch_request_.spread_policy = allocator::SpreadPolicy::kFill;
  single_request_.tenant_id = kTenantId;
  single_request_.instance_type_id = kTypeId;
  return absl::OkStatus();
}

bool AllocatorPolicy::PrepareRequest(const JobShape& shape) {
  if (shape.kind == JobKind::kGpuSingle || shape.kind == JobKind::kWholeSingle) {
    single_request_.gpu_count = shape.kind == JobKind::kGpuSingle ? shape.gpus : 0;
    single_request_.spot = shape.spot;
    return false;
  }
  batch_request_.count = shape.machines;
  batch_request_.topology_optimized = shape.kind == JobKind::kStrictBatch;
  batch_request_.spot = shape.spot;
  return true;
}

void AllocatorPolicy::ApplyPlacement(uint32_t job, bool batch,
                                     const allocator::Placement& placement, int64_t started_s) {
  batch_id_.clear();
  if (batch) absl::StrAppend(&batch_id_, "b", job);
  std::vector<allocator::InstanceHandle>& handles = instances_of_job_[job];
  handles.resize(placement.size());
  // The queue's sink gets the plan const: stamp a copy (a few hundred bytes) with the start.
  allocator::Placement started = placement;
  started.started_micros = started_s * kMicrosPerSecond;
  allocator_.Apply(started, batch_id_, absl::MakeSpan(handles));
  allocator_.ClearJournal();  // no store to commit to: every change is final
  for (allocator::InstanceHandle handle : handles) job_of_instance_[handle] = job;
}

absl::Status AllocatorPolicy::NotCapacity(uint32_t job, const JobShape& shape,
                                          const absl::Status& status) const {
  return absl::InternalError(absl::StrCat("best-fit: the allocator refused job ", job, " (",
                                          AbslView(JobKindName(shape.kind)), ", ", shape.gpus,
                                          " GPUs) for a reason other than capacity: ",
                                          status.ToString()));
}

absl::StatusOr<bool> AllocatorPolicy::TryPlace(uint32_t job, const JobShape& shape) {
  if (shape.kind == JobKind::kInfeasible) {
    return absl::InvalidArgumentError("an infeasible job must not be offered to a policy");
  }
  const bool batch = PrepareRequest(shape);
  absl::StatusOr<allocator::Placement> plan =
      batch ? allocator_.PlanBatch(batch_request_) : allocator_.PlanSingle(single_request_);
  if (!plan.ok()) {
    if (allocator::GetCapacityShortfall(plan.status()).has_value()) return false;
    return NotCapacity(job, shape, plan.status());
  }
  // Drop and wait modes have no clock here; their instances never meet a preemption.
  ApplyPlacement(job, batch, *plan, /*started_s=*/0);
  return true;
}

absl::StatusOr<bool> AllocatorPolicy::Submit(uint32_t job, const JobShape& shape, int64_t now_s,
                                             int64_t deadline_s, Events& events) {
  if (shape.kind == JobKind::kInfeasible) {
    return absl::InvalidArgumentError("an infeasible job must not be offered to a policy");
  }
  const bool batch = PrepareRequest(shape);
  // A new request arrives behind every waiting one of its priority: it must not take the
  // domains reserved for them, and their quota is promised.
  const absl::InlinedVector<allocator::DomainIndex, 8> excluded =
      queue_.ExclusionsForNew(/*priority=*/0);
  allocator::PlanConstraints constraints;
  constraints.excluded_domains = excluded;
  constraints.committed_quota_gpus = queue_.QueuedGpus(tenant_, type_);
  absl::StatusOr<allocator::Placement> plan =
      batch ? allocator_.PlanBatch(batch_request_, constraints)
            : allocator_.PlanSingle(single_request_, constraints);
  if (plan.ok()) {
    ApplyPlacement(job, batch, *plan, now_s);
    return true;
  }
  if (!allocator::GetCapacityShortfall(plan.status()).has_value()) {
    return NotCapacity(job, shape, plan.status());
  }
  if (preemption_ && !shape.spot && shape.kind != JobKind::kCrossDomainBatch) {
    absl::StatusOr<bool> preempted =
        PlaceByPreempting(job, shape, batch, constraints, now_s, events);
    if (!preempted.ok() || *preempted) return preempted;
  }
  if (queue_.full()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "best-fit: the queue is full (", queue_.size(), " requests) when job ", job,
        " arrives; raise GangQueue::Options::max_length"));
  }
  allocator::QueuedRequest request;
  request.sequence = next_sequence_++;  // Submit order
  job_of_sequence_[request.sequence] = job;
  request.priority = 0;
  request.queued_micros = now_s * kMicrosPerSecond;
  request.deadline_micros =
      deadline_s == kNoDeadline ? INT64_MAX : deadline_s * kMicrosPerSecond;
  request.is_batch = batch;
  if (batch) {
    request.batch = batch_request_;
  } else {
    request.single = single_request_;
  }
  request.gpus = shape.gpus;
  queue_.Insert(allocator_, std::move(request));
  return false;
}

absl::StatusOr<bool> AllocatorPolicy::PlaceByPreempting(uint32_t job, const JobShape& shape,
                                                        bool batch,
                                                        allocator::PlanConstraints constraints,
                                                        int64_t now_s, Events& events) {
  const int64_t now_micros = now_s * kMicrosPerSecond;
  absl::StatusOr<allocator::PreemptionPlan> preemption =
      batch ? allocator_.PlanPreemption(batch_request_, constraints, now_micros)
            : allocator_.PlanPreemption(single_request_, constraints, now_micros);
  if (!preemption.ok()) {
    if (absl::IsResourceExhausted(preemption.status())) return false;  // no domain would do
    return absl::InternalError(absl::StrCat(
        "best-fit: PlanPreemption for job ", job, " (", AbslView(JobKindName(shape.kind)), ", ",
        shape.gpus, " GPUs) failed: ", preemption.status().ToString()));
  }
  if (absl::Status killed = KillVictims(*preemption, events); !killed.ok()) return killed;
  constraints.pinned_domain = preemption->domain;
  absl::StatusOr<allocator::Placement> plan =
      batch ? allocator_.PlanBatch(batch_request_, constraints)
            : allocator_.PlanSingle(single_request_, constraints);
  if (!plan.ok()) {
    return absl::InternalError(absl::StrCat(
        "best-fit: job ", job, " does not fit in domain ", preemption->domain,
        " after its ", preemption->gangs, " spot victims were released: ",
        plan.status().ToString()));
  }
  ApplyPlacement(job, batch, *plan, now_s);
  return true;
}

absl::Status AllocatorPolicy::KillVictims(const allocator::PreemptionPlan& plan,
                                          Events& events) {
  // The victims come gang by gang; each gang must be one job, all of it.
  victim_jobs_.clear();
  size_t instances = 0;
  for (allocator::InstanceHandle handle : plan.victims) {
    auto it = job_of_instance_.find(handle);
    if (it == job_of_instance_.end()) {
      return absl::InternalError(absl::StrCat("best-fit: preemption victim ",
                                              allocator::HandleName(handle), " is no job's"));
    }
    const uint32_t job = it->second;
    if (!victim_jobs_.empty() && victim_jobs_.back() == job) continue;
    if (std::find(victim_jobs_.begin(), victim_jobs_.end(), job) != victim_jobs_.end()) {
      return absl::InternalError(
          absl::StrCat("best-fit: the instances of victim job ", job, " are not listed together"));
    }
    victim_jobs_.push_back(job);
    instances += instances_of_job_[job].size();
  }
  // Every listed handle is one of these jobs' and PlanRelease refuses a handle listed twice:
  // equal counts mean the victims are exactly these jobs' instances.
  if (instances != plan.victims.size()) {
    return absl::InternalError(absl::StrCat(
        "best-fit: a preemption evicts ", plan.victims.size(), " instances of jobs holding ",
        instances, ": part of a gang"));
  }
  absl::StatusOr<allocator::ReleasePlan> release =
      allocator_.PlanRelease(plan.victims, /*machine_health_issue=*/false);
  if (!release.ok()) {
    return absl::InternalError(absl::StrCat("best-fit: releasing preemption victims failed: ",
                                            release.status().ToString()));
  }
  allocator_.Apply(*release);
  allocator_.ClearJournal();
  for (uint32_t job : victim_jobs_) {
    auto it = instances_of_job_.find(job);
    for (allocator::InstanceHandle handle : it->second) job_of_instance_.erase(handle);
    instances_of_job_.erase(it);
    events.Preempted(job);
  }
  return absl::OkStatus();
}

absl::Status AllocatorPolicy::Schedule(int64_t now_s, Events& events) {
  QueueSink sink(this, &events, now_s);
  queue_.Schedule(allocator_, now_s * kMicrosPerSecond, sink);
  return absl::OkStatus();
}

std::optional<int64_t> AllocatorPolicy::NextDeadline() const {
  std::optional<int64_t> micros = queue_.NextDeadline();
  if (!micros.has_value() || *micros == INT64_MAX) return std::nullopt;
  return (*micros + kMicrosPerSecond - 1) / kMicrosPerSecond;
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
  for (allocator::InstanceHandle handle : it->second) job_of_instance_.erase(handle);
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
