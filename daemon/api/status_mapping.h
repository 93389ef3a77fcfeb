// The one place where nvlsched's absl::Status becomes a grpc::Status (DESIGN.md, Errors).
//
// Inside the daemon errors are absl::Status. Structured details travel as payloads:
//   - google.rpc messages (BadRequest, ResourceInfo, ErrorInfo, QuotaFailure,
//     PreconditionFailure, ...) serialized under "type.googleapis.com/google.rpc.<Name>"
//     (validation.h attaches BadRequest; ResourceNotFoundError and PermissionDeniedError below
//     attach theirs; AttachErrorDetail attaches any);
//   - the allocator's capacity shortfall and quota violation (allocator/errors.h).
// ToGrpcStatus keeps the code and the message and packs the details into google.rpc.Status
// (the grpc-status-details-bin trailer that grpcurl and every gRPC client library decode).
//
// Thread-safety: pure functions.
#ifndef NVLSCHED_DAEMON_API_STATUS_MAPPING_H_
#define NVLSCHED_DAEMON_API_STATUS_MAPPING_H_

#include <grpcpp/support/status.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/rpc/status.pb.h"

namespace nvlsched::daemon {

// ErrorInfo.domain of every ErrorInfo nvlsched sends.
inline constexpr absl::string_view kErrorDomain = "nvlsched.v1";
// ErrorInfo.reason of "not enough capacity now" (RESOURCE_EXHAUSTED).
inline constexpr absl::string_view kInsufficientCapacityReason = "INSUFFICIENT_CAPACITY";
// Prefix of the payload type URLs that ToGrpcStatus copies verbatim into the details.
inline constexpr absl::string_view kGoogleRpcTypeUrlPrefix = "type.googleapis.com/google.rpc.";

// ResourceInfo.resource_type values.
inline constexpr absl::string_view kInstanceResource = "nvlsched.v1.Instance";
inline constexpr absl::string_view kInstanceTypeResource = "nvlsched.v1.InstanceType";
inline constexpr absl::string_view kTenantResource = "nvlsched.v1.Tenant";
inline constexpr absl::string_view kMachineResource = "nvlsched.v1.Machine";
inline constexpr absl::string_view kDomainResource = "nvlsched.v1.Domain";

// Maps `status` to gRPC: same code (unknown codes become UNKNOWN), same message, and
// google.rpc.Status details holding, as Any:
//   - every payload whose type URL starts with kGoogleRpcTypeUrlPrefix, bytes unchanged;
//   - the allocator's capacity shortfall as ErrorInfo{reason INSUFFICIENT_CAPACITY, domain
//     nvlsched.v1, metadata requested, largest_domain_free, total_free, unit,
//     instance_type_id};
//   - the allocator's quota violation as QuotaFailure{subject
//     "tenant:<id>/instance_type:<id>", description with limit, in use and requested}.
// Other payloads are dropped. OK maps to grpc::Status::OK. No details: no trailer.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The reverse, for clients and tests: code, message, and every detail as a payload under its
// type URL (so GetErrorDetail below reads it back).
absl::Status FromGrpcStatus(const grpc::Status& status);

// Attaches `detail` (a google.rpc message, or any message) to `status` under
// "type.googleapis.com/<full name>". No effect on an OK status.
void AttachErrorDetail(absl::Status& status, const google::protobuf::Message& detail);

// NOT_FOUND with `description` as the message and ResourceInfo{resource_type, resource_name,
// description} attached, e.g. ResourceNotFoundError(kInstanceTypeResource, id,
// "instance type 41e3... does not exist: list them with ListInstanceTypes").
absl::Status ResourceNotFoundError(absl::string_view resource_type, absl::string_view resource_name,
                                   absl::string_view description);

// PERMISSION_DENIED with `message` and ErrorInfo{reason, domain nvlsched.v1} attached;
// `reason` is UPPER_SNAKE_CASE, e.g. "TENANT_OF_OTHER_ORG" or "ROLE_MISSING".
absl::Status PermissionDeniedError(absl::string_view reason, absl::string_view message);

// Reads the detail of type T (e.g. google::rpc::BadRequest) from the google.rpc.Status in
// a grpc::Status, or from the payloads of an absl::Status. The first one if several;
// nullopt when there is none or it does not parse.
template <typename T>
std::optional<T> GetErrorDetail(const grpc::Status& status);
template <typename T>
std::optional<T> GetErrorDetail(const absl::Status& status);

// The google.rpc.Status of `status` (code, message, details); nullopt when it carries no
// details or they do not parse.
std::optional<google::rpc::Status> GetRpcStatus(const grpc::Status& status);

// ---- implementation of the templates ----

template <typename T>
std::optional<T> GetErrorDetail(const grpc::Status& status) {
  std::optional<google::rpc::Status> rpc_status = GetRpcStatus(status);
  if (!rpc_status.has_value()) return std::nullopt;
  for (const google::protobuf::Any& any : rpc_status->details()) {
    T detail;
    if (any.Is<T>() && any.UnpackTo(&detail)) return detail;
  }
  return std::nullopt;
}

template <typename T>
std::optional<T> GetErrorDetail(const absl::Status& status) {
  const std::string url = "type.googleapis.com/" + T::descriptor()->full_name();
  absl::optional<absl::Cord> payload = status.GetPayload(url);
  if (!payload.has_value()) return std::nullopt;
  T detail;
  if (!detail.ParseFromString(std::string(*payload))) return std::nullopt;
  return detail;
}

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_API_STATUS_MAPPING_H_
