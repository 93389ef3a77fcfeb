// ToGrpcStatus: codes and messages survive, google.rpc payloads and the allocator's capacity
// and quota payloads become google.rpc.Status details that parse back.
#include "daemon/api/status_mapping.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/cord.h"
#include "allocator/errors.h"
#include "daemon/api/validation.h"
#include "google/rpc/error_details.pb.h"

namespace nvlsched::daemon {
namespace {

using google::rpc::BadRequest;
using google::rpc::ErrorInfo;
using google::rpc::PreconditionFailure;
using google::rpc::QuotaFailure;
using google::rpc::ResourceInfo;

constexpr char kTenant[] = "30000000-0000-4000-8000-000000000001";
constexpr char kType[] = "20000000-0000-4000-8000-000000000001";

TEST(StatusMappingTest, OkIsOk) {
  const grpc::Status status = ToGrpcStatus(absl::OkStatus());
  EXPECT_TRUE(status.ok());
  EXPECT_TRUE(status.error_details().empty());
}

TEST(StatusMappingTest, EveryCodeAndTheMessageSurvive) {
  for (int code = 1; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), "what went wrong");
    const grpc::Status mapped = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(mapped.error_code()), code);
    EXPECT_EQ(mapped.error_message(), "what went wrong");
    EXPECT_TRUE(mapped.error_details().empty()) << "no payload, no trailer";
  }
  EXPECT_EQ(ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(99), "odd")).error_code(),
            grpc::StatusCode::UNKNOWN);
}

TEST(StatusMappingTest, ValidationBadRequestBecomesADetail) {
  nvlsched::v1::GetInstanceRequest request;
  request.set_id("not-a-uuid");
  const absl::Status invalid = ValidateGetInstanceRequest(request);
  const grpc::Status mapped = ToGrpcStatus(invalid);
  EXPECT_EQ(mapped.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(mapped.error_message(), std::string(invalid.message()));

  std::optional<google::rpc::Status> rpc_status = GetRpcStatus(mapped);
  ASSERT_TRUE(rpc_status.has_value());
  EXPECT_EQ(rpc_status->code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(rpc_status->message(), mapped.error_message());
  ASSERT_EQ(rpc_status->details_size(), 1);
  EXPECT_EQ(rpc_status->details(0).type_url(), "type.googleapis.com/google.rpc.BadRequest");

  std::optional<BadRequest> bad = GetErrorDetail<BadRequest>(mapped);
  ASSERT_TRUE(bad.has_value());
  ASSERT_EQ(bad->field_violations_size(), 2);
  EXPECT_EQ(bad->field_violations(0).field(), "org");
  EXPECT_EQ(bad->field_violations(1).field(), "id");
  EXPECT_NE(bad->field_violations(1).description().find("id must be a UUID"), std::string::npos);
  EXPECT_FALSE(GetErrorDetail<ErrorInfo>(mapped).has_value());
}

TEST(StatusMappingTest, ResourceNotFoundCarriesResourceInfo) {
  const absl::Status status =
      ResourceNotFoundError(kInstanceTypeResource, kType,
                            "instance type 20000000-... does not exist: see ListInstanceTypes");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  const grpc::Status mapped = ToGrpcStatus(status);
  EXPECT_EQ(mapped.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(mapped.error_message(),
            "instance type 20000000-... does not exist: see ListInstanceTypes");
  std::optional<ResourceInfo> info = GetErrorDetail<ResourceInfo>(mapped);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->resource_type(), "nvlsched.v1.InstanceType");
  EXPECT_EQ(info->resource_name(), kType);
  EXPECT_EQ(info->description(), mapped.error_message());
}

TEST(StatusMappingTest, PermissionDeniedCarriesErrorInfo) {
  const grpc::Status mapped = ToGrpcStatus(
      PermissionDeniedError("TENANT_OF_OTHER_ORG", "tenant 3000... belongs to another org"));
  EXPECT_EQ(mapped.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  std::optional<ErrorInfo> info = GetErrorDetail<ErrorInfo>(mapped);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "TENANT_OF_OTHER_ORG");
  EXPECT_EQ(info->domain(), "nvlsched.v1");
}

TEST(StatusMappingTest, CapacityShortfallBecomesErrorInfo) {
  allocator::CapacityShortfall shortfall;
  shortfall.instance_type_id = kType;
  shortfall.unit = allocator::CapacityUnit::kMachines;
  shortfall.requested = 18;
  shortfall.largest_domain_free = 11;
  shortfall.total_free = 40;
  const grpc::Status mapped = ToGrpcStatus(allocator::CapacityExhaustedError(
      "no NVLink domain has 18 free machines (the most free is 11)", shortfall));
  EXPECT_EQ(mapped.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(mapped.error_message(), "no NVLink domain has 18 free machines (the most free is 11)");
  std::optional<ErrorInfo> info = GetErrorDetail<ErrorInfo>(mapped);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "INSUFFICIENT_CAPACITY");
  EXPECT_EQ(info->domain(), "nvlsched.v1");
  EXPECT_EQ(info->metadata().at("requested"), "18");
  EXPECT_EQ(info->metadata().at("largest_domain_free"), "11");
  EXPECT_EQ(info->metadata().at("total_free"), "40");
  EXPECT_EQ(info->metadata().at("unit"), "machines");
  EXPECT_EQ(info->metadata().at("instance_type_id"), kType);
  EXPECT_FALSE(GetErrorDetail<QuotaFailure>(mapped).has_value());
  // The allocator's private payload itself is not leaked to clients.
  ASSERT_TRUE(GetRpcStatus(mapped).has_value());
  EXPECT_EQ(GetRpcStatus(mapped)->details_size(), 1);
}

TEST(StatusMappingTest, QuotaViolationBecomesQuotaFailure) {
  allocator::QuotaViolation quota;
  quota.tenant_id = kTenant;
  quota.instance_type_id = kType;
  quota.max_machines = 72;
  quota.limit_gpus = 288;
  quota.in_use_gpus = 280;
  quota.requested_gpus = 16;
  const grpc::Status mapped = ToGrpcStatus(allocator::QuotaExceededError("quota exceeded", quota));
  EXPECT_EQ(mapped.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  std::optional<QuotaFailure> failure = GetErrorDetail<QuotaFailure>(mapped);
  ASSERT_TRUE(failure.has_value());
  ASSERT_EQ(failure->violations_size(), 1);
  EXPECT_EQ(failure->violations(0).subject(),
            "tenant:30000000-0000-4000-8000-000000000001/"
            "instance_type:20000000-0000-4000-8000-000000000001");
  const std::string& description = failure->violations(0).description();
  for (const char* part :
       {"quota of 72 machines (288 GPUs)", "280 GPUs in use", "16 requested", "8 over the limit"}) {
    EXPECT_NE(description.find(part), std::string::npos) << part << " in " << description;
  }
  EXPECT_FALSE(GetErrorDetail<ErrorInfo>(mapped).has_value());
}

TEST(StatusMappingTest, SeveralDetailsSurviveAndForeignPayloadsAreDropped) {
  absl::Status status = absl::FailedPreconditionError("machine is held");
  PreconditionFailure precondition;
  auto* violation = precondition.add_violations();
  violation->set_type("HELD");
  violation->set_subject("machine:50000000-0000-4000-8000-000000001000");
  violation->set_description("release its instances first");
  AttachErrorDetail(status, precondition);
  ResourceInfo resource;
  resource.set_resource_type(std::string(kMachineResource));
  AttachErrorDetail(status, resource);
  status.SetPayload("type.example.com/private.Thing", absl::Cord("secret"));

  const grpc::Status mapped = ToGrpcStatus(status);
  ASSERT_TRUE(GetRpcStatus(mapped).has_value());
  EXPECT_EQ(GetRpcStatus(mapped)->details_size(), 2);
  ASSERT_TRUE(GetErrorDetail<PreconditionFailure>(mapped).has_value());
  EXPECT_EQ(GetErrorDetail<PreconditionFailure>(mapped)->violations(0).type(), "HELD");
  EXPECT_EQ(GetErrorDetail<ResourceInfo>(mapped)->resource_type(), "nvlsched.v1.Machine");

  absl::Status foreign_only = absl::InternalError("bug");
  foreign_only.SetPayload("type.example.com/private.Thing", absl::Cord("secret"));
  EXPECT_TRUE(ToGrpcStatus(foreign_only).error_details().empty());
}

TEST(StatusMappingTest, FromGrpcStatusReversesTheMapping) {
  nvlsched::v1::DeleteInstanceRequest request;
  const absl::Status original = ValidateDeleteInstanceRequest(request);
  const absl::Status back = FromGrpcStatus(ToGrpcStatus(original));
  EXPECT_EQ(back.code(), original.code());
  EXPECT_EQ(back.message(), original.message());
  std::optional<BadRequest> before = GetErrorDetail<BadRequest>(original);
  std::optional<BadRequest> after = GetErrorDetail<BadRequest>(back);
  ASSERT_TRUE(before.has_value() && after.has_value());
  EXPECT_EQ(before->SerializeAsString(), after->SerializeAsString());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "store failed")),
            absl::UnavailableError("store failed"));
}

}  // namespace
}  // namespace nvlsched::daemon
