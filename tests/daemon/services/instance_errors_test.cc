// InstanceService over gRPC: every row of DESIGN.md's Errors table that the instance calls
// can produce, each with its code, a substring of its message and its google.rpc detail, and
// each leaving the fleet as it was.
#include <string>
#include <vector>

#include "daemon/api/status_mapping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

class InstanceErrorTest : public InstanceServiceTest {
 protected:
  // NOT_FOUND with ResourceInfo{resource_type, resource_name}.
  static void ExpectNotFound(const grpc::Status& status, absl::string_view resource_type_view,
                             const std::string& name, const std::string& substring) {
    const std::string resource_type(resource_type_view);
    EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::NOT_FOUND, substring));
    const RpcDetails details = DetailsOf(status);
    ASSERT_TRUE(details.resource_info.has_value()) << status.error_message();
    EXPECT_EQ(details.resource_info->resource_type(), resource_type);
    EXPECT_EQ(details.resource_info->resource_name(), name);
  }
  void ExpectNothingTaken() {
    EXPECT_EQ(FreeByDomain(), (std::vector<int>{4, 4, 4}));
    EXPECT_THAT(ListAll(), IsEmpty());
  }
};

TEST_F(InstanceErrorTest, SeveralBadFieldsGiveOneViolationEach) {
  v1::BatchCreateInstancesRequest req = Batch(1);
  req.set_name_prefix("");
  req.set_tenant_id("not-a-uuid");
  req.clear_interfaces();
  v1::BatchCreateInstancesResponse ignored;
  const grpc::Status status = BatchCreate(req, &ignored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT,
                         "count must be between 2 and 18, got 1"));
  const RpcDetails details = DetailsOf(status);
  ASSERT_TRUE(details.bad_request.has_value());
  EXPECT_THAT(ViolationFields(*details.bad_request),
              UnorderedElementsAre("name_prefix", "count", "tenant_id", "interfaces"));

  v1::CreateInstanceRequest single = Single("x");  // too short
  single.set_gpu_count(0);
  single.set_instance_type_id("");
  v1::Instance ignored_instance;
  const grpc::Status single_status = Create(single, &ignored_instance);
  EXPECT_TRUE(IsRpcError(single_status, grpc::StatusCode::INVALID_ARGUMENT, "gpu_count"));
  ASSERT_TRUE(DetailsOf(single_status).bad_request.has_value());
  EXPECT_THAT(ViolationFields(*DetailsOf(single_status).bad_request),
              UnorderedElementsAre("name", "gpu_count", "instance_type_id"));
  ExpectNothingTaken();
}

TEST_F(InstanceErrorTest, DeviceInstanceMustBeBelowTheTypesGpuCount) {
  v1::BatchCreateInstancesRequest req = Batch(2);
  v1::NVLinkInterfaceCreateRequest* nv = req.add_nv_link_interfaces();
  nv->set_nv_link_logical_partition_id(TestUuid(77));
  nv->set_device_instance(f::kGpusPerMachine);  // GPUs are 0..3
  v1::BatchCreateInstancesResponse ignored;
  const grpc::Status status = BatchCreate(req, &ignored);
  // The same rule and words as validation with the type known (api/validation.h).
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT,
                         "invalid BatchCreateInstancesRequest: nv_link_interfaces[0]."
                         "device_instance must be between 0 and 3 (the instance type has 4 GPUs "
                         "per machine), got 4"));
  ASSERT_TRUE(DetailsOf(status).bad_request.has_value());
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request),
              ElementsAre("nv_link_interfaces[0].device_instance"));

  v1::CreateInstanceRequest single = Single("whole");
  *single.add_nv_link_interfaces() = *nv;
  v1::Instance ignored_instance;
  const grpc::Status single_status = Create(single, &ignored_instance);
  EXPECT_TRUE(IsRpcError(single_status, grpc::StatusCode::INVALID_ARGUMENT,
                         "invalid CreateInstanceRequest: nv_link_interfaces[0].device_instance "
                         "must be between 0 and 3"));
  ASSERT_TRUE(DetailsOf(single_status).bad_request.has_value());
  EXPECT_THAT(ViolationFields(*DetailsOf(single_status).bad_request),
              ElementsAre("nv_link_interfaces[0].device_instance"));

  nv->set_device_instance(f::kGpusPerMachine - 1);
  EXPECT_EQ(MustBatchCreate(req).instances_size(), 2);
}

TEST_F(InstanceErrorTest, GpuCountAboveTheMachineIsInvalid) {
  v1::Instance ignored;
  const grpc::Status status = Create(Single("too-big", 5), &ignored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT,
                         "gpu_count must be between 1 and 4"));
  ASSERT_TRUE(DetailsOf(status).bad_request.has_value());
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("gpu_count"));
  ExpectNothingTaken();
}

TEST_F(InstanceErrorTest, UnknownTenantAndInstanceTypeAreNotFoundWithResourceInfo) {
  v1::BatchCreateInstancesRequest req = Batch(2);
  req.set_tenant_id(kUnknownUuid);
  v1::BatchCreateInstancesResponse ignored;
  ExpectNotFound(BatchCreate(req, &ignored), kTenantResource, kUnknownUuid,
                 "does not exist");

  req = Batch(2);
  req.set_instance_type_id(kUnknownUuid);
  ExpectNotFound(BatchCreate(req, &ignored), kInstanceTypeResource, kUnknownUuid,
                 "ListInstanceTypes");

  v1::CreateInstanceRequest single = Single("lost");
  single.set_tenant_id(kUnknownUuid);
  v1::Instance ignored_instance;
  ExpectNotFound(Create(single, &ignored_instance), kTenantResource, kUnknownUuid,
                 "does not exist");
  single = Single("lost");
  single.set_instance_type_id(kUnknownUuid);
  ExpectNotFound(Create(single, &ignored_instance), kInstanceTypeResource, kUnknownUuid,
                 "does not exist");
  ExpectNothingTaken();
}

TEST_F(InstanceErrorTest, UnknownInstanceIsNotFoundOnGetDeleteAndUpdate) {
  v1::Instance ignored;
  ExpectNotFound(Get(kUnknownUuid, &ignored), kInstanceResource, kUnknownUuid, kUnknownUuid);
  ExpectNotFound(Delete(kUnknownUuid), kInstanceResource, kUnknownUuid, "does not exist");
  ExpectNotFound(UpdateStatus(kUnknownUuid, v1::INSTANCE_STATUS_READY, "", &ignored),
                 kInstanceResource, kUnknownUuid, "does not exist");
}

TEST_F(InstanceErrorTest, TenantOfAnotherOrgIsPermissionDenied) {
  ASSERT_TRUE(UpsertTenant(TenantWithQuota(kOtherOrgTenantId, kOtherOrg, 12)).ok());
  v1::BatchCreateInstancesRequest req = Batch(2);
  req.set_tenant_id(kOtherOrgTenantId);  // org stays acme
  v1::BatchCreateInstancesResponse ignored;
  const grpc::Status status = BatchCreate(req, &ignored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::PERMISSION_DENIED,
                         "does not belong to org 'acme'"));
  ASSERT_TRUE(DetailsOf(status).error_info.has_value());
  EXPECT_EQ(DetailsOf(status).error_info->reason(), "TENANT_OF_OTHER_ORG");

  v1::CreateInstanceRequest single = Single("stolen");
  single.set_tenant_id(kOtherOrgTenantId);
  v1::Instance ignored_instance;
  EXPECT_TRUE(IsRpcError(Create(single, &ignored_instance), grpc::StatusCode::PERMISSION_DENIED,
                         "does not belong to org"));
  ExpectNothingTaken();
}

TEST_F(InstanceErrorTest, AnotherOrgsInstanceIsInvisible) {
  ASSERT_TRUE(UpsertTenant(TenantWithQuota(kOtherOrgTenantId, kOtherOrg, 12)).ok());
  v1::CreateInstanceRequest theirs = Single("theirs");
  theirs.set_org(kOtherOrg);
  theirs.set_tenant_id(kOtherOrgTenantId);
  const v1::Instance other = MustCreate(theirs);
  const v1::Instance mine = MustCreate(Single("mine"));

  v1::Instance got;
  ExpectNotFound(Get(other.id(), &got), kInstanceResource, other.id(), "does not exist");
  ExpectNotFound(Delete(other.id()), kInstanceResource, other.id(), "does not exist");
  ExpectNotFound(UpdateStatus(other.id(), v1::INSTANCE_STATUS_READY, "", &got),
                 kInstanceResource, other.id(), "does not exist");
  EXPECT_TRUE(IsRpcError(BatchDelete({mine.id(), other.id()}), grpc::StatusCode::NOT_FOUND,
                         other.id()));
  EXPECT_THAT(IdsOf(ListAll()), ElementsAre(mine.id()));
  // Still there for its own org, untouched.
  EXPECT_THAT(IdsOf(ListAll({}, kOtherOrg)), ElementsAre(other.id()));
  ASSERT_TRUE(Get(other.id(), &got, kOtherOrg).ok());
  EXPECT_EQ(got.status(), v1::INSTANCE_STATUS_PENDING);
  ASSERT_TRUE(Get(mine.id(), &got).ok());
  // The tenant filter does not reveal another org's instances either.
  v1::ListInstancesRequest filter;
  filter.set_tenant_id(kOtherOrgTenantId);
  EXPECT_THAT(ListAll(filter), IsEmpty());
}

TEST_F(InstanceErrorTest, FragmentedFleetIsResourceExhaustedWithCapacityNumbers) {
  // Three strict batches of 3: best fit puts each in its own domain, leaving 1 + 1 + 1 free.
  for (int i = 0; i < f::kDomains; ++i) MustBatchCreate(Batch(3));
  ASSERT_EQ(FreeByDomain(), (std::vector<int>{1, 1, 1}));

  v1::BatchCreateInstancesResponse ignored;
  const grpc::Status status = BatchCreate(Batch(2), &ignored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::RESOURCE_EXHAUSTED,
                         "needs 2 free machines in one NVLink domain"));
  const RpcDetails details = DetailsOf(status);
  ASSERT_TRUE(details.error_info.has_value()) << status.error_message();
  EXPECT_EQ(details.error_info->reason(), "INSUFFICIENT_CAPACITY");
  EXPECT_EQ(details.error_info->domain(), "nvlsched.v1");
  const auto& metadata = details.error_info->metadata();
  EXPECT_EQ(metadata.at("requested"), "2");
  EXPECT_EQ(metadata.at("largest_domain_free"), "1");
  EXPECT_EQ(metadata.at("total_free"), "3");
  EXPECT_FALSE(details.quota_failure.has_value());
  EXPECT_EQ(FreeByDomain(), (std::vector<int>{1, 1, 1}));

  // The total would do: the same batch spread over domains fits.
  EXPECT_EQ(MustBatchCreate(CrossDomainBatch(2)).instances_size(), 2);
}

TEST_F(InstanceErrorTest, QuotaExceededIsResourceExhaustedWithQuotaFailure) {
  ASSERT_TRUE(UpsertTenant(TenantWithQuota(f::kTenantId, f::kOrg, 2)).ok());
  v1::BatchCreateInstancesResponse ignored;
  const grpc::Status status = BatchCreate(Batch(3), &ignored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::RESOURCE_EXHAUSTED, "quota exceeded"));
  const RpcDetails details = DetailsOf(status);
  ASSERT_TRUE(details.quota_failure.has_value()) << status.error_message();
  ASSERT_THAT(details.quota_failure->violations(), SizeIs(1));
  EXPECT_EQ(details.quota_failure->violations(0).subject(),
            absl::StrCat("tenant:", f::kTenantId, "/instance_type:", f::kTypeId));
  EXPECT_THAT(details.quota_failure->violations(0).description(),
              HasSubstr("quota of 2 machines (8 GPUs)"));
  EXPECT_FALSE(details.error_info.has_value());
  ExpectNothingTaken();

  // Within the quota it works; one GPU more does not.
  MustBatchCreate(Batch(2));
  v1::Instance ignored_instance;
  const grpc::Status single = Create(Single("one-more", 1), &ignored_instance);
  EXPECT_TRUE(IsRpcError(single, grpc::StatusCode::RESOURCE_EXHAUSTED, "8 GPUs are in use"));
  EXPECT_TRUE(DetailsOf(single).quota_failure.has_value());
}

TEST_F(InstanceErrorTest, StrictBatchLargerThanAnyDomainIsInvalidNotExhausted) {
  v1::BatchCreateInstancesResponse ignored;
  const grpc::Status status = BatchCreate(Batch(f::kMachinesPerDomain + 1), &ignored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT, "infeasible"));
  EXPECT_THAT(status.error_message(), HasSubstr("topology_optimized=false"));
  const RpcDetails details = DetailsOf(status);
  ASSERT_TRUE(details.bad_request.has_value()) << "INVALID_ARGUMENT carries a BadRequest";
  EXPECT_THAT(ViolationFields(*details.bad_request), ElementsAre("count"));
  ExpectNothingTaken();
  EXPECT_EQ(MustBatchCreate(CrossDomainBatch(f::kMachinesPerDomain + 1)).instances_size(), 5);
}

// A single CreateInstance no fleet state could satisfy (its type has no machines) names the
// field in a BadRequest, as the batch path does (it used to come without one).
TEST_F(InstanceErrorTest, InfeasibleSingleIsInvalidWithBadRequest) {
  v1::Fleet fleet;
  v1::InstanceType* empty_type = fleet.add_instance_types();
  *empty_type = SmallFleet().instance_types(0);
  empty_type->set_id(TestUuid(4242));
  empty_type->set_name("no-machines");
  ASSERT_TRUE(ApplyFleet(fleet).ok());
  v1::CreateInstanceRequest req = Single("nowhere");
  req.set_instance_type_id(empty_type->id());
  v1::Instance ignored;
  const grpc::Status status = Create(req, &ignored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT,
                         "invalid CreateInstanceRequest: infeasible: instance type no-machines "
                         "has no machines in the fleet"));
  const RpcDetails details = DetailsOf(status);
  ASSERT_TRUE(details.bad_request.has_value()) << "INVALID_ARGUMENT carries a BadRequest";
  EXPECT_THAT(ViolationFields(*details.bad_request), ElementsAre("instance_type_id"));
  ExpectNothingTaken();
}

TEST_F(InstanceErrorTest, MaxPriceBelowTheTypesPriceIsFailedPrecondition) {
  v1::CreateInstanceRequest req = Single("cheap");
  req.set_max_price_per_hour(f::kPrice - 0.01);
  v1::Instance ignored;
  const grpc::Status status = Create(req, &ignored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::FAILED_PRECONDITION, "max_price_per_hour"));
  EXPECT_THAT(status.error_message(), HasSubstr("costs 42"));
  ExpectNothingTaken();
  req.set_max_price_per_hour(f::kPrice);
  EXPECT_EQ(MustCreate(req).name(), "cheap");
}

TEST_F(InstanceErrorTest, TakenNameIsAlreadyExists) {
  MustCreate(Single("taken"));
  v1::Instance ignored;
  EXPECT_TRUE(IsRpcError(Create(Single("taken", 1), &ignored), grpc::StatusCode::ALREADY_EXISTS,
                         "already has an instance named 'taken'"));
  EXPECT_EQ(TotalFree(), 11);
  EXPECT_THAT(ListAll(), SizeIs(1));
}

TEST_F(InstanceErrorTest, RequestIdReusedWithAnotherBodyIsAlreadyExists) {
  v1::BatchCreateInstancesRequest req = Batch(2);
  req.set_request_id("req-7");
  MustBatchCreate(req);
  req.set_count(3);
  v1::BatchCreateInstancesResponse ignored;
  EXPECT_TRUE(IsRpcError(BatchCreate(req, &ignored), grpc::StatusCode::ALREADY_EXISTS,
                         "request_id 'req-7' was already used with a different request"));
  EXPECT_EQ(TotalFree(), 10);

  v1::CreateInstanceRequest single = Single("s1");
  single.set_request_id("req-8");
  MustCreate(single);
  single.set_gpu_count(1);
  v1::Instance ignored_instance;
  EXPECT_TRUE(IsRpcError(Create(single, &ignored_instance), grpc::StatusCode::ALREADY_EXISTS,
                         "request_id 'req-8' was already used"));
  EXPECT_THAT(ListAll(), SizeIs(3));
}

}  // namespace
}  // namespace nvlsched::daemon::testing
