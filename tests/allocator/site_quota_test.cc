// Tests per-site quotas (Tenant::site_quota) in allocator/allocator.cc: a placement satisfies
// the fleet-wide entry and the entry of the site it lands in; without a named site, a site
// whose quota cannot take the request is skipped (the next site in index order is planned);
// usage is counted per (tenant, type, site), moved with a domain's site, and undone exactly.
#include <string>
#include <vector>

#include "allocator/allocator.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::TestFleet;
using ::nvlsched::allocator::testing::Trays;

constexpr char kTenant[] = "t";

// s1 = a (4) + b (3), s2 = c (6) + d (2). Tenant t: quota (machines) per the arguments.
TestFleet TwoSites(std::map<std::string, int64_t> fleet_quota,
                   std::map<std::pair<std::string, std::string>, int64_t> site_quota) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 3}, {"c", "s2", 6}, {"d", "s2", 2}});
  Tenant t{kTenant, "org", "tee", std::move(fleet_quota)};
  t.site_quota = std::move(site_quota);
  EXPECT_OK(fleet.alloc().UpsertTenant(t));
  return fleet;
}

absl::StatusOr<std::vector<std::string>> Place(TestFleet& fleet, int count, bool strict = true,
                                               const std::string& site = "") {
  BatchRequest r{kTenant, kGb200, count, strict};
  r.site_id = site;
  absl::StatusOr<Placement> plan = fleet.alloc().PlanBatch(r);
  if (!plan.ok()) return plan.status();
  return fleet.ApplyPlan(*plan, "batch");
}

absl::StatusOr<std::string> PlaceSingle(TestFleet& fleet, int gpus, const std::string& site = "") {
  absl::StatusOr<Placement> plan = fleet.alloc().PlanSingle({kTenant, kGb200, gpus, site});
  if (!plan.ok()) return plan.status();
  return fleet.ApplyPlan(*plan, "").front();
}

int64_t Used(TestFleet& fleet, const std::string& site) {
  return *fleet.alloc().SiteQuotaUsageGpus(kTenant, kGb200, site);
}

TEST(SiteQuotaTest, AFleetWideAndAPerSiteEntryBothApply) {
  TestFleet fleet = TwoSites({{kGb200, 8}}, {{{kGb200, "s1"}, 2}});
  // Best fit is b (s1), but s1 allows 2 machines: the next site, s2, takes it (best fit c).
  EXPECT_EQ(*Place(fleet, 3), Trays("c", 0, 3));
  EXPECT_EQ(Used(fleet, "s2"), 12);
  // Best fit d (s2) has no per-site entry: only the fleet-wide 8 applies.
  EXPECT_EQ(*Place(fleet, 2), Trays("d", 0, 2));
  // Named s1: 2 machines fit its quota; a third does not. Then the fleet-wide 8 refuses 2
  // more anywhere (7 held).
  EXPECT_EQ(*Place(fleet, 2, true, "s1"), Trays("b", 0, 2));
  EXPECT_EQ(Used(fleet, "s1"), 8);
  EXPECT_STATUS(PlaceSingle(fleet, 0, "s1"), absl::StatusCode::kResourceExhausted,
                "may hold 2 gb200-tray machines (8 GPUs) in site s1; 8 GPUs are in use there and "
                "this request needs 4 more");
  EXPECT_STATUS(Place(fleet, 2, false), absl::StatusCode::kResourceExhausted,
                "may hold 8 gb200-tray machines (32 GPUs); 28 GPUs are in use");
  EXPECT_EQ(*fleet.alloc().QuotaUsageGpus(kTenant, kGb200), 28);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(SiteQuotaTest, PerSiteEntriesOnlyCloseTheOtherSites) {
  TestFleet fleet = TwoSites({}, {{{kGb200, "s2"}, 3}});
  EXPECT_EQ(*Place(fleet, 2), Trays("d", 0, 2));
  EXPECT_STATUS(PlaceSingle(fleet, 0, "s1"), absl::StatusCode::kResourceExhausted,
                "has no quota for instance type gb200-tray in site s1");
  // Cross-domain 4: s2 fits it best (6 free) but would exceed its 3; s1 is closed.
  absl::StatusOr<std::vector<std::string>> four = Place(fleet, 4, false);
  EXPECT_STATUS(four, absl::StatusCode::kResourceExhausted,
                "may hold 3 gb200-tray machines (12 GPUs) in site s2; 8 GPUs are in use there and "
                "this request needs 16 more, and no other site the tenant has quota in can take it");
  EXPECT_TRUE(GetQuotaViolation(four.status()).has_value());
  // A GPU-granular single lands in s1 by its rule (the fullest machines), so goes to s2.
  absl::StatusOr<std::string> gpus = PlaceSingle(fleet, 2);
  ASSERT_OK(gpus);
  EXPECT_EQ(fleet.alloc().FindDomain(fleet.alloc().FindMachine(*gpus)->domain_id)->site_id, "s2");
  EXPECT_EQ(Used(fleet, "s2"), 10);
  EXPECT_EQ(Used(fleet, "s1"), 0);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(SiteQuotaTest, PreemptionChecksTheSiteQuotaOfItsDomain) {
  TestFleet fleet({{"a", "s1", 2}});
  Tenant t{kTenant, "org", "tee", {{kGb200, 10}}};
  t.site_quota = {{{kGb200, "s1"}, 1}};
  ASSERT_OK(fleet.alloc().UpsertTenant(t));
  BatchRequest spot{testing::kAcme, kGb200, 2};
  spot.spot = true;
  absl::StatusOr<Placement> spot_plan = fleet.alloc().PlanBatch(spot);
  ASSERT_OK(spot_plan);
  fleet.ApplyPlan(*spot_plan, "spot");
  EXPECT_STATUS(fleet.alloc().PlanPreemption(BatchRequest{kTenant, kGb200, 2}, {}, 0),
                absl::StatusCode::kResourceExhausted, "in site s1");
}

TEST(SiteQuotaTest, ReleaseUndoAndADomainMovingSiteKeepTheCountsExact) {
  TestFleet fleet = TwoSites({{kGb200, 100}}, {{{kGb200, "s1"}, 5}, {{kGb200, "s2"}, 5}});
  const JournalMark mark = fleet.alloc().Mark();
  const std::string before = testing::Snapshot(fleet.alloc());
  ASSERT_OK(Place(fleet, 3, true, "s1"));  // b
  const std::vector<std::string> in_b = fleet.last_instances();
  ASSERT_OK(Place(fleet, 2, false, "s2"));  // d
  EXPECT_EQ(Used(fleet, "s1"), 12);
  EXPECT_EQ(Used(fleet, "s2"), 8);
  // b moves to s2: its 12 GPUs count there now, and s2's 5 machines are full.
  ASSERT_OK(fleet.alloc().UpsertDomain({"b", "rack b", "s2"}));
  EXPECT_EQ(Used(fleet, "s1"), 0);
  EXPECT_EQ(Used(fleet, "s2"), 20);
  EXPECT_OK(fleet.alloc().CheckInvariants());
  EXPECT_STATUS(PlaceSingle(fleet, 0, "s2"), absl::StatusCode::kResourceExhausted, "in site s2");
  ASSERT_OK(fleet.Release({in_b[0]}));
  EXPECT_EQ(Used(fleet, "s2"), 16);
  EXPECT_OK(fleet.alloc().CheckInvariants());
  fleet.alloc().RollbackTo(mark);
  EXPECT_EQ(testing::Snapshot(fleet.alloc()), before);
  EXPECT_EQ(Used(fleet, "s1"), 0);
  EXPECT_EQ(Used(fleet, "s2"), 0);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(SiteQuotaTest, ASiteAddedLaterPicksUpItsEntry) {
  TestFleet fleet = TwoSites({}, {{{kGb200, "s3"}, 1}});
  EXPECT_STATUS(Place(fleet, 2), absl::StatusCode::kResourceExhausted, "has no quota");
  fleet.AddDomain("e", "s3");
  fleet.AddMachines({{"e-0", "e", 0}, {"e-1", "e", 1}});
  EXPECT_EQ(*PlaceSingle(fleet, 0), "e-0");
  EXPECT_STATUS(PlaceSingle(fleet, 0), absl::StatusCode::kResourceExhausted,
                "may hold 1 gb200-tray machines (4 GPUs) in site s3");
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(SiteQuotaTest, BadPerSiteEntriesAreRefused) {
  TestFleet fleet = TwoSites({}, {});
  Tenant t{kTenant, "org", "tee"};
  t.site_quota = {{{kGb200, ""}, 1}};
  EXPECT_STATUS(fleet.alloc().UpsertTenant(t), absl::StatusCode::kInvalidArgument, "empty site");
  t.site_quota = {{{"nope", "s1"}, 1}};
  EXPECT_STATUS(fleet.alloc().UpsertTenant(t), absl::StatusCode::kNotFound, "\"nope\"");
  t.site_quota = {{{kGb200, "s1"}, -1}};
  EXPECT_STATUS(fleet.alloc().UpsertTenant(t), absl::StatusCode::kInvalidArgument, "must be >= 0");
}

}  // namespace
}  // namespace nvlsched::allocator
