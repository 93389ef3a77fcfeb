// InstanceService over gRPC: idempotency by request_id. A retry with the same body gets the
// first answer (same ids, same batch) and takes nothing more, also after a restart; the same
// request_id with another body is ALREADY_EXISTS (instance_errors_test.cc).
#include <google/protobuf/util/message_differencer.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::SizeIs;

using InstanceIdempotencyTest = InstanceServiceTest;

TEST_F(InstanceIdempotencyTest, BatchRetriedWithSameRequestIdGetsTheFirstAnswerEvenAfterRestart) {
  v1::BatchCreateInstancesRequest req = Batch(3);
  req.set_request_id("retry-batch-1");
  const v1::BatchCreateInstancesResponse first = MustBatchCreate(req);
  ASSERT_THAT(first.instances(), SizeIs(3));
  const v1::BatchCreateInstancesResponse second = MustBatchCreate(req);
  EXPECT_TRUE(MessageDifferencer::Equals(first, second)) << second.DebugString();
  EXPECT_EQ(TotalFree(), 12 - 3);
  EXPECT_THAT(ListAll(), SizeIs(3));

  Restart();
  const v1::BatchCreateInstancesResponse third = MustBatchCreate(req);
  EXPECT_TRUE(MessageDifferencer::Equals(first, third)) << third.DebugString();
  EXPECT_EQ(TotalFree(), 12 - 3);
  EXPECT_EQ(Sorted(IdsOf(ListAll())), Sorted(IdsOf(first.instances())));

  // validate_only is not part of the body: a dry retry gets the same answer, takes nothing.
  req.set_validate_only(true);
  const v1::BatchCreateInstancesResponse dry = MustBatchCreate(req);
  EXPECT_TRUE(MessageDifferencer::Equals(first, dry)) << dry.DebugString();
  EXPECT_EQ(TotalFree(), 12 - 3);
}

TEST_F(InstanceIdempotencyTest, SingleRetriedWithSameRequestIdGetsTheSameInstance) {
  v1::CreateInstanceRequest req = Single("once", 2);
  req.set_request_id("retry-single-1");
  const v1::Instance first = MustCreate(req);
  v1::Instance second;
  grpc::Status status = Create(req, &second);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_TRUE(MessageDifferencer::Equals(first, second)) << second.DebugString();
  EXPECT_THAT(ListAll(), SizeIs(1));

  Restart();
  v1::Instance third;
  status = Create(req, &third);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_TRUE(MessageDifferencer::Equals(first, third)) << third.DebugString();
  EXPECT_THAT(ListAll(), SizeIs(1));
}

TEST_F(InstanceIdempotencyTest, FailedRequestIsNotRememberedSoItsRetryCanSucceed) {
  const v1::BatchCreateInstancesResponse filler = MustBatchCreate(CrossDomainBatch(11));
  v1::BatchCreateInstancesRequest req = Batch(2);
  req.set_request_id("retry-after-capacity");
  v1::BatchCreateInstancesResponse resp;
  EXPECT_EQ(BatchCreate(req, &resp).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  std::vector<std::string> ids = IdsOf(filler.instances());
  ASSERT_TRUE(BatchDelete(ids).ok());
  const v1::BatchCreateInstancesResponse later = MustBatchCreate(req);
  EXPECT_THAT(later.instances(), SizeIs(2));
  EXPECT_EQ(TotalFree(), 12 - 2);
}

TEST_F(InstanceIdempotencyTest, RequestIdsArePerTenant) {
  ASSERT_TRUE(UpsertTenant(TenantWithQuota(kSecondTenantId, f::kOrg, 12)).ok());
  v1::BatchCreateInstancesRequest req = Batch(2);
  req.set_request_id("shared-id");
  const v1::BatchCreateInstancesResponse first = MustBatchCreate(req);
  req.set_tenant_id(kSecondTenantId);
  const v1::BatchCreateInstancesResponse second = MustBatchCreate(req);
  EXPECT_NE(second.batch_id(), first.batch_id());
  EXPECT_EQ(TotalFree(), 12 - 4);
}

}  // namespace
}  // namespace nvlsched::daemon::testing
