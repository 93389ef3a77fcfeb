// InstanceService request validation. Inventory and capacity requests are in
// validation_inventory.cc; the shared field checks in field_checks.h.
#include "daemon/api/validation.h"

#include <arpa/inet.h>

#include <cmath>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/api/field_checks.h"
#include "daemon/api/field_violations.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;
template <typename T>
using Repeated = google::protobuf::RepeatedPtrField<T>;

enum class Creation { kBatch, kSingle };

// What CheckInterfaces learned, for the rules that depend on the interface kind.
struct InterfaceSummary {
  int with_subnet = 0;
  int with_vpc_prefix = 0;
  bool all_vpc_prefix() const { return with_vpc_prefix > 0 && with_subnet == 0; }
};

// The seed: "The least-significant host bit must be 1", i.e. the address is odd
// (10.0.0.1, not 10.0.0.2). Returns an empty string when `text` is acceptable.
std::string IpAddressProblem(const std::string& text) {
  unsigned char bytes[16];
  size_t size = 0;
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1) {
    size = 4;
  } else if (inet_pton(AF_INET6, text.c_str(), bytes) == 1) {
    size = 16;
  } else {
    return absl::StrCat("must be an IPv4 or IPv6 address such as 10.0.0.1, got ", Quote(text));
  }
  if ((bytes[size - 1] & 1) == 0) {
    return absl::StrCat(
        "must have its least-significant host bit set to 1 (an odd address such "
        "as 10.0.0.1), got ",
        Quote(text));
  }
  return "";
}

// The seed: virtual_function_id "must be specified if isPhysical is false". is_physical is
// optional in the API, so only an explicit false requires one; a negative one is never valid.
template <typename Interface>
void CheckVirtualFunction(FieldViolations& violations, const std::string& path,
                          const Interface& interface) {
  const std::string field = Child(path, "virtual_function_id");
  if (interface.has_virtual_function_id() && interface.virtual_function_id() < 0) {
    violations.Add(field, absl::StrCat(field, " must be 0 or more, got ",
                                       interface.virtual_function_id()));
  } else if (interface.has_is_physical() && !interface.is_physical() &&
             !interface.has_virtual_function_id()) {
    violations.Add(field, absl::StrCat(field, " is required when ", Child(path, "is_physical"),
                                       " is false: the index of the virtual function to attach "
                                       "(or set is_physical to true)"));
  }
}

InterfaceSummary CheckInterfaces(FieldViolations& violations,
                                 const Repeated<v1::InterfaceCreateRequest>& interfaces,
                                 Creation creation) {
  InterfaceSummary summary;
  if (interfaces.empty() && creation == Creation::kBatch) {
    violations.Add("interfaces",
                   "interfaces is required: at least one interface with a "
                   "subnet_id or a vpc_prefix_id");
  }
  if (interfaces.size() > kMaxInterfaces) {
    violations.Add("interfaces", absl::StrCat("interfaces may hold at most ", kMaxInterfaces,
                                              " entries, got ", interfaces.size()));
  }
  std::vector<std::string> physical;
  for (int i = 0; i < interfaces.size(); ++i) {
    const v1::InterfaceCreateRequest& interface = interfaces[i];
    const std::string path = Index("interfaces", i);
    const bool has_subnet = !interface.subnet_id().empty();
    const bool has_prefix = !interface.vpc_prefix_id().empty();
    if (has_subnet == has_prefix) {
      violations.Add(path, absl::StrCat(path,
                                        " must name exactly one of subnet_id and "
                                        "vpc_prefix_id, got ",
                                        has_subnet ? "both" : "neither"));
    }
    // An interface naming both is reported above, not also as a mix of kinds.
    summary.with_subnet += has_subnet && !has_prefix ? 1 : 0;
    summary.with_vpc_prefix += has_prefix && !has_subnet ? 1 : 0;
    CheckOptionalUuid(violations, Child(path, "subnet_id"), interface.subnet_id());
    CheckOptionalUuid(violations, Child(path, "vpc_prefix_id"), interface.vpc_prefix_id());
    if (interface.is_physical()) physical.push_back(path);
    if (interface.has_ip_address()) {
      const std::string ip_path = Child(path, "ip_address");
      if (creation == Creation::kBatch) {
        violations.Add(ip_path, absl::StrCat(ip_path,
                                             " is not supported in a batch: every "
                                             "instance gets its own address; remove it"));
      } else if (!has_prefix) {
        violations.Add(ip_path, absl::StrCat(ip_path,
                                             " can only be given with vpc_prefix_id, "
                                             "not for a subnet-based interface"));
      } else if (std::string problem = IpAddressProblem(interface.ip_address()); !problem.empty()) {
        violations.Add(ip_path, absl::StrCat(ip_path, " ", problem));
      }
    }
    if (interface.device_instance() < 0) {
      violations.Add(Child(path, "device_instance"),
                     absl::StrCat(Child(path, "device_instance"), " must be 0 or more, got ",
                                  interface.device_instance()));
    }
    CheckVirtualFunction(violations, path, interface);
  }
  if (summary.with_subnet > 0 && summary.with_vpc_prefix > 0) {
    violations.Add("interfaces",
                   absl::StrCat("interfaces must be all subnet-based or all VPC-prefix-based, got ",
                                summary.with_subnet, " with subnet_id and ",
                                summary.with_vpc_prefix, " with vpc_prefix_id"));
  }
  if (physical.size() > 1) {
    violations.Add("interfaces",
                   absl::StrCat("at most one interface may be is_physical, got ", physical.size(),
                                " (", absl::StrJoin(physical, ", "), ")"));
  }
  return summary;
}

// `gpu_bound` > 0: device_instance must be below it; `bound_reason` explains where it comes
// from ("the instance type has 4 GPUs per machine").
// device_instance below gpu_bound (0: no bound known). False when it is not.
bool CheckDeviceBelow(FieldViolations& violations, const std::string& device_path, int device,
                      int gpu_bound, absl::string_view bound_reason) {
  if (gpu_bound <= 0 || device < gpu_bound) return true;
  violations.Add(device_path, absl::StrCat(device_path, " must be between 0 and ", gpu_bound - 1,
                                           " (", bound_reason, "), got ", device));
  return false;
}

std::string TypeGpusReason(int type_gpus) {
  return absl::StrCat("the instance type has ", type_gpus, " GPUs per machine");
}

// gpu_count at most the type's GPUs (0: not known).
void CheckGpuCountFits(FieldViolations& violations, int gpus, int type_gpus) {
  if (type_gpus > 0 && gpus > type_gpus) {
    violations.Add("gpu_count",
                   absl::StrCat("gpu_count must be between 1 and ", type_gpus,
                                " (the instance type has ", type_gpus, " GPUs per machine), got ",
                                gpus));
  }
}

void CheckNvLinkInterfaces(FieldViolations& violations,
                           const Repeated<v1::NVLinkInterfaceCreateRequest>& interfaces,
                           int gpu_bound, absl::string_view bound_reason) {
  absl::flat_hash_map<int, int> first_use;  // device_instance -> index of its first interface
  for (int i = 0; i < interfaces.size(); ++i) {
    const v1::NVLinkInterfaceCreateRequest& interface = interfaces[i];
    const std::string path = Index("nv_link_interfaces", i);
    CheckRequiredUuid(violations, Child(path, "nv_link_logical_partition_id"),
                      interface.nv_link_logical_partition_id(), "an NVLink logical partition");
    const std::string device_path = Child(path, "device_instance");
    const int device = interface.device_instance();
    if (device < 0) {
      violations.Add(device_path, absl::StrCat(device_path,
                                               " is a GPU index and must be 0 or "
                                               "more, got ",
                                               device));
      continue;
    }
    if (!CheckDeviceBelow(violations, device_path, device, gpu_bound, bound_reason)) continue;
    auto [it, inserted] = first_use.emplace(device, i);
    if (!inserted) {
      violations.Add(device_path,
                     absl::StrCat(device_path, " must be unique within the request: GPU ", device,
                                  " is already given by nv_link_interfaces[", it->second, "]"));
    }
  }
}

void CheckInfiniBandInterfaces(FieldViolations& violations,
                               const Repeated<v1::InfiniBandInterfaceCreateRequest>& interfaces) {
  for (int i = 0; i < interfaces.size(); ++i) {
    const v1::InfiniBandInterfaceCreateRequest& interface = interfaces[i];
    const std::string path = Index("infiniband_interfaces", i);
    CheckRequiredUuid(violations, Child(path, "partition_id"), interface.partition_id(),
                      "an InfiniBand partition");
    if (absl::StripAsciiWhitespace(interface.device()).empty()) {
      violations.Add(Child(path, "device"),
                     absl::StrCat(Child(path, "device"),
                                  " is required: the InfiniBand device "
                                  "name, e.g. \"MT2910 Family [ConnectX-7]\""));
    }
    if (interface.device_instance() < 0) {
      violations.Add(Child(path, "device_instance"),
                     absl::StrCat(Child(path, "device_instance"), " must be 0 or more, got ",
                                  interface.device_instance()));
    }
    CheckVirtualFunction(violations, path, interface);
  }
}

void CheckDpuExtensionServices(
    FieldViolations& violations,
    const Repeated<v1::DpuExtensionServiceDeploymentRequest>& deployments) {
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < deployments.size(); ++i) {
    const std::string path = Index("dpu_extension_service_deployments", i);
    const std::string id_path = Child(path, "dpu_extension_service_id");
    const std::string& id = deployments[i].dpu_extension_service_id();
    CheckRequiredUuid(violations, id_path, id, "a DPU extension service");
    if (!violations.Has(id_path) && !seen.insert(absl::AsciiStrToLower(id)).second) {
      violations.Add(id_path, absl::StrCat(id_path, " ", Quote(id),
                                           " is deployed twice: list "
                                           "each service once"));
    }
    if (deployments[i].version().empty()) {
      violations.Add(Child(path, "version"), absl::StrCat(Child(path, "version"),
                                                          " is required: the version of the "
                                                          "DPU extension service to deploy"));
    }
  }
}

// user_data is applied by the operating system, so it needs one; an empty optional string
// counts as absent (what a JSON client sending "" means).
void CheckOperatingSystem(FieldViolations& violations, absl::string_view operating_system_id,
                          absl::string_view ipxe_script, bool has_user_data,
                          bool require_os_or_ipxe) {
  CheckOptionalUuid(violations, "operating_system_id", operating_system_id);
  if (require_os_or_ipxe && operating_system_id.empty() && ipxe_script.empty()) {
    violations.Add("operating_system_id",
                   absl::StrCat("operating_system_id is required when ipxe_script is empty: give "
                                "the UUID of an operating system (e.g. ",
                                kUuidExample, ") or a non-empty ipxe_script"));
  }
  if (has_user_data && operating_system_id.empty()) {
    violations.Add("user_data",
                   "user_data can only be given together with operating_system_id "
                   "(the operating system applies it)");
  }
}

void CheckIdRequest(FieldViolations& violations, absl::string_view org, absl::string_view id) {
  CheckOrg(violations, "org", org);
  CheckRequiredUuid(violations, "id", id, "the instance");
}

}  // namespace

// billing_mode: one of the enum's values (UNSPECIFIED means ON_DEMAND).
static void CheckBillingMode(FieldViolations& violations, int value) {
  if (!v1::BillingMode_IsValid(value)) {
    violations.Add("billing_mode",
                   absl::StrCat("billing_mode must be BILLING_MODE_ON_DEMAND or BILLING_MODE_SPOT "
                                "(or absent: on-demand), got ", value));
  }
}

absl::Status ValidateBatchCreateInstancesRequest(const v1::BatchCreateInstancesRequest& request,
                                                 const ValidationContext& context) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckOrg(violations, "org", request.org());
  CheckName(violations, "name_prefix", request.name_prefix(), kMinNamePrefixLength,
            kMaxNamePrefixLength, /*required=*/true);
  if (request.count() == 0) {
    violations.Add("count", absl::StrCat("count is required: the number of instances, between 2 "
                                         "and ",
                                         context.max_batch_count));
  } else if (request.count() < 2 || request.count() > context.max_batch_count) {
    violations.Add(
        "count",
        absl::StrCat("count must be between 2 and ", context.max_batch_count, ", got ",
                     request.count(), request.count() == 1 ? " (use CreateInstance for one)" : ""));
  }
  if (request.has_description()) {
    CheckMaxLength(violations, "description", request.description(), kMaxDescriptionLength);
  }
  CheckRequiredUuid(violations, "tenant_id", request.tenant_id(), "the tenant");
  CheckRequiredUuid(violations, "instance_type_id", request.instance_type_id(),
                    "the instance type");
  CheckRequiredUuid(violations, "vpc_id", request.vpc_id(), "the VPC");
  const InterfaceSummary interfaces =
      CheckInterfaces(violations, request.interfaces(), Creation::kBatch);
  if (!request.secondary_vpc_ids().empty() && !interfaces.all_vpc_prefix()) {
    violations.Add("secondary_vpc_ids",
                   "secondary_vpc_ids may only be given when every entry of "
                   "interfaces uses vpc_prefix_id");
  }
  CheckUuidList(violations, "secondary_vpc_ids", request.secondary_vpc_ids(), request.vpc_id(),
                "the primary vpc_id");
  CheckOperatingSystem(violations, request.operating_system_id(), request.ipxe_script(),
                       !request.user_data().empty(), /*require_os_or_ipxe=*/true);
  CheckOptionalUuid(violations, "network_security_group_id", request.network_security_group_id());
  CheckLabels(violations, "labels", request.labels());
  CheckInfiniBandInterfaces(violations, request.infiniband_interfaces());
  CheckDpuExtensionServices(violations, request.dpu_extension_service_deployments());
  CheckNvLinkInterfaces(violations, request.nv_link_interfaces(), context.instance_type_gpus,
                        TypeGpusReason(context.instance_type_gpus));
  CheckUuidList(violations, "ssh_key_group_ids", request.ssh_key_group_ids());
  const bool strict = !request.has_topology_optimized() || request.topology_optimized();
  if (!v1::SpreadPolicy_IsValid(request.spread_policy())) {
    violations.Add("spread_policy", absl::StrCat("spread_policy must be SPREAD_POLICY_FILL, "
                                                 "SPREAD_POLICY_MIN_DOMAINS or "
                                                 "SPREAD_POLICY_SPREAD, got ",
                                                 request.spread_policy()));
  } else if (request.spread_policy() != v1::SPREAD_POLICY_UNSPECIFIED && strict) {
    violations.Add("spread_policy",
                   absl::StrCat("spread_policy ", v1::SpreadPolicy_Name(request.spread_policy()),
                                " only applies with topology_optimized=false; with "
                                "topology_optimized ",
                                request.has_topology_optimized() ? "true" : "absent (true)",
                                " the batch stays in one NVLink domain: remove spread_policy or "
                                "set topology_optimized to false"));
  }
  CheckBillingMode(violations, request.billing_mode());
  if (request.segment_size() < 0) {
    violations.Add("segment_size", absl::StrCat("segment_size must not be negative, got ",
                                                request.segment_size()));
  } else if (request.segment_size() > 0) {
    if (strict) {
      violations.Add("segment_size",
                     "segment_size spreads the batch over domains in equal segments: it needs "
                     "topology_optimized=false (a topology-optimized batch stays in one domain)");
    }
    if (request.spread_policy() != v1::SPREAD_POLICY_UNSPECIFIED) {
      violations.Add("spread_policy",
                     "spread_policy and segment_size exclude each other: segments decide how "
                     "the batch is spread; remove one");
    }
    if (request.count() > 0 && request.count() % request.segment_size() != 0) {
      violations.Add("segment_size",
                     absl::StrCat("count ", request.count(), " is not a multiple of segment_size ",
                                  request.segment_size(),
                                  ": every domain the batch uses gets exactly segment_size "
                                  "machines"));
    }
  }
  if (request.has_site_id()) CheckOptionalUuid(violations, "site_id", request.site_id());
  CheckRequestId(violations, "request_id", request.request_id());
  return violations.ToStatus("BatchCreateInstancesRequest");
}

absl::Status ValidateCreateInstanceRequest(const v1::CreateInstanceRequest& request,
                                           const ValidationContext& context) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckOrg(violations, "org", request.org());
  CheckRequiredUuid(violations, "tenant_id", request.tenant_id(), "the tenant");
  CheckRequiredUuid(violations, "instance_type_id", request.instance_type_id(),
                    "the instance type");
  CheckName(violations, "name", request.name(), kMinInstanceNameLength, kMaxInstanceNameLength,
            /*required=*/true);
  if (request.has_gpu_count()) {
    const int gpus = request.gpu_count();
    if (gpus < 1) {
      violations.Add("gpu_count", absl::StrCat("gpu_count must be at least 1 (omit it for the "
                                               "whole machine), got ",
                                               gpus));
    } else {
      CheckGpuCountFits(violations, gpus, context.instance_type_gpus);
    }
  }
  if (request.has_description()) {
    CheckMaxLength(violations, "description", request.description(), kMaxDescriptionLength);
  }
  CheckLabels(violations, "labels", request.labels());
  if (request.has_site_id()) CheckOptionalUuid(violations, "site_id", request.site_id());
  CheckBillingMode(violations, request.billing_mode());
  if (request.has_max_price_per_hour() &&
      !(std::isfinite(request.max_price_per_hour()) && request.max_price_per_hour() >= 0)) {
    violations.Add("max_price_per_hour",
                   absl::StrCat("max_price_per_hour must be a number of USD per hour, 0 or more, "
                                "got ",
                                request.max_price_per_hour()));
  }
  CheckOptionalUuid(violations, "vpc_id", request.vpc_id());
  CheckInterfaces(violations, request.interfaces(), Creation::kSingle);
  if (!request.interfaces().empty() && request.vpc_id().empty()) {
    violations.Add("vpc_id", absl::StrCat("vpc_id is required when interfaces are given: the "
                                          "UUID of the VPC (e.g. ",
                                          kUuidExample, ")"));
  }
  CheckOperatingSystem(violations, request.operating_system_id(), request.ipxe_script(),
                       !request.user_data().empty(), /*require_os_or_ipxe=*/false);
  // A GPU-granular instance numbers its own GPUs 0..gpu_count-1.
  const bool partial = request.has_gpu_count() && request.gpu_count() > 0;
  const int gpu_bound = partial ? request.gpu_count() : context.instance_type_gpus;
  CheckNvLinkInterfaces(
      violations, request.nv_link_interfaces(), gpu_bound,
      partial ? absl::StrCat("the instance has gpu_count ", gpu_bound, " GPUs")
              : TypeGpusReason(gpu_bound));
  CheckUuidList(violations, "ssh_key_group_ids", request.ssh_key_group_ids());
  CheckRequestId(violations, "request_id", request.request_id());
  return violations.ToStatus("CreateInstanceRequest");
}

absl::Status ValidateInstanceTypeFit(const InstanceTypeFit& fit) {
  FieldViolations violations;
  if (fit.gpu_count > 0) CheckGpuCountFits(violations, fit.gpu_count, fit.type_gpus);
  // A GPU-granular single's device bound (its own gpu_count) is checked without the type.
  if (fit.gpu_count == 0) {
    const std::string reason = TypeGpusReason(fit.type_gpus);
    for (size_t i = 0; i < fit.nvlink_device_instances.size(); ++i) {
      CheckDeviceBelow(violations,
                       Child(Index("nv_link_interfaces", static_cast<int>(i)), "device_instance"),
                       fit.nvlink_device_instances[i], fit.type_gpus, reason);
    }
  }
  return violations.ToStatus(fit.request_name);
}

absl::Status ValidateGetInstanceRequest(const v1::GetInstanceRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckIdRequest(violations, request.org(), request.id());
  return violations.ToStatus("GetInstanceRequest");
}

absl::Status ValidateListInstancesRequest(const v1::ListInstancesRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckOrg(violations, "org", request.org());
  CheckOptionalUuid(violations, "tenant_id", request.tenant_id());
  CheckOptionalUuid(violations, "batch_id", request.batch_id());
  CheckLabels(violations, "labels", request.labels());
  CheckPageSize(violations, "page_size", request.page_size());
  return violations.ToStatus("ListInstancesRequest");
}

absl::Status ValidateUpdateInstanceStatusRequest(const v1::UpdateInstanceStatusRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckIdRequest(violations, request.org(), request.id());
  if (request.status() == v1::INSTANCE_STATUS_UNSPECIFIED ||
      !v1::InstanceStatus_IsValid(request.status())) {
    violations.Add("status", absl::StrCat("status must be one of INSTANCE_STATUS_PENDING .. "
                                          "INSTANCE_STATUS_ERROR, got ",
                                          v1::InstanceStatus_IsValid(request.status())
                                              ? v1::InstanceStatus_Name(request.status())
                                              : absl::StrCat(request.status())));
  } else if (request.status() == v1::INSTANCE_STATUS_QUEUED ||
             request.status() == v1::INSTANCE_STATUS_TERMINATED) {
    // Checked here, on the request alone, so that the answer does not depend on whether the
    // instance exists (the engine op refuses them too).
    violations.Add("status", absl::StrCat("status must be one of INSTANCE_STATUS_PENDING .. "
                                          "INSTANCE_STATUS_ERROR, got ",
                                          v1::InstanceStatus_Name(request.status()),
                                          ", which is set by the scheduler only, never reported"));
  }
  CheckMaxLength(violations, "message", request.message(), kMaxDescriptionLength);
  return violations.ToStatus("UpdateInstanceStatusRequest");
}

absl::Status ValidateDeleteInstanceRequest(const v1::DeleteInstanceRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckIdRequest(violations, request.org(), request.id());
  return violations.ToStatus("DeleteInstanceRequest");
}

absl::Status ValidateReplaceInstanceRequest(const v1::ReplaceInstanceRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckIdRequest(violations, request.org(), request.id());
  return violations.ToStatus("ReplaceInstanceRequest");
}

absl::Status ValidateBatchDeleteInstancesRequest(const v1::BatchDeleteInstancesRequest& request) {
  FieldViolations violations;
  CheckWireTypes(violations, "", request);
  CheckOrg(violations, "org", request.org());
  if (request.ids().empty()) {
    violations.Add("ids", "ids is required: the UUIDs of the instances to delete");
  } else if (request.ids().size() > kMaxBatchDeleteIds) {
    violations.Add("ids",
                   absl::StrCat("ids may hold at most ", kMaxBatchDeleteIds, " instances, got ",
                                request.ids().size(), ": split the deletion"));
  }
  CheckUuidList(violations, "ids", request.ids());
  return violations.ToStatus("BatchDeleteInstancesRequest");
}

}  // namespace nvlsched::daemon
