#include "daemon/instance_ops.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "daemon/convert.h"
#include "daemon/field_checks.h"
#include "daemon/field_violations.h"
#include "daemon/ids.h"
#include "daemon/instance_records.h"
#include "daemon/status_mapping.h"

namespace nvlsched::daemon {
namespace {

constexpr int kNameAttempts = 32;
constexpr int kDefaultPageSize = 100;

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
    const allocator::Tenant* tenant = state.allocator().FindTenant(instance->record.tenant_id());
    if (tenant != nullptr && tenant->org == org) return instance;
  }
  return ResourceNotFoundError(kInstanceResource, id,
                               absl::StrCat("instance ", id, " does not exist"));
}

// device_instance must be below the type's GPU count; the rest was validated before queueing.
absl::Status CheckNvLinkDevices(
    const google::protobuf::RepeatedPtrField<v1::NVLinkInterfaceCreateRequest>& nvlinks,
    const allocator::InstanceType& type) {
  FieldViolations violations;
  for (int i = 0; i < nvlinks.size(); ++i) {
    if (nvlinks[i].device_instance() >= type.gpus_per_machine) {
      violations.Add(absl::StrCat("nv_link_interfaces[", i, "].device_instance"),
                     absl::StrCat("device_instance must be below ", type.gpus_per_machine,
                                  ", the GPU count of instance type ", type.name, ", got ",
                                  nvlinks[i].device_instance()));
    }
  }
  return violations.ToStatus("request");
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

template <typename Req>
std::string Fingerprint(const Req& req) {
  Req copy = req;
  copy.clear_validate_only();
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  copy.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

template <typename Resp>
void Remember(State& state, ChangeBuilder& changes, const OpContext& ctx,
              const std::string& tenant_id, const std::string& request_id,
              std::string fingerprint, const Resp& resp) {
  if (request_id.empty()) return;
  IdempotencyEntry entry{std::move(fingerprint), resp.SerializeAsString(),
                         absl::ToUnixMicros(ctx.now)};
  changes.PutIdempotency(store::IdempotencyRow{tenant_id, request_id, entry.fingerprint,
                                               entry.response, entry.created_unix_micros});
  state.PutIdempotency(tenant_id, request_id, std::move(entry));
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
void ApplyAndRecord(State& state, ChangeBuilder& changes, const OpContext& ctx,
                    const allocator::Placement& placement, const InstanceSpec& spec,
                    const std::vector<std::string>& ids, const std::vector<std::string>& names,
                    const std::string& batch_id,
                    google::protobuf::RepeatedPtrField<v1::Instance>* out) {
  // Build the records first (from the plan's machine and domain, before Apply).
  std::vector<v1::Instance> records;
  records.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const allocator::PlacedInstance& where = placement.instances[i];
    records.push_back(BuildInstance(state, ctx, spec, ids[i], names[i], batch_id, where));
  }
  std::vector<allocator::InstanceHandle> handles(ids.size());
  state.allocator().Apply(placement, batch_id, absl::MakeSpan(handles));
  for (size_t i = 0; i < records.size(); ++i) {
    changes.UpsertInstance(ToRow(records[i], placement.instances[i].whole_machine));
    *out->Add() = records[i];
    state.PutInstance(std::move(records[i]), handles[i]);
  }
}

}  // namespace

absl::Status BatchCreateInstances(State& state, ChangeBuilder& changes, const OpContext& ctx,
                                  const v1::BatchCreateInstancesRequest& req,
                                  v1::BatchCreateInstancesResponse* resp) {
  absl::StatusOr<const allocator::Tenant*> tenant = TenantOf(state, req.org(), req.tenant_id());
  if (!tenant.ok()) return tenant.status();
  absl::StatusOr<const allocator::InstanceType*> type = TypeOf(state, req.instance_type_id());
  if (!type.ok()) return type.status();
  if (absl::Status s = CheckNvLinkDevices(req.nv_link_interfaces(), **type); !s.ok()) return s;

  const std::string fingerprint = req.request_id().empty() ? "" : Fingerprint(req);
  absl::StatusOr<bool> replayed = Replay(state, req.tenant_id(), req.request_id(), fingerprint, resp);
  if (!replayed.ok() || *replayed) return replayed.status();

  const InstanceSpec spec = SpecFromBatch(req);
  allocator::BatchRequest batch;
  batch.tenant_id = req.tenant_id();
  batch.instance_type_id = req.instance_type_id();
  batch.count = req.count();
  batch.topology_optimized = !req.has_topology_optimized() || req.topology_optimized();
  batch.spread_policy = ToCore(req.spread_policy());
  batch.nvlink_partition_ids = spec.partition_ids;
  absl::StatusOr<allocator::Placement> placement = state.allocator().PlanBatch(batch);
  if (!placement.ok()) {
    // The allocator's INVALID_ARGUMENT is "infeasible": the count can never fit this fleet.
    // Like every INVALID_ARGUMENT of the API it names the field (DESIGN.md, Errors).
    if (absl::IsInvalidArgument(placement.status())) {
      FieldViolations v;
      v.Add("count", std::string(placement.status().message()));
      return v.ToStatus("BatchCreateInstancesRequest");
    }
    return placement.status();
  }

  resp->set_nvlink_domain_id(CommonDomain(state, *placement));
  if (req.validate_only()) {
    DescribePlacement(state, ctx, spec, *placement, resp->mutable_instances());
    return absl::OkStatus();
  }

  std::vector<std::string> ids;
  std::vector<std::string> names;
  absl::flat_hash_set<std::string> batch_names;
  for (int i = 0; i < req.count(); ++i) {
    ids.push_back(NewUuid(ctx.rng));
    absl::StatusOr<std::string> name;
    do {
      name = NewName(state, ctx, req.tenant_id(), req.name_prefix());
      if (!name.ok()) return name.status();
    } while (!batch_names.insert(*name).second);
    names.push_back(*std::move(name));
  }
  const std::string batch_id = NewUuid(ctx.rng);
  resp->set_batch_id(batch_id);
  ApplyAndRecord(state, changes, ctx, *placement, spec, ids, names, batch_id,
                 resp->mutable_instances());
  Remember(state, changes, ctx, req.tenant_id(), req.request_id(), fingerprint, *resp);
  return absl::OkStatus();
}

absl::Status CreateInstance(State& state, ChangeBuilder& changes, const OpContext& ctx,
                            const v1::CreateInstanceRequest& req, v1::Instance* resp) {
  absl::StatusOr<const allocator::Tenant*> tenant = TenantOf(state, req.org(), req.tenant_id());
  if (!tenant.ok()) return tenant.status();
  absl::StatusOr<const allocator::InstanceType*> type = TypeOf(state, req.instance_type_id());
  if (!type.ok()) return type.status();
  if (absl::Status s = CheckNvLinkDevices(req.nv_link_interfaces(), **type); !s.ok()) return s;
  if (req.has_gpu_count() && req.gpu_count() > (*type)->gpus_per_machine) {
    FieldViolations v;
    v.Add("gpu_count", absl::StrCat("gpu_count must be between 1 and ", (*type)->gpus_per_machine,
                                    " (the GPUs of one ", (*type)->name, " machine), got ",
                                    req.gpu_count()));
    return v.ToStatus("request");
  }
  if (req.has_max_price_per_hour() &&
      PriceToMicros(req.max_price_per_hour()) < (*type)->price_per_hour_micros) {
    return absl::FailedPreconditionError(absl::StrCat(
        "instance type ", (*type)->name, " costs ", PriceFromMicros((*type)->price_per_hour_micros),
        " per hour, above max_price_per_hour ", req.max_price_per_hour(),
        "; raise max_price_per_hour or pick a cheaper type (ListOffers sort=price)"));
  }
  // A retry must get its first answer, not "name taken" by the instance it created.
  const std::string fingerprint = req.request_id().empty() ? "" : Fingerprint(req);
  absl::StatusOr<bool> replayed = Replay(state, req.tenant_id(), req.request_id(), fingerprint, resp);
  if (!replayed.ok() || *replayed) return replayed.status();

  if (state.NameTaken(req.tenant_id(), req.name())) {
    return absl::AlreadyExistsError(absl::StrCat("tenant ", req.tenant_id(),
                                                 " already has an instance named '", req.name(),
                                                 "'; choose another name"));
  }

  const InstanceSpec spec = SpecFromSingle(req);
  allocator::SingleRequest single;
  single.tenant_id = req.tenant_id();
  single.instance_type_id = req.instance_type_id();
  // Asking for every GPU of the machine is asking for the whole machine.
  single.gpu_count = req.has_gpu_count() && req.gpu_count() < (*type)->gpus_per_machine
                         ? req.gpu_count() : 0;
  single.site_id = req.site_id();
  single.nvlink_partition_ids = spec.partition_ids;
  absl::StatusOr<allocator::Placement> placement = state.allocator().PlanSingle(single);
  if (!placement.ok()) return placement.status();

  google::protobuf::RepeatedPtrField<v1::Instance> out;
  if (req.validate_only()) {
    DescribePlacement(state, ctx, spec, *placement, &out);
  } else {
    ApplyAndRecord(state, changes, ctx, *placement, spec, {NewUuid(ctx.rng)}, {req.name()}, "",
                   &out);
  }
  *resp = std::move(out[0]);
  if (!req.validate_only()) {
    Remember(state, changes, ctx, req.tenant_id(), req.request_id(), fingerprint, *resp);
  }
  return absl::OkStatus();
}

absl::Status UpdateInstanceStatus(State& state, ChangeBuilder& changes, const OpContext& ctx,
                                  const v1::UpdateInstanceStatusRequest& req, v1::Instance* resp) {
  absl::StatusOr<const State::InstanceEntry*> found = VisibleInstance(state, req.org(), req.id());
  if (!found.ok()) return found.status();
  v1::Instance updated = (*found)->record;
  const allocator::InstanceHandle handle = (*found)->handle;
  AppendStatus(ctx, req.status(), req.message(), &updated);
  const std::optional<allocator::InstanceClaim> claim = state.allocator().FindInstance(handle);
  changes.UpsertInstance(ToRow(updated, !claim.has_value() || claim->whole_machine));
  *resp = updated;
  state.PutInstance(std::move(updated), handle);
  return absl::OkStatus();
}

absl::Status BatchDeleteInstances(State& state, ChangeBuilder& changes, const OpContext& ctx,
                                  const v1::BatchDeleteInstancesRequest& req,
                                  v1::BatchDeleteInstancesResponse* resp) {
  std::vector<std::string> ids;
  std::vector<allocator::InstanceHandle> handles;
  for (const std::string& id : req.ids()) {
    absl::StatusOr<const State::InstanceEntry*> found = VisibleInstance(state, req.org(), id);
    if (!found.ok()) return found.status();
    ids.push_back(id);
    handles.push_back((*found)->handle);
  }
  absl::StatusOr<allocator::ReleasePlan> release =
      state.allocator().PlanRelease(handles, req.machine_health_issue());
  if (!release.ok()) return release.status();

  std::vector<std::string> machine_ids;
  for (const std::string& id : ids) {
    const v1::Instance& instance = state.FindInstance(id)->record;
    machine_ids.push_back(instance.machine_id());
    *resp->add_instances() = instance;
  }
  state.allocator().Apply(*release);
  for (const std::string& id : ids) {
    state.EraseInstance(id);
    changes.DeleteInstance(id);
  }
  if (req.machine_health_issue()) {
    for (const std::string& machine_id : machine_ids) {
      const allocator::Machine* machine = state.allocator().FindMachine(machine_id);
      if (machine != nullptr) changes.UpsertMachine(ToRow(*machine));
    }
  }
  return absl::OkStatus();
}

absl::Status DeleteInstance(State& state, ChangeBuilder& changes, const OpContext& ctx,
                            const v1::DeleteInstanceRequest& req, v1::DeleteInstanceResponse* resp) {
  v1::BatchDeleteInstancesRequest batch;
  batch.set_org(req.org());
  batch.add_ids(req.id());
  batch.set_machine_health_issue(req.machine_health_issue());
  v1::BatchDeleteInstancesResponse out;
  if (absl::Status s = BatchDeleteInstances(state, changes, ctx, batch, &out); !s.ok()) return s;
  *resp->mutable_instance() = std::move(*out.mutable_instances(0));
  return absl::OkStatus();
}

absl::Status GetInstance(const State& state, const v1::GetInstanceRequest& req, v1::Instance* resp) {
  absl::StatusOr<const State::InstanceEntry*> found = VisibleInstance(state, req.org(), req.id());
  if (!found.ok()) return found.status();
  *resp = (*found)->record;
  return absl::OkStatus();
}

absl::Status ListInstances(const State& state, const v1::ListInstancesRequest& req,
                           v1::ListInstancesResponse* resp) {
  std::string after;
  // A token is the web-safe base64 of the last id listed; anything else was not issued here.
  if (!req.page_token().empty() &&
      (!absl::WebSafeBase64Unescape(req.page_token(), &after) || !IsUuid(after))) {
    FieldViolations v;
    v.Add("page_token", "page_token is not one this server issued; start again without it");
    return v.ToStatus("request");
  }
  const int page_size = req.page_size() > 0 ? req.page_size() : kDefaultPageSize;
  int total = 0;
  for (const auto& [id, entry] : state.instances()) {
    const v1::Instance& instance = entry.record;
    if (!req.tenant_id().empty() && instance.tenant_id() != req.tenant_id()) continue;
    if (!req.batch_id().empty() && instance.batch_id() != req.batch_id()) continue;
    const allocator::Tenant* tenant = state.allocator().FindTenant(instance.tenant_id());
    if (tenant == nullptr || tenant->org != req.org()) continue;
    bool labels_match = true;
    for (const auto& [k, v] : req.labels()) {
      auto it = instance.labels().find(k);
      if (it == instance.labels().end() || it->second != v) labels_match = false;
    }
    if (!labels_match) continue;
    ++total;
    if (id <= after && !after.empty()) continue;
    if (resp->instances_size() < page_size) {
      *resp->add_instances() = instance;
    } else if (resp->next_page_token().empty()) {
      resp->set_next_page_token(
          absl::WebSafeBase64Escape(resp->instances(resp->instances_size() - 1).id()));
    }
  }
  resp->set_total_size(total);
  return absl::OkStatus();
}

}  // namespace nvlsched::daemon
