#include "daemon/api/status_mapping.h"

#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "allocator/errors.h"
#include "google/rpc/error_details.pb.h"

namespace nvlsched::daemon {
namespace {

std::string TypeUrl(const google::protobuf::Message& message) {
  return absl::StrCat("type.googleapis.com/", message.GetDescriptor()->full_name());
}

void AddDetail(google::rpc::Status& rpc_status, const google::protobuf::Message& detail) {
  rpc_status.add_details()->PackFrom(detail);
}

google::rpc::ErrorInfo CapacityErrorInfo(const allocator::CapacityShortfall& shortfall) {
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(kInsufficientCapacityReason));
  info.set_domain(std::string(kErrorDomain));
  auto& metadata = *info.mutable_metadata();
  metadata["requested"] = absl::StrCat(shortfall.requested);
  metadata["largest_domain_free"] = absl::StrCat(shortfall.largest_domain_free);
  metadata["total_free"] = absl::StrCat(shortfall.total_free);
  // Machines for batches and whole machines, GPUs for GPU-granular singles.
  const std::string_view unit = allocator::CapacityUnitName(shortfall.unit);
  metadata["unit"] = std::string(unit.data(), unit.size());
  metadata["instance_type_id"] = shortfall.instance_type_id;
  return info;
}

google::rpc::QuotaFailure QuotaFailureOf(const allocator::QuotaViolation& quota) {
  google::rpc::QuotaFailure failure;
  google::rpc::QuotaFailure::Violation* violation = failure.add_violations();
  violation->set_subject(
      absl::StrCat("tenant:", quota.tenant_id, "/instance_type:", quota.instance_type_id));
  violation->set_description(absl::StrCat(
      "quota of ", quota.max_machines, " machines (", quota.limit_gpus, " GPUs) for tenant ",
      quota.tenant_id, " and instance type ", quota.instance_type_id, ": ", quota.in_use_gpus,
      " GPUs in use, ", quota.requested_gpus, " requested, ",
      quota.in_use_gpus + quota.requested_gpus - quota.limit_gpus, " over the limit"));
  return failure;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const int raw_code = static_cast<int>(status.code());
  const grpc::StatusCode code =
      raw_code >= grpc::StatusCode::OK && raw_code <= grpc::StatusCode::UNAUTHENTICATED
          ? static_cast<grpc::StatusCode>(raw_code)
          : grpc::StatusCode::UNKNOWN;
  std::string message(status.message());

  google::rpc::Status rpc_status;
  rpc_status.set_code(code);
  rpc_status.set_message(message);
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    if (!absl::StartsWith(type_url, kGoogleRpcTypeUrlPrefix)) return;
    google::protobuf::Any* any = rpc_status.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  if (std::optional<allocator::CapacityShortfall> shortfall =
          allocator::GetCapacityShortfall(status)) {
    AddDetail(rpc_status, CapacityErrorInfo(*shortfall));
  }
  if (std::optional<allocator::QuotaViolation> quota = allocator::GetQuotaViolation(status)) {
    AddDetail(rpc_status, QuotaFailureOf(*quota));
  }
  if (rpc_status.details().empty()) return grpc::Status(code, message);
  return grpc::Status(code, message, rpc_status.SerializeAsString());
}

std::optional<google::rpc::Status> GetRpcStatus(const grpc::Status& status) {
  if (status.error_details().empty()) return std::nullopt;
  google::rpc::Status rpc_status;
  if (!rpc_status.ParseFromString(status.error_details())) return std::nullopt;
  return rpc_status;
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status result(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  if (std::optional<google::rpc::Status> rpc_status = GetRpcStatus(status)) {
    for (const google::protobuf::Any& any : rpc_status->details()) {
      result.SetPayload(any.type_url(), absl::Cord(any.value()));
    }
  }
  return result;
}

void AttachErrorDetail(absl::Status& status, const google::protobuf::Message& detail) {
  status.SetPayload(TypeUrl(detail), absl::Cord(detail.SerializeAsString()));
}

absl::Status ResourceNotFoundError(absl::string_view resource_type, absl::string_view resource_name,
                                   absl::string_view description) {
  absl::Status status = absl::NotFoundError(description);
  google::rpc::ResourceInfo info;
  info.set_resource_type(std::string(resource_type));
  info.set_resource_name(std::string(resource_name));
  info.set_description(std::string(description));
  AttachErrorDetail(status, info);
  return status;
}

absl::Status PermissionDeniedError(absl::string_view reason, absl::string_view message) {
  absl::Status status = absl::PermissionDeniedError(message);
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(std::string(kErrorDomain));
  AttachErrorDetail(status, info);
  return status;
}

}  // namespace nvlsched::daemon
