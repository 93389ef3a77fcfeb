// Sites over gRPC: a batch never spans sites; BatchCreateInstancesRequest.site_id keeps a
// batch (strict or cross-domain) in one site, queued ones too (across a restart); an unknown
// site is NOT_FOUND and a malformed one INVALID_ARGUMENT on site_id.
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/daemon/services/instance_test_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The small fleet with its last domain moved to a second site: site A (f::kSiteId) has
// domains 0 and 1 (8 machines), site B domain 2 (4 machines).
constexpr char kSiteB[] = "51700000-0000-4000-8000-000000000002";

class SiteTest : public InstanceServiceTest {
 protected:
  void SetUp() override {
    InstanceServiceTest::SetUp();
    v1::Fleet fleet = SmallFleet();
    fleet.mutable_domains(f::kDomains - 1)->set_site_id(kSiteB);
    fleet.mutable_tenants(0)->mutable_quotas(0)->set_max_machines(100);
    ASSERT_TRUE(ApplyFleet(fleet).ok());
  }

  static std::set<std::string> SitesOf(const v1::BatchCreateInstancesResponse& resp) {
    std::set<std::string> sites;
    for (const v1::Instance& i : resp.instances()) sites.insert(i.site_id());
    return sites;
  }
};

TEST_F(SiteTest, ACrossDomainBatchWithoutSiteTakesOneSite) {
  // 5 fits only site A (8 machines); site B has 4.
  v1::BatchCreateInstancesResponse five = MustBatchCreate(CrossDomainBatch(5));
  EXPECT_THAT(SitesOf(five), ElementsAre(f::kSiteId));
  // Site A has 3 free, B 4: a batch of 4 fits only B, though 7 are free in all.
  v1::BatchCreateInstancesResponse four = MustBatchCreate(CrossDomainBatch(4));
  EXPECT_THAT(SitesOf(four), ElementsAre(kSiteB));
  // 3 still fits A; 4 more would need both sites.
  v1::BatchCreateInstancesResponse resp;
  grpc::Status status = BatchCreate(CrossDomainBatch(4), &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::RESOURCE_EXHAUSTED,
                         "a batch never spans sites and the most one site can take now is 3"));
  EXPECT_EQ(DetailsOf(status).error_info->reason(), "INSUFFICIENT_CAPACITY");
}

TEST_F(SiteTest, ACrossDomainBatchLargerThanEverySiteIsInvalidOnCount) {
  v1::BatchCreateInstancesResponse resp;
  grpc::Status status = BatchCreate(CrossDomainBatch(9), &resp);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT,
                         "a batch never spans sites and the largest site"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("count"));
}

TEST_F(SiteTest, SiteIdKeepsStrictAndCrossDomainBatchesInTheSite) {
  v1::BatchCreateInstancesRequest strict = Batch(2);
  strict.set_site_id(kSiteB);
  v1::BatchCreateInstancesResponse a = MustBatchCreate(strict);
  EXPECT_EQ(a.nvlink_domain_id(), f::DomainId(2));
  EXPECT_THAT(SitesOf(a), ElementsAre(kSiteB));

  v1::BatchCreateInstancesRequest cross = CrossDomainBatch(3);
  cross.set_site_id(kSiteB);
  v1::BatchCreateInstancesResponse resp;
  EXPECT_TRUE(IsRpcError(BatchCreate(cross, &resp), grpc::StatusCode::RESOURCE_EXHAUSTED,
                         "in site " + std::string(kSiteB)));
  cross.set_site_id(f::kSiteId);
  cross.set_count(6);
  cross.set_segment_size(3);
  v1::BatchCreateInstancesResponse b = MustBatchCreate(cross);
  EXPECT_THAT(SitesOf(b), ElementsAre(f::kSiteId));
}

TEST_F(SiteTest, AnUnknownSiteIsNotFoundAndAMalformedOneInvalid) {
  v1::BatchCreateInstancesRequest req = Batch(2);
  req.set_site_id(kUnknownUuid);
  v1::BatchCreateInstancesResponse resp;
  EXPECT_TRUE(IsRpcError(BatchCreate(req, &resp), grpc::StatusCode::NOT_FOUND,
                         std::string("site \"") + kUnknownUuid + "\" is not known"));
  req.set_site_id("rack-7");
  grpc::Status status = BatchCreate(req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request), ElementsAre("site_id"));
}

TEST_F(SiteTest, AQueuedBatchKeepsItsSiteAcrossARestart) {
  v1::BatchCreateInstancesRequest fill = Batch(f::kMachinesPerDomain);
  fill.set_site_id(kSiteB);
  v1::BatchCreateInstancesResponse filler = MustBatchCreate(fill);
  // Site A has 8 free, but the batch names site B: it waits there.
  v1::BatchCreateInstancesRequest req = Batch(2);
  req.set_site_id(kSiteB);
  *req.mutable_queue_timeout() = google::protobuf::util::TimeUtil::SecondsToDuration(600);
  v1::BatchCreateInstancesResponse queued = MustBatchCreate(req);
  ASSERT_TRUE(queued.queued());
  EXPECT_EQ(queued.instances(0).queue().site_id(), kSiteB);

  Restart();
  v1::Instance got;
  ASSERT_TRUE(Get(queued.instances(0).id(), &got).ok());
  EXPECT_EQ(got.status(), v1::INSTANCE_STATUS_QUEUED);
  EXPECT_EQ(got.queue().site_id(), kSiteB);

  ASSERT_TRUE(Delete(filler.instances(0).id()).ok());
  ASSERT_TRUE(Delete(filler.instances(1).id()).ok());
  for (const v1::Instance& i : queued.instances()) {
    ASSERT_TRUE(Get(i.id(), &got).ok());
    EXPECT_EQ(got.status(), v1::INSTANCE_STATUS_PENDING);
    EXPECT_EQ(got.nvlink_domain_id(), f::DomainId(2));
  }
}

// Per-site quotas through UpsertTenant (and ApplyFleet): a fleet-wide and a per-site entry for
// one type both apply, survive a restart, and a repeated (type, site) is INVALID_ARGUMENT.
TEST_F(SiteTest, PerSiteQuotasApplyAndSurviveARestart) {
  v1::Tenant tenant = SmallFleet().tenants(0);
  tenant.mutable_quotas(0)->set_max_machines(100);
  v1::Quota* in_b = tenant.add_quotas();
  in_b->set_instance_type_id(f::kTypeId);
  in_b->set_site_id(kSiteB);
  in_b->set_max_machines(1);
  v1::UpsertTenantRequest upsert;
  *upsert.mutable_tenant() = tenant;
  v1::Tenant stored;
  ASSERT_TRUE(inventory().UpsertTenant(Context().get(), upsert, &stored).ok());
  ASSERT_EQ(stored.quotas_size(), 2);
  EXPECT_EQ(stored.quotas(1).site_id(), kSiteB);

  v1::CreateInstanceRequest single = Single("one");
  single.set_site_id(kSiteB);
  MustCreate(single);
  Restart();
  single.set_name("two");
  v1::Instance out;
  grpc::Status status = Create(single, &out);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::RESOURCE_EXHAUSTED,
                         std::string("may hold 1 gb200-tray machines (4 GPUs) in site ") + kSiteB));
  EXPECT_TRUE(DetailsOf(status).quota_failure.has_value());
  // Without a site the request goes to site A, which only the fleet-wide entry limits.
  single.clear_site_id();
  EXPECT_EQ(MustCreate(single).site_id(), f::kSiteId);
  // A strict batch in site B is refused by its quota; a cross-domain batch without a site,
  // which fits site B most tightly (3 free there, 7 in A), goes to site A instead.
  v1::BatchCreateInstancesResponse cross = MustBatchCreate(CrossDomainBatch(3));
  EXPECT_THAT(SitesOf(cross), ElementsAre(f::kSiteId));

  v1::Quota* again = upsert.mutable_tenant()->add_quotas();
  *again = *in_b;
  again->set_max_machines(2);
  status = inventory().UpsertTenant(Context().get(), upsert, &stored);
  EXPECT_TRUE(IsRpcError(status, grpc::StatusCode::INVALID_ARGUMENT,
                         "tenant.quotas[2] repeats the quota for instance type"));
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request),
              ElementsAre("tenant.quotas[2].instance_type_id"));
  // The same through ApplyFleet: a malformed site.
  v1::Fleet fleet = SmallFleet();
  v1::Quota* bad = fleet.mutable_tenants(0)->add_quotas();
  bad->set_instance_type_id(f::kTypeId);
  bad->set_site_id("site-b");
  bad->set_max_machines(1);
  status = ApplyFleet(fleet);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolationFields(*DetailsOf(status).bad_request),
              ElementsAre("fleet.tenants[0].quotas[1].site_id"));
}

}  // namespace
}  // namespace nvlsched::daemon::testing
