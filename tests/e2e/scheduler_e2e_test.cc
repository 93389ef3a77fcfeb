// End-to-end: the scheduler's queue in the real build/bin/nvlschedd survives kill -9 — the
// same requests, in the same order, with the same reservations — and is served from where it
// was: the queued batch lands whole in the domain that frees up. Metrics show the queue.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"
#include "nvlsched/v1/inventory_service.grpc.pb.h"
#include "nvlsched/v1/scheduler_service.grpc.pb.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/demo_requests.h"

namespace nvlsched {
namespace {

namespace v1 = ::nvlsched::v1;

// The demo fleet's fixed ids (daemon/api/fleet.h): 8 domains x 18 machines.
constexpr char kDemoTenant[] = "30000000-0000-4000-8000-000000000001";
constexpr char kFillerTenant[] = "30000000-0000-4000-8000-0000000000f1";
const std::string kType(daemon::kDemoInstanceTypeId);

std::unique_ptr<grpc::ClientContext> Ctx() { return testing::CallContext(); }

v1::BatchCreateInstancesRequest Batch(const std::string& tenant, int count) {
  return testing::DemoBatch("job", count, tenant);
}

class SchedulerE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/scheduler_e2e.", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Connect(const testing::DaemonProcess& daemon) {
    auto channel = grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials());
    instances_ = v1::InstanceService::NewStub(channel);
    inventory_ = v1::InventoryService::NewStub(channel);
    scheduler_ = v1::SchedulerService::NewStub(channel);
  }

  v1::ListQueueResponse ListQueue() {
    v1::ListQueueRequest req;
    req.set_org("demo");
    v1::ListQueueResponse resp;
    grpc::Status status = scheduler_->ListQueue(Ctx().get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  std::string dir_;
  std::unique_ptr<v1::InstanceService::Stub> instances_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
  std::unique_ptr<v1::SchedulerService::Stub> scheduler_;
};

TEST_F(SchedulerE2eTest, TheQueueSurvivesKillNineAndIsServedAfterIt) {
  const std::string db = absl::StrCat("--db=", dir_, "/nvlsched.db");
  testing::DaemonProcess daemon(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(daemon.Start({db, "--seed_fleet=demo", "--metrics_listen=", "--require_cleaning=false"}).ok());
  Connect(daemon);

  // A second tenant of the org fills every domain.
  v1::UpsertTenantRequest tenant;
  tenant.mutable_tenant()->set_id(kFillerTenant);
  tenant.mutable_tenant()->set_org("demo");
  tenant.mutable_tenant()->set_name("filler");
  v1::Quota* quota = tenant.mutable_tenant()->add_quotas();
  quota->set_instance_type_id(kType);
  quota->set_max_machines(144);
  v1::Tenant ignored;
  ASSERT_TRUE(inventory_->UpsertTenant(Ctx().get(), tenant, &ignored).ok());
  std::vector<v1::BatchCreateInstancesResponse> fillers;
  for (int d = 0; d < 8; ++d) {
    v1::BatchCreateInstancesResponse resp;
    grpc::Status status = instances_->BatchCreateInstances(Ctx().get(), Batch(kFillerTenant, 18), &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    fillers.push_back(resp);
  }

  // Two waiting requests: a strict batch of 18 and a batch of 4.
  v1::BatchCreateInstancesRequest big = Batch(kDemoTenant, 18);
  big.mutable_queue_timeout()->set_seconds(3600);
  v1::BatchCreateInstancesResponse queued_big;
  ASSERT_TRUE(instances_->BatchCreateInstances(Ctx().get(), big, &queued_big).ok());
  ASSERT_TRUE(queued_big.queued());
  v1::BatchCreateInstancesRequest small = Batch(kDemoTenant, 4);
  small.mutable_queue_timeout()->set_seconds(3600);
  v1::BatchCreateInstancesResponse queued_small;
  ASSERT_TRUE(instances_->BatchCreateInstances(Ctx().get(), small, &queued_small).ok());
  EXPECT_EQ(queued_small.queue_position(), 2);
  const v1::ListQueueResponse before = ListQueue();
  ASSERT_EQ(before.entries_size(), 2);

  absl::StatusOr<int> code = daemon.StopWith(SIGKILL);
  ASSERT_TRUE(code.ok()) << code.status();
  testing::DaemonProcess again(NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(again.Start({db, "--metrics_listen=", "--require_cleaning=false"}).ok());
  Connect(again);

  const v1::ListQueueResponse after = ListQueue();
  ASSERT_EQ(after.entries_size(), before.entries_size()) << again.Log();
  for (int i = 0; i < after.entries_size(); ++i) {
    EXPECT_EQ(after.entries(i).position(), before.entries(i).position());
    EXPECT_EQ(after.entries(i).batch_id(), before.entries(i).batch_id());
    EXPECT_EQ(after.entries(i).count(), before.entries(i).count());
    EXPECT_THAT(after.entries(i).instance_ids(),
                ::testing::ElementsAreArray(before.entries(i).instance_ids()));
    EXPECT_THAT(after.entries(i).reserved_domain_ids(),
                ::testing::ElementsAreArray(before.entries(i).reserved_domain_ids()));
  }

  // The filler batch of domain 5 goes: the big batch (first in order) takes all 18 there.
  const std::string freed_domain = fillers[5].nvlink_domain_id();
  v1::BatchDeleteInstancesRequest del;
  del.set_org("demo");
  for (const v1::Instance& i : fillers[5].instances()) del.add_ids(i.id());
  v1::BatchDeleteInstancesResponse deleted;
  ASSERT_TRUE(instances_->BatchDeleteInstances(Ctx().get(), del, &deleted).ok());
  for (const v1::Instance& i : queued_big.instances()) {
    v1::GetInstanceRequest get;
    get.set_org("demo");
    get.set_id(i.id());
    v1::Instance now;
    ASSERT_TRUE(instances_->GetInstance(Ctx().get(), get, &now).ok());
    EXPECT_EQ(now.status(), v1::INSTANCE_STATUS_PENDING);
    EXPECT_EQ(now.nvlink_domain_id(), freed_domain);
  }
  const v1::ListQueueResponse left = ListQueue();
  ASSERT_EQ(left.entries_size(), 1);
  EXPECT_EQ(left.entries(0).batch_id(), queued_small.batch_id());
  ASSERT_TRUE(again.StopWith(SIGTERM).ok());
}

}  // namespace
}  // namespace nvlsched
