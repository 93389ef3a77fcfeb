#include "daemon/engine/instance_ops.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "daemon/api/convert.h"
#include "daemon/api/field_violations.h"
#include "daemon/api/page_tokens.h"
#include "daemon/api/status_mapping.h"
#include "daemon/api/validation.h"
#include "allocator/errors.h"
#include "allocator/gang_queue.h"
#include "allocator/string_view_compat.h"
#include "daemon/engine/ids.h"
#include "daemon/engine/instance_records.h"
#include "google/rpc/error_details.pb.h"

namespace nvlsched::daemon {
namespace {

constexpr int kNameAttempts = 32;

// The tenant named by a create request, which must belong to the caller's org.
absl::StatusOr<const allocator::Tenant*> TenantOf(const State& state, const std::string& org,
                                                  const std::string& tenant_id) {
  const allocator::Tenant* tenant = state.allocator().FindTenant(tenant_id);
  if (tenant == nullptr) {
    return ResourceNotFoundError(kTenantResource, tenant_id,
                                absl::StrCat("tenant ", tenant_id,
                                             " does not exist; create it with UpsertTenant"));
  }
  if (tenant->org != org) {
    return PermissionDeniedError(
        "TENANT_OF_OTHER_ORG",
        absl::StrCat("tenant ", tenant_id, " does not belong to org '", org,
                     "'; use a tenant of your org"));
  }
  return tenant;
}

absl::StatusOr<const allocator::InstanceType*> TypeOf(const State& state, const std::string& id) {
  const allocator::InstanceType* type = state.allocator().FindInstanceType(id);
  if (type == nullptr) {
    return ResourceNotFoundError(
        kInstanceTypeResource, id,
        absl::StrCat("instance type ", id, " does not exist; ListInstanceTypes shows the known ones"));
  }
  return type;
}

// An instance visible to `org` (another org's instance is reported exactly like a missing one).
absl::StatusOr<const State::InstanceEntry*> VisibleInstance(const State& state,
                                                            const std::string& org,
                                                            const std::string& id) {
  const State::InstanceEntry* instance = state.FindInstance(id);
  if (instance != nullptr) {
    const allocator::Tenant* tenant =
        state.allocator().FindTenant(allocator::StdView(instance->record.tenant_id()));
    if (tenant != nullptr && tenant->org == org) return instance;
  }
  return ResourceNotFoundError(kInstanceResource, id,
                               absl::StrCat("instance ", id, " does not exist"));
}

// An unused "<prefix>-<6 random>" name for the tenant.
absl::StatusOr<std::string> NewName(const State& state, const OpContext& ctx,
                                    const std::string& tenant_id, const std::string& prefix) {
  for (int attempt = 0; attempt < kNameAttempts; ++attempt) {
    std::string name = absl::StrCat(prefix, "-", RandomNameSuffix(ctx.rng));
    if (!state.NameTaken(tenant_id, name)) return name;
  }
  return absl::AlreadyExistsError(absl::StrCat(
      "could not find a free name with prefix '", prefix, "' for tenant ", tenant_id,
      " after ", kNameAttempts, " attempts; use another name_prefix"));
}

// Idempotency: the earlier answer to this request_id, if any. ALREADY_EXISTS if the id was used
// with another body.
template <typename Resp>
absl::StatusOr<bool> Replay(const State& state, const std::string& tenant_id,
                            const std::string& request_id, const std::string& fingerprint,
                            Resp* resp) {
  if (request_id.empty()) return false;
  const IdempotencyEntry* entry = state.FindIdempotency(tenant_id, request_id);
  if (entry == nullptr) return false;
  if (entry->fingerprint != fingerprint) {
    return absl::AlreadyExistsError(absl::StrCat(
        "request_id '", request_id, "' was already used with a different request; "
        "use a new request_id for a new request"));
  }
  if (!resp->ParseFromString(entry->response)) {
    return absl::InternalError(absl::StrCat("stored answer for request_id '", request_id,
                                            "' does not parse"));
  }
  return true;
}

template <typename Resp>
void Remember(State& state, const OpContext& ctx, const CreateRequest& req, const Resp& resp) {
  if (req.request_id.empty()) return;
  state.PutIdempotency(req.spec.tenant_id, req.request_id,
                       IdempotencyEntry{req.fingerprint, resp.SerializeAsString(),
                                        absl::ToUnixMicros(ctx.now)});
}

// The NVLink domain every instance of `placement` lies in; "" when they span domains. A
// cross-domain batch may well land in one domain, and then the response names it too.
std::string CommonDomain(const State& state, const allocator::Placement& placement) {
  if (placement.instances.empty()) return "";
  for (const allocator::PlacedInstance& where : placement.instances) {
    if (where.domain != placement.instances[0].domain) return "";
  }
  return state.allocator().DomainAt(placement.instances[0].domain).id;
}

// Applies `placement` for `names.size()` new instances built from `spec`, records them.
void ApplyAndRecord(State& state, const OpContext& ctx, const allocator::Placement& placement,
                    const InstanceSpec& spec, const std::vector<std::string>& ids,
                    const std::vector<std::string>& names, const std::string& batch_id,
                    google::protobuf::RepeatedPtrField<v1::Instance>* out) {
  // Build the records first (from the plan's machine and domain, before Apply).
  std::vector<v1::Instance> records;
  records.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const allocator::PlacedInstance& where = placement.instances[i];
    records.push_back(BuildInstance(state, ctx, spec, ids[i], names[i], batch_id, where));
    if (out != nullptr) *out->Add() = records.back();
  }
  state.PlaceInstances(placement, batch_id, absl::MakeSpan(records));
}

// The rules that need the instance type (api/validation.h), then the allocator's
// "infeasible" (INVALID_ARGUMENT: no fleet state could hold the request) as a field violation
// of `field`, like every INVALID_ARGUMENT of the API (DESIGN.md, Errors).
absl::Status InfeasibleAsViolation(const absl::Status& status, absl::string_view request_name,
                                   const std::string& field) {
  if (!absl::IsInvalidArgument(status)) return status;
  FieldViolations v;
  v.Add(field, std::string(status.message()));
  return v.ToStatus(request_name);
}

// queue_timeout: zero (answer now) or positive up to the daemon's --max_queue_timeout.
absl::Status CheckQueueTimeout(const State& state, const CreateRequest& req,
                               absl::string_view request_name) {
  if (req.queue_timeout >= absl::ZeroDuration() && req.queue_timeout <= state.max_queue_timeout()) {
    return absl::OkStatus();
  }
  FieldViolations v;
  v.Add("queue_timeout",
        req.queue_timeout < absl::ZeroDuration()
            ? absl::StrCat("must not be negative (got ", absl::FormatDuration(req.queue_timeout),
                           "); omit it to be answered at once")
            : absl::StrCat("must be at most ", absl::FormatDuration(state.max_queue_timeout()),
                           " (--max_queue_timeout); got ", absl::FormatDuration(req.queue_timeout)));
  return v.ToStatus(request_name);
}

// What a new request may use: the fleet outside the domains reserved for queued batches ahead
// of it, and the quota its tenant's queued requests do not already hold.
struct NewRequestScope {
  absl::InlinedVector<allocator::DomainIndex, 8> excluded;
  allocator::PlanConstraints constraints;
};
void ScopeForNew(const State& state, const allocator::Tenant& tenant, const std::string& type_id,
                 NewRequestScope* scope) {
  const allocator::Allocator& alloc = state.allocator();
  scope->excluded = state.queue().ExclusionsForNew(tenant.priority);
  scope->constraints.excluded_domains = scope->excluded;
  scope->constraints.committed_quota_gpus =
      state.queue().QueuedGpus(alloc.TenantIndexOf(tenant.id), alloc.TypeIndexOf(type_id));
}

// Capacity freed earlier in this group goes to the queue first: a new request must not take
// what a waiting one ahead of it could use (the pass is in this op's part of the change
// record, so a failed op undoes it too).
void ServeQueueFirst(State& state, const OpContext& ctx) {
  if (state.queue_pass_due()) state.RunQueue(ctx.now);
}

// A request with a queue_timeout that could not be placed only for want of capacity waits.
bool Queueable(const CreateRequest& req, const absl::Status& refusal) {
  return req.queue_timeout > absl::ZeroDuration() &&
         allocator::GetCapacityShortfall(refusal).has_value();
}

// A request naming a site that holds no machines of its type could never be placed (nor
// should it wait): INVALID_ARGUMENT on site_id. OK otherwise, an unknown site included (that is
// the allocator's NOT_FOUND).
absl::Status CheckSiteHasType(const State& state, const std::string& site_id,
                              const allocator::InstanceType& type, absl::string_view what,
                              absl::string_view request) {
  const allocator::Allocator& alloc = state.allocator();
  if (site_id.empty() || alloc.SiteIndexOf(site_id) == allocator::kNoIndex ||
      alloc.SiteMachines(type.id, site_id) > 0) {
    return absl::OkStatus();
  }
  FieldViolations v;
  v.Add("site_id", absl::StrCat("site ", site_id, " has no ", type.name, " machines, so the ",
                                what, " could never be placed; pick a site that has them "
                                "(ListOffers) or leave site_id empty"));
  return v.ToStatus(request);
}

// A spot request needs a type sold as spot.
absl::Status CheckSpotOffered(const InstanceSpec& spec, const allocator::InstanceType& type) {
  if (!spec.spot || type.spot_price_per_hour_micros > 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "instance type ", type.name.empty() ? type.id : type.name,
      " is not sold as spot (its spot_hourly_price is 0); ask for BILLING_MODE_ON_DEMAND, or "
      "pick a type whose offer shows a spot_hourly_price"));
}

// An on-demand request refused for capacity may preempt spot instances when it may wait
// longer than the grace period its victims get (else it would expire before they leave).
bool MayPreempt(const State& state, const CreateRequest& req, const absl::Status& refusal) {
  return !req.spec.spot && Queueable(req, refusal) && req.queue_timeout > state.preemption_grace();
}

// The preemption recorded on each victim.
v1::Preemption NewPreemption(const State& state, const OpContext& ctx,
                             const allocator::PreemptionPlan& plan, const std::string& batch_id,
                             const std::string& instance_id) {
  v1::Preemption p;
  p.set_reason("PREEMPTED");
  *p.mutable_preempted() = ToTimestamp(ctx.now);
  *p.mutable_preemption_deadline() = ToTimestamp(ctx.now + state.preemption_grace());
  p.set_preemptor_batch_id(batch_id);
  p.set_preemptor_instance_id(instance_id);
  p.set_nvlink_domain_id(state.allocator().DomainAt(plan.domain).id);
  return p;
}

std::vector<std::string> VictimIds(const State& state, const allocator::PreemptionPlan& plan) {
  std::vector<std::string> ids;
  ids.reserve(plan.victims.size());
  for (allocator::InstanceHandle h : plan.victims) ids.push_back(state.InstanceIdOf(h));
  return ids;
}

absl::Status QueueFull(const State& state) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "the queue is full: ", state.queue().size(),
      " requests are waiting (--max_queue_length); retry later, or without queue_timeout"));
}

// Count fresh ids and distinct unused names for a batch.
absl::Status NewIdsAndNames(const State& state, const OpContext& ctx, const CreateRequest& req,
                            std::vector<std::string>* ids, std::vector<std::string>* names) {
  absl::flat_hash_set<std::string> batch_names;
  for (int i = 0; i < req.count; ++i) {
    ids->push_back(NewTimeOrderedUuid(ctx.now, ctx.rng));
    absl::StatusOr<std::string> name;
    do {
      name = NewName(state, ctx, req.spec.tenant_id, req.name_prefix);
      if (!name.ok()) return name.status();
    } while (!batch_names.insert(*name).second);
    names->push_back(*std::move(name));
  }
  return absl::OkStatus();
}

// The queue fields of a new request's records.
v1::QueueInfo NewQueueInfo(const OpContext& ctx, const allocator::QueuedRequest& q,
                           int64_t position, int32_t count, allocator::SpreadPolicy spread,
                           const std::string& site_id,
                           const std::string& pinned_domain_id = "",
                           const std::vector<std::string>& preempted = {}) {
  v1::QueueInfo info;
  info.set_sequence(q.sequence);
  info.set_priority(q.priority);
  *info.mutable_queued() = ToTimestamp(ctx.now);
  *info.mutable_deadline() = ToTimestamp(absl::FromUnixMicros(q.deadline_micros));
  info.set_position(position);
  info.set_spread_policy(ToProto(spread));
  info.set_count(count);
  info.set_site_id(site_id);
  info.set_pinned_domain_id(pinned_domain_id);
  for (const std::string& id : preempted) info.add_preempted_instance_ids(id);
  return info;
}

allocator::QueuedRequest NewQueuedRequest(State& state, const OpContext& ctx,
                                          const CreateRequest& req, const allocator::Tenant& tenant,
                                          int64_t gpus) {
  allocator::QueuedRequest q;
  q.sequence = state.NextQueueSequence();
  q.priority = tenant.priority;
  q.queued_micros = absl::ToUnixMicros(ctx.now);
  q.deadline_micros = absl::ToUnixMicros(ctx.now + req.queue_timeout);
  q.gpus = gpus;
  return q;
}

// The lifecycle the control plane reports (the seed's InstanceStatus): Pending → Provisioning
// → Configuring → Ready; Ready ↔ Updating and Ready ↔ Rebooting; any live state → Error or
// Terminating; a status reported again (a new message) is allowed. QUEUED and TERMINATED are
// the scheduler's; DeleteInstance ends Terminating.
std::vector<v1::InstanceStatus> AllowedNext(v1::InstanceStatus from) {
  using S = v1::InstanceStatus;
  std::vector<S> next;
  switch (from) {
    case v1::INSTANCE_STATUS_PENDING: next = {v1::INSTANCE_STATUS_PROVISIONING}; break;
    case v1::INSTANCE_STATUS_PROVISIONING: next = {v1::INSTANCE_STATUS_CONFIGURING}; break;
    case v1::INSTANCE_STATUS_CONFIGURING: next = {v1::INSTANCE_STATUS_READY}; break;
    case v1::INSTANCE_STATUS_READY:
      next = {v1::INSTANCE_STATUS_UPDATING, v1::INSTANCE_STATUS_REBOOTING};
      break;
    case v1::INSTANCE_STATUS_UPDATING:
    case v1::INSTANCE_STATUS_REBOOTING: next = {v1::INSTANCE_STATUS_READY}; break;
    case v1::INSTANCE_STATUS_ERROR:
    case v1::INSTANCE_STATUS_TERMINATING:
    default: break;
  }
  if (from != v1::INSTANCE_STATUS_ERROR && from != v1::INSTANCE_STATUS_TERMINATING) {
    next.push_back(v1::INSTANCE_STATUS_ERROR);
  }
  if (from != v1::INSTANCE_STATUS_TERMINATING) next.push_back(v1::INSTANCE_STATUS_TERMINATING);
  if (from == v1::INSTANCE_STATUS_TERMINATING) next.push_back(v1::INSTANCE_STATUS_ERROR);
  next.push_back(from);
  return next;
}

}  // namespace

absl::Status BatchCreateInstances(State& state, const OpContext& ctx, const CreateRequest& req,
                                  v1::BatchCreateInstancesResponse* resp,
                                  std::vector<RecordPtr>* created) {
  constexpr absl::string_view kRequest = "BatchCreateInstancesRequest";
  const InstanceSpec& spec = req.spec;
  if (absl::Status s = CheckQueueTimeout(state, req, kRequest); !s.ok()) return s;
  absl::StatusOr<const allocator::Tenant*> tenant = TenantOf(state, req.org, spec.tenant_id);
  if (!tenant.ok()) return tenant.status();
  absl::StatusOr<const allocator::InstanceType*> type = TypeOf(state, spec.instance_type_id);
  if (!type.ok()) return type.status();
  if (absl::Status s = ValidateInstanceTypeFit(
          {kRequest, (*type)->gpus_per_machine, 0, spec.nvlink_device_instances});
      !s.ok()) {
    return s;
  }

  absl::StatusOr<bool> replayed =
      Replay(state, spec.tenant_id, req.request_id, req.fingerprint, resp);
  if (!replayed.ok() || *replayed) return replayed.status();

  if (absl::Status s = CheckSpotOffered(spec, **type); !s.ok()) return s;
  if (absl::Status s = CheckSiteHasType(state, req.site_id, **type, "batch", kRequest);
      !s.ok()) {
    return s;
  }

  allocator::BatchRequest batch;
  batch.tenant_id = spec.tenant_id;
  batch.instance_type_id = spec.instance_type_id;
  batch.count = req.count;
  batch.topology_optimized = spec.topology_optimized;
  batch.spread_policy = req.spread_policy;
  batch.nvlink_partition_ids = spec.partition_ids;
  batch.spot = spec.spot;
  batch.segment_size = req.segment_size;
  batch.site_id = req.site_id;
  if (!req.validate_only) ServeQueueFirst(state, ctx);
  NewRequestScope scope;
  ScopeForNew(state, **tenant, spec.instance_type_id, &scope);
  absl::StatusOr<allocator::Placement> placement =
      state.allocator().PlanBatch(batch, scope.constraints);
  if (!placement.ok() && !Queueable(req, placement.status())) {
    return InfeasibleAsViolation(placement.status(), kRequest, "count");
  }
  if (!placement.ok() && state.queue().full()) return QueueFull(state);
  std::optional<allocator::PreemptionPlan> preemption;
  if (!placement.ok() && MayPreempt(state, req, placement.status())) {
    absl::StatusOr<allocator::PreemptionPlan> plan = state.allocator().PlanPreemption(
        batch, scope.constraints, absl::ToUnixMicros(ctx.now));
    if (plan.ok()) preemption = *std::move(plan);
  }
  const std::vector<std::string> victims =
      preemption ? VictimIds(state, *preemption) : std::vector<std::string>{};

  if (placement.ok()) resp->set_nvlink_domain_id(CommonDomain(state, *placement));
  const int64_t position = placement.ok() ? 0 : state.queue().PositionForNew((*tenant)->priority);
  if (!placement.ok()) {
    resp->set_queued(true);
    resp->set_queue_position(position);
  }
  if (preemption) {
    resp->set_nvlink_domain_id(state.allocator().DomainAt(preemption->domain).id);
    for (const std::string& id : victims) resp->add_preempted_instance_ids(id);
  }
  if (req.validate_only) {
    if (placement.ok()) DescribePlacement(state, ctx, spec, *placement, resp->mutable_instances());
    return absl::OkStatus();
  }

  std::vector<std::string> ids;
  std::vector<std::string> names;
  if (absl::Status s = NewIdsAndNames(state, ctx, req, &ids, &names); !s.ok()) return s;
  const std::string batch_id = NewTimeOrderedUuid(ctx.now, ctx.rng);
  resp->set_batch_id(batch_id);
  // Remember keeps the whole answer: with a request id the instances go into it here.
  const bool share = created != nullptr && req.request_id.empty();
  google::protobuf::RepeatedPtrField<v1::Instance>* copies =
      share ? nullptr : resp->mutable_instances();
  if (placement.ok()) {
    placement->started_micros = absl::ToUnixMicros(ctx.now);
    ApplyAndRecord(state, ctx, *placement, spec, ids, names, batch_id, copies);
  } else {
    allocator::QueuedRequest q = NewQueuedRequest(
        state, ctx, req, **tenant, int64_t{req.count} * (*type)->gpus_per_machine);
    q.is_batch = true;
    q.batch = batch;
    std::string pinned;
    if (preemption) {
      q.pinned_domain = preemption->domain;
      pinned = state.allocator().DomainAt(preemption->domain).id;
      state.PreemptInstances(*preemption, NewPreemption(state, ctx, *preemption, batch_id, ""),
                             ctx.now);
    }
    v1::QueueInfo info = NewQueueInfo(ctx, q, position, req.count, req.spread_policy,
                                      req.site_id, pinned, victims);
    info.set_segment_size(req.segment_size);
    std::vector<v1::Instance> records;
    for (size_t i = 0; i < ids.size(); ++i) {
      records.push_back(BuildQueuedInstance(ctx, spec, ids[i], names[i], batch_id,
                                            (*type)->gpus_per_machine, info));
      if (copies != nullptr) *copies->Add() = records.back();
    }
    state.EnqueueInstances(std::move(q), absl::MakeSpan(records));
  }
  if (share) {
    created->reserve(created->size() + ids.size());
    for (const std::string& id : ids) created->push_back(state.FindInstance(id)->record);
  }
  Remember(state, ctx, req, *resp);
  return absl::OkStatus();
}

absl::Status CreateInstance(State& state, const OpContext& ctx, const CreateRequest& req,
                            v1::Instance* resp) {
  constexpr absl::string_view kRequest = "CreateInstanceRequest";
  const InstanceSpec& spec = req.spec;
  if (absl::Status s = CheckQueueTimeout(state, req, kRequest); !s.ok()) return s;
  absl::StatusOr<const allocator::Tenant*> tenant = TenantOf(state, req.org, spec.tenant_id);
  if (!tenant.ok()) return tenant.status();
  absl::StatusOr<const allocator::InstanceType*> type = TypeOf(state, spec.instance_type_id);
  if (!type.ok()) return type.status();
  if (absl::Status s = ValidateInstanceTypeFit({kRequest, (*type)->gpus_per_machine,
                                                req.gpu_count, spec.nvlink_device_instances});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSpotOffered(spec, **type); !s.ok()) return s;
  const int64_t price = spec.spot ? (*type)->spot_price_per_hour_micros
                                  : (*type)->price_per_hour_micros;
  if (req.max_price_per_hour.has_value() && PriceToMicros(*req.max_price_per_hour) < price) {
    return absl::FailedPreconditionError(absl::StrCat(
        "instance type ", (*type)->name, " costs ", PriceFromMicros(price), " per hour",
        spec.spot ? " as spot" : "", ", above max_price_per_hour ", *req.max_price_per_hour,
        "; raise max_price_per_hour or pick a cheaper type (ListOffers sort=price)"));
  }
  // A retry must get its first answer, not "name taken" by the instance it created.
  absl::StatusOr<bool> replayed =
      Replay(state, spec.tenant_id, req.request_id, req.fingerprint, resp);
  if (!replayed.ok() || *replayed) return replayed.status();

  if (state.NameTaken(spec.tenant_id, req.name)) {
    return absl::AlreadyExistsError(absl::StrCat("tenant ", spec.tenant_id,
                                                 " already has an instance named '", req.name,
                                                 "'; choose another name"));
  }

  allocator::SingleRequest single;
  single.tenant_id = spec.tenant_id;
  single.instance_type_id = spec.instance_type_id;
  // Asking for every GPU of the machine is asking for the whole machine.
  single.gpu_count = req.gpu_count < (*type)->gpus_per_machine ? req.gpu_count : 0;
  single.site_id = req.site_id;
  single.nvlink_partition_ids = spec.partition_ids;
  single.spot = spec.spot;
  if (!req.validate_only) ServeQueueFirst(state, ctx);
  NewRequestScope scope;
  ScopeForNew(state, **tenant, spec.instance_type_id, &scope);
  absl::StatusOr<allocator::Placement> placement =
      state.allocator().PlanSingle(single, scope.constraints);
  // gpu_count was checked against the type above, so a single is infeasible only when its type
  // has no machines.
  if (!placement.ok() && !Queueable(req, placement.status())) {
    return InfeasibleAsViolation(placement.status(), kRequest, "instance_type_id");
  }
  if (!placement.ok()) {
    // It would wait for capacity that can never come.
    if (absl::Status s = CheckSiteHasType(state, req.site_id, **type, "request", kRequest);
        !s.ok()) {
      return s;
    }
  }
  if (!placement.ok() && state.queue().full()) return QueueFull(state);
  std::optional<allocator::PreemptionPlan> preemption;
  if (!placement.ok() && MayPreempt(state, req, placement.status())) {
    absl::StatusOr<allocator::PreemptionPlan> plan = state.allocator().PlanPreemption(
        single, scope.constraints, absl::ToUnixMicros(ctx.now));
    if (plan.ok()) preemption = *std::move(plan);
  }
  const std::vector<std::string> victims =
      preemption ? VictimIds(state, *preemption) : std::vector<std::string>{};
  const std::string pinned =
      preemption ? state.allocator().DomainAt(preemption->domain).id : std::string();

  google::protobuf::RepeatedPtrField<v1::Instance> out;
  if (placement.ok()) {
    if (req.validate_only) {
      DescribePlacement(state, ctx, spec, *placement, &out);
    } else {
      placement->started_micros = absl::ToUnixMicros(ctx.now);
      ApplyAndRecord(state, ctx, *placement, spec, {NewTimeOrderedUuid(ctx.now, ctx.rng)}, {req.name}, "", &out);
    }
    *resp = std::move(out[0]);
  } else {
    const int64_t position = state.queue().PositionForNew((*tenant)->priority);
    const int32_t gpus = single.gpu_count == 0 ? (*type)->gpus_per_machine : single.gpu_count;
    if (req.validate_only) {
      // Where it would wait: nothing is taken, no id or sequence is given.
      resp->set_tenant_id(spec.tenant_id);
      resp->set_instance_type_id(spec.instance_type_id);
      resp->set_gpu_count(gpus);
      resp->set_status(v1::INSTANCE_STATUS_QUEUED);
      resp->mutable_queue()->set_position(position);
      *resp->mutable_queue()->mutable_deadline() = ToTimestamp(ctx.now + req.queue_timeout);
      resp->mutable_queue()->set_site_id(req.site_id);
      resp->mutable_queue()->set_count(1);
      resp->mutable_queue()->set_pinned_domain_id(pinned);
      for (const std::string& id : victims) resp->mutable_queue()->add_preempted_instance_ids(id);
      return absl::OkStatus();
    }
    allocator::QueuedRequest q = NewQueuedRequest(state, ctx, req, **tenant, gpus);
    q.is_batch = false;
    q.single = single;
    const std::string id = NewTimeOrderedUuid(ctx.now, ctx.rng);
    if (preemption) {
      q.pinned_domain = preemption->domain;
      state.PreemptInstances(*preemption, NewPreemption(state, ctx, *preemption, "", id), ctx.now);
    }
    const v1::QueueInfo info = NewQueueInfo(ctx, q, position, 1, allocator::SpreadPolicy::kFill,
                                            req.site_id, pinned, victims);
    std::vector<v1::Instance> records;
    records.push_back(BuildQueuedInstance(ctx, spec, id, req.name, "", gpus, info));
    *resp = records.back();
    state.EnqueueInstances(std::move(q), absl::MakeSpan(records));
  }
  if (!req.validate_only) Remember(state, ctx, req, *resp);
  return absl::OkStatus();
}

absl::Status UpdateInstanceStatus(State& state, const OpContext& ctx, const StatusUpdate& req,
                                  v1::Instance* resp) {
  absl::StatusOr<const State::InstanceEntry*> found =
      VisibleInstance(state, req.instance.org, req.instance.id);
  if (!found.ok()) return found.status();
  if (req.status == v1::INSTANCE_STATUS_QUEUED || req.status == v1::INSTANCE_STATUS_TERMINATED) {
    FieldViolations v;
    v.Add("status", absl::StrCat(v1::InstanceStatus_Name(req.status),
                                 " is set by the scheduler only, never reported"));
    return v.ToStatus("UpdateInstanceStatusRequest");
  }
  if ((*found)->handle.generation == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "instance ", req.instance.id, " is ", v1::InstanceStatus_Name((*found)->record->status()),
        ": it holds no machine, so there is no provisioning to report",
        (*found)->record->status() == v1::INSTANCE_STATUS_QUEUED ? "; report it once it is placed (PENDING)"
        : (*found)->record->has_preemption() ? "; it was preempted and its machine released"
                                            : "; it left the queue unplaced and never will be"));
  }
  if ((*found)->record->has_preemption() && req.status != v1::INSTANCE_STATUS_TERMINATING &&
      req.status != v1::INSTANCE_STATUS_ERROR) {
    return absl::FailedPreconditionError(absl::StrCat(
        "instance ", req.instance.id, " was preempted (PREEMPTED) and must be released by its "
        "preemption_deadline; it may only be reported TERMINATING or ERROR, then deleted"));
  }
  const v1::InstanceStatus from = (*found)->record->status();
  const std::vector<v1::InstanceStatus> allowed = AllowedNext(from);
  if (std::find(allowed.begin(), allowed.end(), req.status) == allowed.end()) {
    std::vector<std::string> names;
    for (v1::InstanceStatus s : allowed) {
      if (s != from) names.push_back(v1::InstanceStatus_Name(s));
    }
    absl::Status status = absl::FailedPreconditionError(absl::StrCat(
        "instance ", req.instance.id, " is ", v1::InstanceStatus_Name(from), ", which cannot go to ",
        v1::InstanceStatus_Name(req.status), "; from ", v1::InstanceStatus_Name(from),
        " it may go to ", absl::StrJoin(names, ", "), " (or report ",
        v1::InstanceStatus_Name(from), " again)"));
    google::rpc::PreconditionFailure failure;
    google::rpc::PreconditionFailure::Violation* v = failure.add_violations();
    v->set_type("INSTANCE_STATUS_TRANSITION");
    v->set_subject(absl::StrCat("instance:", req.instance.id));
    v->set_description(absl::StrCat(v1::InstanceStatus_Name(from), " -> ",
                                    v1::InstanceStatus_Name(req.status), " is not allowed"));
    AttachErrorDetail(status, failure);
    return status;
  }
  v1::Instance updated = *(*found)->record;
  AppendStatus(ctx, req.status, req.message, &updated);
  SetInterfaceStatuses(req.status, &updated);
  *resp = updated;
  state.PutInstance(std::move(updated), (*found)->handle, (*found)->whole_machine);
  return absl::OkStatus();
}

absl::Status ReplaceInstance(State& state, const OpContext& ctx, const ReplaceRequest& req,
                             v1::Instance* resp) {
  absl::StatusOr<const State::InstanceEntry*> found =
      VisibleInstance(state, req.instance.org, req.instance.id);
  if (!found.ok()) return found.status();
  if ((*found)->handle.generation == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "instance ", req.instance.id, " is ", v1::InstanceStatus_Name((*found)->record->status()),
        " and holds no machine: there is nothing to replace"));
  }
  if ((*found)->record->has_preemption()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "instance ", req.instance.id, " was preempted and is leaving its machine for an "
        "on-demand request; it is not replaced (delete it, with machine_health_issue if the "
        "machine is faulty)"));
  }
  absl::StatusOr<allocator::ReplacePlan> plan = state.allocator().PlanReplace(
      (*found)->handle, req.machine_health_issue, state.require_cleaning());
  if (!plan.ok()) return plan.status();
  v1::Instance record = *(*found)->record;
  const std::string old_machine = record.machine_id();
  allocator::PlacedInstance where;
  where.machine = plan->to;
  where.domain = state.allocator().DomainIndexOf(record.nvlink_domain_id());
  where.gpu_count = record.gpu_count();
  where.whole_machine = (*found)->whole_machine;
  SetPlacement(state, where, &record);
  // The new machine has not been provisioned: the control plane starts over from PENDING
  // (a TERMINATING or ERROR instance keeps its status).
  const v1::InstanceStatus next =
      record.status() == v1::INSTANCE_STATUS_TERMINATING ||
              record.status() == v1::INSTANCE_STATUS_ERROR
          ? record.status()
          : v1::INSTANCE_STATUS_PENDING;
  SetInterfaceStatuses(next, &record);
  AppendStatus(ctx, next,
               absl::StrCat("replaced: moved from machine ", old_machine, " to ",
                            record.machine_id(), " in the same NVLink domain ",
                            record.nvlink_domain_id(),
                            req.machine_health_issue ? " (health issue reported)" : ""),
               &record);
  *resp = record;
  state.ReplaceInstance(*plan, std::move(record));
  return absl::OkStatus();
}

absl::Status DeleteInstances(State& state, const DeleteRequest& req,
                             google::protobuf::RepeatedPtrField<v1::Instance>* deleted) {
  std::vector<RecordPtr> records;
  if (absl::Status s = DeleteInstances(state, req, &records); !s.ok()) return s;
  AppendCopies(records, deleted);
  return absl::OkStatus();
}

absl::Status DeleteInstances(State& state, const DeleteRequest& req,
                             std::vector<RecordPtr>* deleted) {
  // Placed instances release their claims; queued ones cancel their request, which must be
  // named whole (a queued batch is one request); terminated ones only drop their record.
  std::vector<allocator::InstanceHandle> handles;
  std::vector<std::string> placed_ids;
  std::vector<uint64_t> cancelled;
  std::vector<std::string> dropped_ids;
  absl::flat_hash_set<std::string> named;
  for (const std::string& id : req.ids) {
    if (!named.insert(id).second) {
      FieldViolations v;
      v.Add("ids", absl::StrCat("instance ", id, " is listed more than once; list each once"));
      return v.ToStatus("BatchDeleteInstancesRequest");
    }
  }
  for (const std::string& id : req.ids) {
    absl::StatusOr<const State::InstanceEntry*> found = VisibleInstance(state, req.org, id);
    if (!found.ok()) return found.status();
    const v1::Instance& record = *(*found)->record;
    if (record.status() == v1::INSTANCE_STATUS_QUEUED) {
      const uint64_t sequence = record.queue().sequence();
      const std::vector<std::string>* members = state.QueuedIds(sequence);
      if (members == nullptr) {
        return absl::InternalError(absl::StrCat("instance ", id, " is QUEUED but not in the queue"));
      }
      for (const std::string& member : *members) {
        if (!named.contains(member)) {
          absl::Status status = absl::FailedPreconditionError(absl::StrCat(
              "instance ", id, " is queued as one of the ", members->size(),
              " instances of batch ", record.batch_id(),
              ", which is placed or cancelled whole; cancel the batch: BatchDeleteInstances with "
              "all of its ids (ListInstances batch_id=", record.batch_id(), ")"));
          google::rpc::PreconditionFailure failure;
          google::rpc::PreconditionFailure::Violation* v = failure.add_violations();
          v->set_type("QUEUED_BATCH");
          v->set_subject(absl::StrCat("batch:", record.batch_id()));
          v->set_description(absl::StrCat("instance ", member, " of the queued batch is not listed"));
          AttachErrorDetail(status, failure);
          return status;
        }
      }
      if (std::find(cancelled.begin(), cancelled.end(), sequence) == cancelled.end()) {
        cancelled.push_back(sequence);
      }
    } else if ((*found)->handle.generation == 0) {
      dropped_ids.push_back(id);  // TERMINATED: it holds nothing
    } else {
      handles.push_back((*found)->handle);
      placed_ids.push_back(id);
    }
  }
  absl::StatusOr<allocator::ReleasePlan> release =
      state.allocator().PlanRelease(handles, req.machine_health_issue, state.require_cleaning());
  if (!release.ok()) return release.status();

  deleted->reserve(deleted->size() + req.ids.size());
  for (const std::string& id : req.ids) deleted->push_back(state.FindInstance(id)->record);
  state.ReleaseInstances(*release, placed_ids);
  for (uint64_t sequence : cancelled) state.CancelQueued(sequence);
  for (const std::string& id : dropped_ids) state.EraseInstance(id);
  return absl::OkStatus();
}

absl::Status GetInstance(const State& state, const InstanceRef& req, v1::Instance* resp) {
  absl::StatusOr<const State::InstanceEntry*> found = VisibleInstance(state, req.org, req.id);
  if (!found.ok()) return found.status();
  (*found)->record.CopyTo(resp);
  if (resp->status() == v1::INSTANCE_STATUS_QUEUED) {
    resp->mutable_queue()->set_position(
        static_cast<int64_t>(state.queue().PositionOf(resp->queue().sequence())));
  }
  return absl::OkStatus();
}

}  // namespace nvlsched::daemon
