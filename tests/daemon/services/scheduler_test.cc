// The scheduler over gRPC (issue: gang requests that wait for capacity): queue_timeout on
// both create calls, QUEUED instances, placement from the queue when capacity frees up,
// reservations and backfill, expiry, cancellation, validate_only, the queue bound, quota held
// while queued, priority, restart, and SchedulerService/ListQueue.
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/services/scheduler_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/scheduler_service.grpc.pb.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Fills the fleet in these tests, so that the queueing tenant keeps its whole quota.
const std::string kFiller = TestUuid(77);

class SchedulerTest : public InstanceServiceTest {
 protected:
  void SetUp() override {
    InstanceServiceTest::SetUp();
    ASSERT_TRUE(UpsertTenant(TenantWithQuota(kFiller, f::kOrg, 12)).ok());
  }

  HarnessOptions Options() override {
    HarnessOptions options = InstanceServiceTest::Options();
    options.extra_services.push_back([](const ServiceDeps& deps) {
      return std::make_unique<SchedulerServiceImpl>(deps.engine, deps.access);
    });
    options.queue = queue_options_;
    return options;
  }

  v1::ListQueueResponse ListQueue(const std::string& org = f::kOrg) {
    auto stub = v1::SchedulerService::NewStub(harness().channel());
    v1::ListQueueRequest req;
    req.set_org(org);
    v1::ListQueueResponse resp;
    grpc::Status status = stub->ListQueue(Context().get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  static google::protobuf::Duration Seconds(int64_t s, int32_t nanos = 0) {
    google::protobuf::Duration d;
    d.set_seconds(s);
    d.set_nanos(nanos);
    return d;
  }
  static v1::BatchCreateInstancesRequest QueuedBatch(int count, int64_t timeout_s = 600) {
    v1::BatchCreateInstancesRequest req = Batch(count);
    *req.mutable_queue_timeout() = Seconds(timeout_s);
    return req;
  }
  static v1::CreateInstanceRequest QueuedSingle(const std::string& name, int64_t timeout_s = 600) {
    v1::CreateInstanceRequest req = Single(name);
    *req.mutable_queue_timeout() = Seconds(timeout_s);
    return req;
  }

  // Fills the small fleet with one strict batch of 4 per domain; returns them by domain index.
  std::vector<v1::BatchCreateInstancesResponse> FillWithBatches() {
    std::vector<v1::BatchCreateInstancesResponse> by_domain(f::kDomains);
    for (int i = 0; i < f::kDomains; ++i) {
      v1::BatchCreateInstancesRequest req = Batch(f::kMachinesPerDomain);
      req.set_tenant_id(kFiller);
      v1::BatchCreateInstancesResponse resp = MustBatchCreate(req);
      by_domain[static_cast<size_t>(DomainIndex(resp.nvlink_domain_id()))] = resp;
    }
    return by_domain;
  }
  static std::vector<std::string> IdsOf(const v1::BatchCreateInstancesResponse& resp) {
    std::vector<std::string> ids;
    for (const v1::Instance& i : resp.instances()) ids.push_back(i.id());
    return ids;
  }
  v1::Instance MustGet(const std::string& id) {
    v1::Instance out;
    grpc::Status status = Get(id, &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }

  allocator::GangQueue::Options queue_options_;
};

TEST_F(SchedulerTest, AQueuedStrictBatchIsPlacedInOneDomainWhenABatchIsDeleted) {
  std::vector<v1::BatchCreateInstancesResponse> batches = FillWithBatches();

  v1::BatchCreateInstancesResponse queued = MustBatchCreate(QueuedBatch(4));
  EXPECT_TRUE(queued.queued());
  EXPECT_EQ(queued.queue_position(), 1);
  EXPECT_TRUE(queued.nvlink_domain_id().empty());
  ASSERT_EQ(queued.instances_size(), 4);
  for (const v1::Instance& i : queued.instances()) {
    EXPECT_EQ(i.status(), v1::INSTANCE_STATUS_QUEUED);
    EXPECT_TRUE(i.machine_id().empty());
    EXPECT_EQ(i.batch_id(), queued.batch_id());
    EXPECT_EQ(i.queue().position(), 1);
  }
  EXPECT_EQ(MustGet(queued.instances(0).id()).queue().position(), 1);
  v1::ListQueueResponse queue = ListQueue();
  ASSERT_EQ(queue.entries_size(), 1);
  EXPECT_EQ(queue.entries(0).count(), 4);
  EXPECT_EQ(queue.entries(0).batch_id(), queued.batch_id());
  EXPECT_EQ(queue.entries(0).reserved_domain_ids_size(), 1);

  // Domain 1's batch goes: the queued batch takes exactly its machines, same ids.
  ASSERT_TRUE(BatchDelete(IdsOf(batches[1])).ok());
  std::vector<std::string> machines;
  for (const v1::Instance& i : queued.instances()) {
    v1::Instance now = MustGet(i.id());
    EXPECT_EQ(now.status(), v1::INSTANCE_STATUS_PENDING);
    EXPECT_EQ(now.nvlink_domain_id(), f::DomainId(1));
    EXPECT_EQ(now.queue().position(), 0);
    EXPECT_TRUE(now.queue().has_waited());
    EXPECT_THAT(now.status_history(now.status_history_size() - 1).message(),
                HasSubstr("placed from the queue"));
    machines.push_back(now.machine_id());
  }
  EXPECT_THAT(machines, ElementsAre(f::MachineId(1, 0), f::MachineId(1, 1), f::MachineId(1, 2),
                                    f::MachineId(1, 3)));
  EXPECT_EQ(ListQueue().entries_size(), 0);
  EXPECT_TRUE(Invariants().ok());
}

TEST_F(SchedulerTest, ABadQueueTimeoutIsInvalidArgumentNamingIt) {
  for (const google::protobuf::Duration& bad :
       {Seconds(-1), Seconds(7 * 24 * 3600 + 1), Seconds(1, -5), Seconds(0, 1000000000)}) {
    v1::BatchCreateInstancesRequest req = Batch(2);
    *req.mutable_queue_timeout() = bad;
    v1::BatchCreateInstancesResponse resp;
    grpc::Status status = BatchCreate(req, &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.DebugString();
    ASSERT_TRUE(DetailsOf(status).bad_request.has_value()) << status.error_message();
    EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("queue_timeout"));

    v1::CreateInstanceRequest single = Single("bad-timeout");
    *single.mutable_queue_timeout() = bad;
    v1::Instance out;
    status = Create(single, &out);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.DebugString();
  }
}

TEST_F(SchedulerTest, AnInfeasibleRequestIsRefusedAtOnceEvenWithAQueueTimeout) {
  v1::BatchCreateInstancesResponse resp;
  grpc::Status status = BatchCreate(QueuedBatch(f::kMachinesPerDomain + 1), &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(ListQueue().entries_size(), 0);
}

TEST_F(SchedulerTest, WithoutAQueueTimeoutNoCapacityIsStillResourceExhaustedAtOnce) {
  FillWithBatches();
  v1::BatchCreateInstancesResponse resp;
  grpc::Status status = BatchCreate(Batch(2), &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ListQueue().entries_size(), 0);
}

TEST_F(SchedulerTest, AQueuedRequestExpiresTerminatedAndReleasesItsQuota) {
  FillWithBatches();
  v1::CreateInstanceRequest req = Single("short-wait");
  *req.mutable_queue_timeout() = Seconds(0, 200 * 1000 * 1000);  // 200 ms
  v1::Instance queued = MustCreate(req);
  ASSERT_EQ(queued.status(), v1::INSTANCE_STATUS_QUEUED);
  v1::Instance now;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  do {
    absl::SleepFor(absl::Milliseconds(50));
    now = MustGet(queued.id());
  } while (now.status() == v1::INSTANCE_STATUS_QUEUED && absl::Now() < give_up);
  EXPECT_EQ(now.status(), v1::INSTANCE_STATUS_TERMINATED);
  EXPECT_THAT(now.status_history(now.status_history_size() - 1).message(),
              HasSubstr("queue_timeout of 200ms passed"));
  EXPECT_TRUE(now.machine_id().empty());
  EXPECT_EQ(ListQueue().entries_size(), 0);
  // Reporting a status for it makes no sense; deleting it drops the record.
  v1::Instance ignored;
  EXPECT_EQ(UpdateStatus(queued.id(), v1::INSTANCE_STATUS_READY, "", &ignored).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(Delete(queued.id()).ok());
  EXPECT_EQ(Get(queued.id(), &ignored).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SchedulerTest, AQueuedBatchIsCancelledWholeNeverOneMember) {
  FillWithBatches();
  v1::BatchCreateInstancesResponse queued = MustBatchCreate(QueuedBatch(3));
  grpc::Status status = Delete(queued.instances(0).id());
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::FAILED_PRECONDITION, "cancel the batch"));
  std::vector<std::string> two = {queued.instances(0).id(), queued.instances(1).id()};
  EXPECT_EQ(BatchDelete(two).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ListQueue().entries_size(), 1);
  v1::BatchDeleteInstancesResponse deleted;
  ASSERT_TRUE(BatchDelete(IdsOf(queued), &deleted).ok());
  EXPECT_EQ(deleted.instances_size(), 3);
  EXPECT_EQ(ListQueue().entries_size(), 0);
  v1::Instance ignored;
  EXPECT_EQ(Get(queued.instances(0).id(), &ignored).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SchedulerTest, ValidateOnlyAnswersTheQueuePositionAndTakesNothing) {
  FillWithBatches();
  MustBatchCreate(QueuedBatch(2));
  v1::BatchCreateInstancesRequest req = QueuedBatch(2);
  req.set_validate_only(true);
  v1::BatchCreateInstancesResponse resp = MustBatchCreate(req);
  EXPECT_TRUE(resp.queued());
  EXPECT_EQ(resp.queue_position(), 2);
  EXPECT_EQ(resp.instances_size(), 0);
  EXPECT_EQ(ListQueue().entries_size(), 1);
}

TEST_F(SchedulerTest, TheQueueIsBounded) {
  queue_options_.max_length = 2;
  Restart();
  FillWithBatches();
  MustCreate(QueuedSingle("aa"));
  MustCreate(QueuedSingle("bb"));
  v1::Instance out;
  grpc::Status status = Create(QueuedSingle("cc"), &out);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::RESOURCE_EXHAUSTED, "the queue is full"));
}

TEST_F(SchedulerTest, QuotaIsCountedWhenARequestIsQueued) {
  // The filler tenant fills the fleet; ours (quota 12 machines) may queue 12, not 13.
  FillWithBatches();
  for (int i = 0; i < 3; ++i) MustBatchCreate(QueuedBatch(4));
  v1::Instance out;
  grpc::Status status = Create(QueuedSingle("one-more"), &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(DetailsOf(status).quota_failure.has_value()) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("committed to queued requests"));
  EXPECT_EQ(ListQueue().entries_size(), 3);
}

TEST_F(SchedulerTest, AHigherPriorityTenantQueuesAheadAndIsPlacedFirst) {
  ASSERT_TRUE(UpsertTenant(TenantWithQuota(kSecondTenantId, f::kOrg, 12)).ok());
  v1::Tenant urgent = TenantWithQuota(kSecondTenantId, f::kOrg, 12);
  urgent.set_priority(5);
  std::vector<v1::BatchCreateInstancesResponse> batches = FillWithBatches();
  v1::Instance first = MustCreate(QueuedSingle("first"));
  ASSERT_TRUE(UpsertTenant(urgent).ok());
  v1::CreateInstanceRequest req = QueuedSingle("urgent");
  req.set_tenant_id(kSecondTenantId);
  v1::Instance second = MustCreate(req);
  EXPECT_EQ(second.queue().position(), 1);
  EXPECT_EQ(MustGet(first.id()).queue().position(), 2);
  // Domain 0 frees up: the urgent one is placed first (the lowest tray), then the other.
  ASSERT_TRUE(BatchDelete(IdsOf(batches[0])).ok());
  EXPECT_EQ(MustGet(second.id()).machine_id(), f::MachineId(0, 0));
  EXPECT_EQ(MustGet(first.id()).machine_id(), f::MachineId(0, 1));
}

TEST_F(SchedulerTest, TheHeadBatchReservesADomainAndSinglesBackfillElsewhere) {
  // Every machine held by a whole-machine single.
  std::vector<v1::Instance> singles;
  for (int i = 0; i < f::kDomains * f::kMachinesPerDomain; ++i) {
    v1::CreateInstanceRequest req = Single(absl::StrCat("s", i));
    req.set_tenant_id(kFiller);
    singles.push_back(MustCreate(req));
  }
  auto on = [&](int domain, int tray) {
    for (const v1::Instance& s : singles) {
      if (s.machine_id() == f::MachineId(domain, tray)) return s.id();
    }
    return std::string();
  };
  v1::BatchCreateInstancesResponse batch = MustBatchCreate(QueuedBatch(4));
  v1::Instance waiting = MustCreate(QueuedSingle("behind"));
  // Every domain has 0 free: the batch reserves the lowest index, domain 0.
  v1::ListQueueResponse queue = ListQueue();
  ASSERT_EQ(queue.entries_size(), 2);
  EXPECT_THAT(queue.entries(0).reserved_domain_ids(), ElementsAre(f::DomainId(0)));

  // A machine frees in the reserved domain: held for the batch, not given to the single.
  ASSERT_TRUE(Delete(on(0, 2)).ok());
  EXPECT_EQ(MustGet(waiting.id()).status(), v1::INSTANCE_STATUS_QUEUED);
  v1::ListDomainsResponse domains;
  ASSERT_TRUE(inventory().ListDomains(Context().get(), {}, &domains).ok());
  for (const v1::Domain& d : domains.domains()) {
    EXPECT_EQ(d.reserved_machines(), d.id() == f::DomainId(0) ? 1 : 0) << d.id();
  }
  v1::ListOffersResponse offers;
  ASSERT_TRUE(capacity().ListOffers(Context().get(), {}, &offers).ok());
  ASSERT_EQ(offers.offers_size(), 1);
  EXPECT_EQ(offers.offers(0).free_machines(), 0);  // the one free machine is held
  EXPECT_EQ(offers.offers(0).free_gpus(), 0);
  // A machine frees elsewhere: the single backfills there.
  ASSERT_TRUE(Delete(on(2, 1)).ok());
  v1::Instance placed = MustGet(waiting.id());
  EXPECT_EQ(placed.status(), v1::INSTANCE_STATUS_PENDING);
  EXPECT_EQ(placed.machine_id(), f::MachineId(2, 1));
  // The rest of domain 0 frees: the batch lands there.
  for (int tray : {0, 1, 3}) ASSERT_TRUE(Delete(on(0, tray)).ok());
  for (const v1::Instance& i : batch.instances()) {
    EXPECT_EQ(MustGet(i.id()).nvlink_domain_id(), f::DomainId(0));
  }
  EXPECT_TRUE(Invariants().ok());
}

TEST_F(SchedulerTest, RestartKeepsTheQueueItsOrderAndReservations) {
  FillWithBatches();
  v1::BatchCreateInstancesResponse big = MustBatchCreate(QueuedBatch(4));
  v1::Instance small = MustCreate(QueuedSingle("small"));
  v1::ListQueueResponse before = ListQueue();
  Restart();
  v1::ListQueueResponse after = ListQueue();
  ASSERT_EQ(after.entries_size(), before.entries_size());
  for (int i = 0; i < after.entries_size(); ++i) {
    EXPECT_EQ(after.entries(i).position(), before.entries(i).position());
    EXPECT_EQ(after.entries(i).batch_id(), before.entries(i).batch_id());
    EXPECT_THAT(after.entries(i).instance_ids(),
                ::testing::ElementsAreArray(before.entries(i).instance_ids()));
    EXPECT_THAT(after.entries(i).reserved_domain_ids(),
                ::testing::ElementsAreArray(before.entries(i).reserved_domain_ids()));
  }
  EXPECT_EQ(MustGet(small.id()).queue().position(), 2);
  // New arrivals keep queueing behind them.
  v1::Instance later = MustCreate(QueuedSingle("later"));
  EXPECT_EQ(later.queue().position(), 3);
  EXPECT_EQ(MustGet(big.instances(0).id()).status(), v1::INSTANCE_STATUS_QUEUED);
}

TEST_F(SchedulerTest, ListQueueIsScopedToTheCallersOrg) {
  FillWithBatches();
  MustCreate(QueuedSingle("mine"));
  EXPECT_EQ(ListQueue(f::kOrg).entries_size(), 1);
  EXPECT_EQ(ListQueue(kOtherOrg).entries_size(), 0);
  EXPECT_EQ(ListQueue("").entries_size(), 1);  // a provider admin (--auth=none) sees all
}

}  // namespace
}  // namespace nvlsched::daemon::testing
