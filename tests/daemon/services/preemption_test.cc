// Spot capacity and preemption over gRPC (issue: spot capacity and preemption that respects
// NVLink domains): billing_mode on both create calls, an on-demand strict batch that preempts
// exactly the fewest whole spot batches of one domain, victims TERMINATING with a Preemption and
// released at their deadline, the preemptor queued for that domain and placed there once the
// victims are gone, validate_only, what never preempts (spot, short queue_timeout) and what is
// never preempted (on-demand), a restart in the middle, offers and domains.
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

// Holds the spot capacity in these tests; the on-demand requests are the fixture tenant's.
const std::string kSpotTenant = TestUuid(88);

class PreemptionTest : public InstanceServiceTest {
 protected:
  void SetUp() override {
    InstanceServiceTest::SetUp();
    ASSERT_TRUE(UpsertTenant(TenantWithQuota(kSpotTenant, f::kOrg, 12)).ok());
  }

  HarnessOptions Options() override {
    HarnessOptions options = InstanceServiceTest::Options();
    options.preemption_grace = grace_;
    return options;
  }

  static v1::BatchCreateInstancesRequest SpotBatch(int count) {
    v1::BatchCreateInstancesRequest req = Batch(count);
    req.set_tenant_id(kSpotTenant);
    req.set_billing_mode(v1::BILLING_MODE_SPOT);
    return req;
  }
  static v1::BatchCreateInstancesRequest OnDemandBatch(int count, int64_t timeout_s = 600) {
    v1::BatchCreateInstancesRequest req = Batch(count);
    req.mutable_queue_timeout()->set_seconds(timeout_s);
    return req;
  }
  v1::Instance MustGet(const std::string& id) {
    v1::Instance out;
    grpc::Status status = Get(id, &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }
  // Fills every domain with one spot batch of 4; returns them by domain index.
  std::vector<v1::BatchCreateInstancesResponse> FillWithSpot() {
    std::vector<v1::BatchCreateInstancesResponse> by_domain(f::kDomains);
    for (int i = 0; i < f::kDomains; ++i) {
      v1::BatchCreateInstancesResponse resp = MustBatchCreate(SpotBatch(f::kMachinesPerDomain));
      by_domain[static_cast<size_t>(DomainIndex(resp.nvlink_domain_id()))] = resp;
    }
    return by_domain;
  }
  // Polls until the instance has `status` (the engine acts on its own timer), up to 10 s.
  bool WaitForStatus(const std::string& id, v1::InstanceStatus status) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (absl::Now() < give_up) {
      if (MustGet(id).status() == status) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  absl::Duration grace_ = absl::Seconds(30);
};

TEST_F(PreemptionTest, AnOnDemandBatchPreemptsExactlyOneSpotBatchAndIsPlacedWhenItIsDeleted) {
  std::vector<v1::BatchCreateInstancesResponse> spot = FillWithSpot();
  for (const auto& s : spot) {
    for (const v1::Instance& i : s.instances()) EXPECT_EQ(i.billing_mode(), v1::BILLING_MODE_SPOT);
  }

  v1::BatchCreateInstancesResponse od = MustBatchCreate(OnDemandBatch(4));
  EXPECT_TRUE(od.queued());
  const int d = DomainIndex(od.nvlink_domain_id());
  ASSERT_GE(d, 0);
  // Exactly the spot batch of that domain, whole.
  EXPECT_THAT(od.preempted_instance_ids(), UnorderedElementsAreArray(IdsOf(spot[d].instances())));
  for (const v1::Instance& i : od.instances()) {
    EXPECT_EQ(i.status(), v1::INSTANCE_STATUS_QUEUED);
    EXPECT_EQ(i.billing_mode(), v1::BILLING_MODE_ON_DEMAND);
    EXPECT_EQ(i.queue().pinned_domain_id(), od.nvlink_domain_id());
    EXPECT_EQ(i.queue().preempted_instance_ids_size(), 4);
  }
  for (int other = 0; other < f::kDomains; ++other) {
    for (const v1::Instance& i : spot[other].instances()) {
      v1::Instance now = MustGet(i.id());
      if (other != d) {
        EXPECT_EQ(now.status(), v1::INSTANCE_STATUS_PENDING);
        EXPECT_FALSE(now.has_preemption());
        continue;
      }
      EXPECT_EQ(now.status(), v1::INSTANCE_STATUS_TERMINATING);
      EXPECT_EQ(now.preemption().reason(), "PREEMPTED");
      EXPECT_EQ(now.preemption().preemptor_batch_id(), od.batch_id());
      EXPECT_EQ(now.preemption().preemption_deadline().seconds() -
                    now.preemption().preempted().seconds(),
                30);
      EXPECT_EQ(now.machine_id(), i.machine_id());  // still holds it until released
      EXPECT_THAT(now.status_history(now.status_history_size() - 1).message(),
                  HasSubstr("PREEMPTED"));
    }
  }
  ASSERT_TRUE(Invariants().ok());

  // Another on-demand request does not count on the same victims, nor take that domain.
  v1::BatchCreateInstancesResponse second = MustBatchCreate(OnDemandBatch(4));
  EXPECT_NE(second.nvlink_domain_id(), od.nvlink_domain_id());
  EXPECT_EQ(second.preempted_instance_ids_size(), 4);

  // The control plane deletes the victims: the batch lands whole on their machines.
  ASSERT_TRUE(BatchDelete(IdsOf(spot[d].instances())).ok());
  std::vector<std::string> machines;
  for (const v1::Instance& i : od.instances()) {
    v1::Instance now = MustGet(i.id());
    EXPECT_EQ(now.status(), v1::INSTANCE_STATUS_PENDING);
    EXPECT_EQ(now.nvlink_domain_id(), od.nvlink_domain_id());
    machines.push_back(now.machine_id());
  }
  EXPECT_THAT(machines, UnorderedElementsAreArray(MachinesOf(spot[d].instances())));
  EXPECT_TRUE(Invariants().ok());
}

TEST_F(PreemptionTest, TheDomainNeedingFewestSpotBatchesIsChosen) {
  // Domain of the first batch: one spot batch of 4. Next: two spot batches of 2. Last: on-demand.
  v1::BatchCreateInstancesResponse one = MustBatchCreate(SpotBatch(4));
  v1::BatchCreateInstancesResponse two_a = MustBatchCreate(SpotBatch(2));
  v1::BatchCreateInstancesResponse two_b = MustBatchCreate(SpotBatch(2));
  ASSERT_EQ(two_a.nvlink_domain_id(), two_b.nvlink_domain_id());
  ASSERT_NE(two_a.nvlink_domain_id(), one.nvlink_domain_id());
  v1::BatchCreateInstancesRequest od_fill = Batch(4);
  v1::BatchCreateInstancesResponse on_demand = MustBatchCreate(od_fill);

  v1::BatchCreateInstancesResponse od = MustBatchCreate(OnDemandBatch(4));
  EXPECT_EQ(od.nvlink_domain_id(), one.nvlink_domain_id());
  EXPECT_THAT(od.preempted_instance_ids(), UnorderedElementsAreArray(IdsOf(one.instances())));
  for (const v1::Instance& i : on_demand.instances()) {
    EXPECT_EQ(MustGet(i.id()).status(), v1::INSTANCE_STATUS_PENDING);
  }
}

TEST_F(PreemptionTest, ValidateOnlyNamesTheVictimsAndChangesNothing) {
  std::vector<v1::BatchCreateInstancesResponse> spot = FillWithSpot();
  v1::BatchCreateInstancesRequest req = OnDemandBatch(4);
  req.set_validate_only(true);
  v1::BatchCreateInstancesResponse preview = MustBatchCreate(req);
  EXPECT_TRUE(preview.queued());
  EXPECT_EQ(preview.preempted_instance_ids_size(), 4);
  EXPECT_TRUE(preview.batch_id().empty());
  for (const auto& s : spot) {
    for (const v1::Instance& i : s.instances()) {
      EXPECT_EQ(MustGet(i.id()).status(), v1::INSTANCE_STATUS_PENDING);
    }
  }
  // The real request preempts what the preview named.
  v1::BatchCreateInstancesResponse od = MustBatchCreate(OnDemandBatch(4));
  EXPECT_THAT(od.preempted_instance_ids(),
              UnorderedElementsAreArray(preview.preempted_instance_ids()));

  // The same for a single.
  v1::CreateInstanceRequest single = Single("od-single");
  single.mutable_queue_timeout()->set_seconds(600);
  single.set_validate_only(true);
  v1::Instance preview_single;
  ASSERT_TRUE(Create(single, &preview_single).ok());
  EXPECT_EQ(preview_single.status(), v1::INSTANCE_STATUS_QUEUED);
  EXPECT_EQ(preview_single.queue().preempted_instance_ids_size(), 4);
  EXPECT_FALSE(preview_single.queue().pinned_domain_id().empty());
}

TEST_F(PreemptionTest, SpotNeverPreemptsAndOnDemandIsNeverPreempted) {
  std::vector<v1::BatchCreateInstancesResponse> spot = FillWithSpot();
  // A spot request (of a tenant with quota left) queues like any other.
  v1::BatchCreateInstancesRequest spot_req = OnDemandBatch(4);
  spot_req.set_billing_mode(v1::BILLING_MODE_SPOT);
  v1::BatchCreateInstancesResponse queued = MustBatchCreate(spot_req);
  EXPECT_TRUE(queued.queued());
  EXPECT_EQ(queued.preempted_instance_ids_size(), 0);

  // Delete the spot batches and fill with on-demand: nothing can be preempted.
  ASSERT_TRUE(BatchDelete(IdsOf(queued.instances())).ok());
  for (const auto& s : spot) ASSERT_TRUE(BatchDelete(IdsOf(s.instances())).ok());
  for (int i = 0; i < f::kDomains; ++i) MustBatchCreate(Batch(f::kMachinesPerDomain));
  v1::BatchCreateInstancesRequest od_req = OnDemandBatch(4);
  od_req.set_tenant_id(kSpotTenant);
  v1::BatchCreateInstancesResponse od = MustBatchCreate(od_req);
  EXPECT_TRUE(od.queued());
  EXPECT_EQ(od.preempted_instance_ids_size(), 0);
  EXPECT_TRUE(od.instances(0).queue().pinned_domain_id().empty());
}

TEST_F(PreemptionTest, AQueueTimeoutNoLongerThanTheGraceDoesNotPreempt) {
  FillWithSpot();
  v1::BatchCreateInstancesResponse od = MustBatchCreate(OnDemandBatch(4, /*timeout_s=*/30));
  EXPECT_TRUE(od.queued());
  EXPECT_EQ(od.preempted_instance_ids_size(), 0);
  // Without a queue_timeout the answer is immediate: RESOURCE_EXHAUSTED, nothing preempted.
  v1::BatchCreateInstancesResponse ignored;
  EXPECT_EQ(BatchCreate(Batch(4), &ignored).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(PreemptionTest, APreemptedInstanceOnlyGoesToTerminatingOrError) {
  std::vector<v1::BatchCreateInstancesResponse> spot = FillWithSpot();
  v1::BatchCreateInstancesResponse od = MustBatchCreate(OnDemandBatch(4));
  const std::string victim = od.preempted_instance_ids(0);
  v1::Instance out;
  grpc::Status status = UpdateStatus(victim, v1::INSTANCE_STATUS_READY, "", &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("preempted"));
  EXPECT_TRUE(UpdateStatus(victim, v1::INSTANCE_STATUS_ERROR, "", &out).ok());
  // Nor is it moved to another machine of the domain its preemptor waits for.
  v1::ReplaceInstanceRequest replace;
  replace.set_org(f::kOrg);
  replace.set_id(victim);
  status = instances().ReplaceInstance(Context().get(), replace, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("preempted"));
}

TEST_F(PreemptionTest, BillingModeIsCheckedAndSpotNeedsASpotPrice) {
  v1::BatchCreateInstancesRequest bad = Batch(2);
  bad.set_billing_mode(static_cast<v1::BillingMode>(7));
  v1::BatchCreateInstancesResponse ignored;
  grpc::Status status = BatchCreate(bad, &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("billing_mode"));

  // The type stops being sold as spot (the fleet again, with no spot price).
  v1::ApplyFleetRequest fleet_req;
  *fleet_req.mutable_fleet() = SmallFleet();
  fleet_req.mutable_fleet()->mutable_instance_types(0)->clear_spot_hourly_price();
  v1::ApplyFleetResponse applied;
  grpc::Status applied_status = inventory().ApplyFleet(Context().get(), fleet_req, &applied);
  ASSERT_TRUE(applied_status.ok()) << applied_status.error_message();
  status = BatchCreate(SpotBatch(2), &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("not sold as spot"));
}

TEST_F(PreemptionTest, OffersAndDomainsShowSpotCapacity) {
  MustBatchCreate(SpotBatch(4));
  MustBatchCreate(Batch(2));
  v1::ListOffersResponse offers;
  ASSERT_TRUE(capacity().ListOffers(Context().get(), {}, &offers).ok());
  ASSERT_EQ(offers.offers_size(), 1);
  EXPECT_EQ(offers.offers(0).spot_hourly_price(), f::kSpotPrice);
  EXPECT_EQ(offers.offers(0).spot_machines(), 4);
  EXPECT_EQ(offers.offers(0).free_machines(), 6);
  EXPECT_EQ(offers.offers(0).on_demand_available_machines(), 10);
  v1::ListDomainsResponse domains;
  ASSERT_TRUE(inventory().ListDomains(Context().get(), {}, &domains).ok());
  int spot = 0;
  for (const v1::Domain& d : domains.domains()) spot += d.spot_machines();
  EXPECT_EQ(spot, 4);
}

TEST_F(PreemptionTest, APreemptorWhoseDomainIsDegradedMeanwhileIsPlacedElsewhere) {
  std::vector<v1::BatchCreateInstancesResponse> spot = FillWithSpot();
  v1::BatchCreateInstancesResponse od = MustBatchCreate(OnDemandBatch(4));
  const int d = DomainIndex(od.nvlink_domain_id());
  v1::SetDomainStateRequest degrade;
  degrade.set_domain_id(od.nvlink_domain_id());
  degrade.set_state(v1::DOMAIN_STATE_DEGRADED);
  v1::Domain domain;
  ASSERT_TRUE(inventory().SetDomainState(Context().get(), degrade, &domain).ok());
  // Another domain frees up: the batch is no longer held to its degraded domain.
  const int other = (d + 1) % f::kDomains;
  ASSERT_TRUE(BatchDelete(IdsOf(spot[other].instances())).ok());
  v1::Instance now = MustGet(od.instances(0).id());
  EXPECT_EQ(now.status(), v1::INSTANCE_STATUS_PENDING);
  EXPECT_EQ(now.nvlink_domain_id(), f::DomainId(other));
  EXPECT_TRUE(Invariants().ok());
}

class PreemptionDeadlineTest : public PreemptionTest {
 protected:
  PreemptionDeadlineTest() { grace_ = absl::Seconds(1); }
};

TEST_F(PreemptionDeadlineTest, VictimsNotDeletedByTheirDeadlineAreReleasedByNvlsched) {
  std::vector<v1::BatchCreateInstancesResponse> spot = FillWithSpot();
  v1::BatchCreateInstancesResponse od = MustBatchCreate(OnDemandBatch(4));
  ASSERT_EQ(od.preempted_instance_ids_size(), 4);
  // Nobody deletes them: after the 1 s grace nvlsched releases them and places the batch.
  ASSERT_TRUE(WaitForStatus(od.instances(0).id(), v1::INSTANCE_STATUS_PENDING));
  for (const std::string& id : od.preempted_instance_ids()) {
    v1::Instance victim = MustGet(id);
    EXPECT_EQ(victim.status(), v1::INSTANCE_STATUS_TERMINATED);
    EXPECT_TRUE(victim.machine_id().empty());
    EXPECT_THAT(victim.status_history(victim.status_history_size() - 1).message(),
                HasSubstr("preemption deadline"));
  }
  for (const v1::Instance& i : od.instances()) {
    EXPECT_EQ(MustGet(i.id()).nvlink_domain_id(), od.nvlink_domain_id());
  }
  // A released victim's record stays until deleted.
  ASSERT_TRUE(BatchDelete({od.preempted_instance_ids().begin(), od.preempted_instance_ids().end()})
                  .ok());
  EXPECT_TRUE(Invariants().ok());
}

TEST_F(PreemptionTest, ARestartInTheMiddleResumesThePreemption) {
  std::vector<v1::BatchCreateInstancesResponse> spot = FillWithSpot();
  v1::BatchCreateInstancesResponse od = MustBatchCreate(OnDemandBatch(4));
  const int d = DomainIndex(od.nvlink_domain_id());
  ASSERT_GE(d, 0);

  Restart();
  ASSERT_TRUE(Invariants().ok());
  for (const v1::Instance& i : spot[d].instances()) {
    v1::Instance victim = MustGet(i.id());
    EXPECT_EQ(victim.status(), v1::INSTANCE_STATUS_TERMINATING);
    EXPECT_EQ(victim.preemption().preemptor_batch_id(), od.batch_id());
  }
  v1::Instance waiting = MustGet(od.instances(0).id());
  EXPECT_EQ(waiting.status(), v1::INSTANCE_STATUS_QUEUED);
  EXPECT_EQ(waiting.queue().pinned_domain_id(), od.nvlink_domain_id());
  // The victims stay preempted after the restart: a new request picks other ones.
  v1::BatchCreateInstancesResponse second = MustBatchCreate(OnDemandBatch(4));
  EXPECT_NE(second.nvlink_domain_id(), od.nvlink_domain_id());
  EXPECT_EQ(second.preempted_instance_ids_size(), 4);

  ASSERT_TRUE(BatchDelete(IdsOf(spot[d].instances())).ok());
  for (const v1::Instance& i : od.instances()) {
    v1::Instance now = MustGet(i.id());
    EXPECT_EQ(now.status(), v1::INSTANCE_STATUS_PENDING);
    EXPECT_EQ(now.nvlink_domain_id(), od.nvlink_domain_id());
  }
  EXPECT_TRUE(Invariants().ok());
}

}  // namespace
}  // namespace nvlsched::daemon::testing
