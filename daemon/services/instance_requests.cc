#include "daemon/services/instance_requests.h"

#include <string>
#include <utility>

#include "daemon/api/convert.h"
#include "daemon/api/field_checks.h"
#include "daemon/api/field_violations.h"
#include "daemon/api/page_tokens.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace nvlsched::daemon {
namespace {

// The idempotency fingerprint: the request's deterministic serialization without
// validate_only (a dry run and the real call are the same request).
template <typename Req>
std::string Fingerprint(const Req& req) {
  if (req.request_id().empty()) return "";
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

// A google.protobuf.Duration that is well formed (nanos within +-999,999,999, same sign as
// seconds). Its range against --max_queue_timeout is checked by the engine op.
template <typename Req>
absl::Status CheckQueueTimeoutWellFormed(const Req& req, absl::string_view request_name) {
  if (!req.has_queue_timeout()) return absl::OkStatus();
  const google::protobuf::Duration& d = req.queue_timeout();
  if (d.nanos() > -1000000000 && d.nanos() < 1000000000 &&
      !(d.seconds() > 0 && d.nanos() < 0) && !(d.seconds() < 0 && d.nanos() > 0)) {
    return absl::OkStatus();
  }
  FieldViolations v;
  v.Add("queue_timeout", "is not a valid duration (nanos out of range or of another sign "
                         "than seconds); write it as \"300s\" in JSON");
  return v.ToStatus(request_name);
}

template <typename Req>
CreateRequest CommonCreate(const Req& req) {
  CreateRequest core;
  core.org = req.org();
  core.request_id = req.request_id();
  core.fingerprint = Fingerprint(req);
  core.validate_only = req.validate_only();
  core.queue_timeout = FromDurationProto(req.queue_timeout());
  InstanceSpec& spec = core.spec;
  spec.spot = req.billing_mode() == v1::BILLING_MODE_SPOT;
  spec.tenant_id = req.tenant_id();
  spec.instance_type_id = req.instance_type_id();
  spec.description = req.description();
  spec.vpc_id = req.vpc_id();
  spec.operating_system_id = req.operating_system_id();
  spec.ipxe_script = req.ipxe_script();
  spec.user_data = req.user_data();
  spec.labels = req.labels();
  spec.interfaces = req.interfaces();
  spec.nv_link_interfaces = req.nv_link_interfaces();
  spec.ssh_key_group_ids.assign(req.ssh_key_group_ids().begin(), req.ssh_key_group_ids().end());
  spec.partition_ids = DistinctPartitions(req.nv_link_interfaces());
  for (const v1::NVLinkInterfaceCreateRequest& nv : req.nv_link_interfaces()) {
    spec.nvlink_device_instances.push_back(nv.device_instance());
  }
  return core;
}

}  // namespace

absl::StatusOr<CreateRequest> ToCreateRequest(const v1::BatchCreateInstancesRequest& req,
                                              const ValidationContext& context) {
  if (absl::Status s = ValidateBatchCreateInstancesRequest(req, context); !s.ok()) return s;
  if (absl::Status s = CheckQueueTimeoutWellFormed(req, "BatchCreateInstancesRequest"); !s.ok()) {
    return s;
  }
  CreateRequest core = CommonCreate(req);
  InstanceSpec& spec = core.spec;
  spec.secondary_vpc_ids.assign(req.secondary_vpc_ids().begin(), req.secondary_vpc_ids().end());
  spec.network_security_group_id = req.network_security_group_id();
  spec.always_boot_with_custom_ipxe = req.always_boot_with_custom_ipxe();
  spec.phone_home_enabled = req.phone_home_enabled();
  spec.infiniband_interfaces = req.infiniband_interfaces();
  spec.dpu_deployments = req.dpu_extension_service_deployments();
  spec.topology_optimized = !req.has_topology_optimized() || req.topology_optimized();
  core.count = req.count();
  core.name_prefix = req.name_prefix();
  core.spread_policy = ToCore(req.spread_policy());
  core.segment_size = req.segment_size();
  core.site_id = req.site_id();
  return core;
}

absl::StatusOr<CreateRequest> ToCreateRequest(const v1::CreateInstanceRequest& req) {
  if (absl::Status s = ValidateCreateInstanceRequest(req, ValidationContext{}); !s.ok()) return s;
  if (absl::Status s = CheckQueueTimeoutWellFormed(req, "CreateInstanceRequest"); !s.ok()) return s;
  CreateRequest core = CommonCreate(req);
  core.name = req.name();
  core.gpu_count = req.has_gpu_count() ? req.gpu_count() : 0;
  core.site_id = req.site_id();
  if (req.has_max_price_per_hour()) core.max_price_per_hour = req.max_price_per_hour();
  return core;
}

absl::StatusOr<StatusUpdate> ToStatusUpdate(const v1::UpdateInstanceStatusRequest& req) {
  if (absl::Status s = ValidateUpdateInstanceStatusRequest(req); !s.ok()) return s;
  return StatusUpdate{InstanceRef{req.org(), req.id()}, req.status(), req.message()};
}

absl::StatusOr<DeleteRequest> ToDeleteRequest(const v1::DeleteInstanceRequest& req) {
  if (absl::Status s = ValidateDeleteInstanceRequest(req); !s.ok()) return s;
  return DeleteRequest{req.org(), {req.id()}, req.machine_health_issue()};
}

absl::StatusOr<ReplaceRequest> ToReplaceRequest(const v1::ReplaceInstanceRequest& req) {
  if (absl::Status s = ValidateReplaceInstanceRequest(req); !s.ok()) return s;
  return ReplaceRequest{InstanceRef{req.org(), req.id()}, req.machine_health_issue()};
}

absl::StatusOr<DeleteRequest> ToDeleteRequest(const v1::BatchDeleteInstancesRequest& req) {
  if (absl::Status s = ValidateBatchDeleteInstancesRequest(req); !s.ok()) return s;
  return DeleteRequest{req.org(), {req.ids().begin(), req.ids().end()},
                       req.machine_health_issue()};
}

absl::StatusOr<InstanceRef> ToInstanceRef(const v1::GetInstanceRequest& req) {
  if (absl::Status s = ValidateGetInstanceRequest(req); !s.ok()) return s;
  return InstanceRef{req.org(), req.id()};
}

absl::StatusOr<InstanceQuery> ToInstanceQuery(const v1::ListInstancesRequest& req) {
  if (absl::Status s = ValidateListInstancesRequest(req); !s.ok()) return s;
  InstanceQuery query;
  if (!req.page_token().empty()) {
    // A token is the web-safe base64 of the last id listed; anything else was not issued here.
    std::optional<std::string> after = DecodePageToken(req.page_token());
    if (!after.has_value() || !IsUuid(*after)) {
      FieldViolations v;
      v.Add("page_token", "page_token is not one this server issued; start again without it");
      return v.ToStatus("ListInstancesRequest");
    }
    query.after = *std::move(after);
  }
  query.org = req.org();
  query.tenant_id = req.tenant_id();
  query.batch_id = req.batch_id();
  for (const auto& [k, v] : req.labels()) query.labels.emplace_back(k, v);
  query.page_size = req.page_size();
  return query;
}

}  // namespace nvlsched::daemon
