// Tests allocator/allocator.cc and cross_domain_policy.cc on sites: a batch never spans
// sites; BatchRequest::site_id restricts strict, cross-domain and segmented batches,
// preemption and queue reservations; without one, a cross-domain batch goes to the site that
// fits it most tightly.
#include <string>
#include <vector>

#include "allocator/allocator.h"
#include "allocator/gang_queue.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::kAcme;
using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::kH100;
using ::nvlsched::allocator::testing::TestFleet;
using ::nvlsched::allocator::testing::Trays;

// Two sites: s1 = a (4) + b (3) = 7 free, s2 = c (6) + d (2) = 8 free.
TestFleet TwoSites() { return TestFleet({{"a", "s1", 4}, {"b", "s1", 3}, {"c", "s2", 6}, {"d", "s2", 2}}); }

std::vector<std::string> Concat(std::vector<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

absl::StatusOr<std::vector<std::string>> Place(TestFleet& fleet, BatchRequest request) {
  absl::StatusOr<Placement> plan = fleet.alloc().PlanBatch(request);
  if (!plan.ok()) return plan.status();
  return fleet.ApplyPlan(*plan, "batch");
}

BatchRequest Cross(int count, SpreadPolicy policy, const std::string& site = "",
                   int segment = 0) {
  BatchRequest r{kAcme, kGb200, count, /*topology_optimized=*/false, policy};
  r.segment_size = segment;
  r.site_id = site;
  return r;
}

BatchRequest Strict(int count, const std::string& site = "") {
  BatchRequest r{kAcme, kGb200, count};
  r.site_id = site;
  return r;
}

struct Row {
  std::string what;
  BatchRequest request;
  std::vector<std::string> machines;  // empty: refused with `code` and `message`
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string message;
};

TEST(BatchSiteTest, EveryBatchComesFromOneSiteLiteralTable) {
  const std::vector<Row> rows = {
      // No site named: best fit over sites (s1 has 7 free, s2 8), then the policy inside.
      {"FILL 5 fits s1 most tightly", Cross(5, SpreadPolicy::kFill),
       Concat({Trays("b", 0, 3), Trays("a", 0, 2)})},
      {"FILL 8 fits only s2", Cross(8, SpreadPolicy::kFill),
       Concat({Trays("d", 0, 2), Trays("c", 0, 6)})},
      {"MIN_DOMAINS 7 fits s1 exactly", Cross(7, SpreadPolicy::kMinDomains),
       Concat({Trays("a", 0, 4), Trays("b", 0, 3)})},
      {"SPREAD 4 in s1", Cross(4, SpreadPolicy::kSpread),
       Concat({Trays("a", 0, 2), Trays("b", 0, 2)})},
      {"10 is more than any site has", Cross(10, SpreadPolicy::kFill), {},
       absl::StatusCode::kInvalidArgument,
       "a batch never spans sites and the largest site, s2, has only 8 machines of that type"},
      // Segments: every domain from one site. s1 is tried first (7 free >= 4).
      {"segments 2+2 in s1, not d+b", Cross(4, SpreadPolicy::kFill, "", 2),
       Concat({Trays("b", 0, 2), Trays("a", 0, 2)})},
      // s1 has 7 free but no domain with 6: the next site (s2) takes it.
      {"segment of 6 falls back to s2", Cross(6, SpreadPolicy::kFill, "", 6), Trays("c", 0, 6)},
      {"segments of 3 x 3 fit no site", Cross(9, SpreadPolicy::kFill, "", 3), {},
       absl::StatusCode::kInvalidArgument, "largest site, s2, has only 8"},
      {"segments 4 x 2 in one site", Cross(8, SpreadPolicy::kFill, "", 4), {},
       absl::StatusCode::kResourceExhausted, "the most one site can take now is 4"},
      // A named site.
      {"strict 3 in s2", Strict(3, "s2"), Trays("c", 0, 3)},
      {"strict 3 anywhere: best fit b", Strict(3), Trays("b", 0, 3)},
      {"strict 5 in s1: no domain", Strict(5, "s1"), {}, absl::StatusCode::kResourceExhausted,
       "in site s1, but the most free in any domain is 4"},
      {"FILL 5 in s2", Cross(5, SpreadPolicy::kFill, "s2"),
       Concat({Trays("d", 0, 2), Trays("c", 0, 3)})},
      {"MIN_DOMAINS 3 in s2", Cross(3, SpreadPolicy::kMinDomains, "s2"), Trays("c", 0, 3)},
      {"SPREAD 3 in s1", Cross(3, SpreadPolicy::kSpread, "s1"),
       Concat({Trays("a", 0, 2), Trays("b", 0, 1)})},
      {"FILL 8 in s1", Cross(8, SpreadPolicy::kFill, "s1"), {}, absl::StatusCode::kInvalidArgument,
       "a batch never spans sites and site s1 has only 7 machines of that type"},
      {"segments 2+2 in s2", Cross(4, SpreadPolicy::kFill, "s2", 2),
       Concat({Trays("d", 0, 2), Trays("c", 0, 2)})},
      {"unknown site", Cross(2, SpreadPolicy::kFill, "s9"), {}, absl::StatusCode::kNotFound,
       "site \"s9\" is not known (no NVLink domain is in it)"},
      {"unknown site, strict", Strict(2, "s9"), {}, absl::StatusCode::kNotFound,
       "site \"s9\" is not known"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    TestFleet fleet = TwoSites();
    absl::StatusOr<std::vector<std::string>> got = Place(fleet, row.request);
    if (row.machines.empty()) {
      EXPECT_STATUS(got, row.code, row.message);
    } else {
      ASSERT_OK(got);
      EXPECT_EQ(*got, row.machines);
    }
    EXPECT_OK(fleet.alloc().CheckInvariants());
  }
}

TEST(BatchSiteTest, ABatchThatFitsOnlyAcrossSitesIsRefused) {
  TestFleet fleet = TwoSites();
  fleet.HoldWhole({"c-0"});  // 7 free in each site, 14 in all
  absl::StatusOr<std::vector<std::string>> got = Place(fleet, Cross(8, SpreadPolicy::kFill));
  EXPECT_STATUS(got, absl::StatusCode::kResourceExhausted,
                "a batch never spans sites and the most one site can take now is 7 (site s1; 14 "
                "free in all sites); retry later, ask for at most 7, or name a site_id");
  std::optional<CapacityShortfall> shortfall = GetCapacityShortfall(got.status());
  ASSERT_TRUE(shortfall.has_value());
  EXPECT_EQ(shortfall->requested, 8);
  EXPECT_EQ(shortfall->total_free, 14);
  EXPECT_EQ(*Place(fleet, Cross(7, SpreadPolicy::kFill)),
            Concat({Trays("b", 0, 3), Trays("a", 0, 4)}));
}

TEST(BatchSiteTest, ASiteWithoutMachinesOfTheTypeIsInfeasible) {
  TestFleet fleet = TwoSites();
  fleet.AddDomain("h", "s3");
  fleet.AddMachines({{"h-0", "h", 0, 8, MachineState::kReady, kH100}});
  EXPECT_STATUS(Place(fleet, Strict(2, "s3")), absl::StatusCode::kInvalidArgument,
                "site s3 has no gb200-tray machines");
  EXPECT_STATUS(Place(fleet, Cross(2, SpreadPolicy::kFill, "s3")),
                absl::StatusCode::kInvalidArgument, "site s3 has no gb200-tray machines");
}

TEST(BatchSiteTest, TheSiteChoiceFollowsFreeCapacityAndTiesGoToTheFirstSite) {
  // Equal free counts: the site added first wins.
  TestFleet fleet({{"a", "s1", 3}, {"c", "s2", 3}});
  EXPECT_EQ(*Place(fleet, Cross(2, SpreadPolicy::kFill)), Trays("a", 0, 2));
  // s1 now has 1 free, s2 3: a batch of 2 fits only s2, one of 1 fits s1 most tightly.
  EXPECT_EQ(*Place(fleet, Cross(2, SpreadPolicy::kFill)), Trays("c", 0, 2));
  EXPECT_EQ(*Place(fleet, Cross(1, SpreadPolicy::kFill)), Trays("a", 2, 3));
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(BatchSiteTest, ExcludedDomainsCountAgainstTheirSite) {
  TestFleet fleet = TwoSites();
  // c reserved: s2 has only d's 2 free, so a batch of 5 goes to s1 and one of 8 fits nowhere.
  const DomainIndex c = fleet.alloc().DomainIndexOf("c");
  PlanConstraints constraints;
  constraints.excluded_domains = absl::MakeConstSpan(&c, 1);
  absl::StatusOr<Placement> five = fleet.alloc().PlanBatch(Cross(7, SpreadPolicy::kFill), constraints);
  ASSERT_OK(five);
  EXPECT_EQ(fleet.alloc().DomainAt(five->instances.back().domain).site_id, "s1");
  EXPECT_STATUS(fleet.alloc().PlanBatch(Cross(3, SpreadPolicy::kFill, "s2"), constraints),
                absl::StatusCode::kResourceExhausted, "in site s2, but only 2 are free");
}

TEST(BatchSiteTest, AnExistingSingleSiteFleetKeepsItsMessages) {
  TestFleet fleet({{"a", "s1", 2}, {"b", "s1", 2}});
  EXPECT_STATUS(Place(fleet, Cross(5, SpreadPolicy::kFill)), absl::StatusCode::kInvalidArgument,
                "the fleet has only 4 machines");
  fleet.HoldWhole({"a-0"});
  EXPECT_STATUS(Place(fleet, Cross(4, SpreadPolicy::kFill)), absl::StatusCode::kResourceExhausted,
                "but only 3 are free");
}

TEST(BatchSiteTest, MovingADomainToAnotherSiteMovesItsCapacity) {
  TestFleet fleet = TwoSites();
  // d joins s1: s1 has 9 free, s2 6.
  ASSERT_OK(fleet.alloc().UpsertDomain({"d", "rack d", "s1"}));
  EXPECT_OK(fleet.alloc().CheckInvariants());
  EXPECT_EQ(*Place(fleet, Cross(9, SpreadPolicy::kFill)),
            Concat({Trays("d", 0, 2), Trays("b", 0, 3), Trays("a", 0, 4)}));
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(BatchSiteTest, UndoRestoresThePerSiteCounts) {
  TestFleet fleet = TwoSites();
  JournalMark mark = fleet.alloc().Mark();
  const std::string before = testing::Snapshot(fleet.alloc());
  ASSERT_OK(Place(fleet, Cross(8, SpreadPolicy::kFill)));
  ASSERT_OK(fleet.alloc().UpsertDomain({"a", "rack a", "s2"}));
  EXPECT_OK(fleet.alloc().CheckInvariants());
  fleet.alloc().RollbackTo(mark);
  EXPECT_EQ(testing::Snapshot(fleet.alloc()), before);
  EXPECT_OK(fleet.alloc().CheckInvariants());
  // Counts are right again: 8 fits s2 only.
  EXPECT_EQ(*Place(fleet, Cross(8, SpreadPolicy::kFill)),
            Concat({Trays("d", 0, 2), Trays("c", 0, 6)}));
}

TEST(BatchSiteTest, PreemptionForABatchWithASiteStaysInThatSite) {
  TestFleet fleet({{"a", "s1", 2}, {"c", "s2", 2}});
  // Spot gangs fill both domains.
  for (const char* site : {"s1", "s2"}) {
    BatchRequest spot = Strict(2, site);
    spot.spot = true;
    ASSERT_OK(Place(fleet, spot));
  }
  absl::StatusOr<PreemptionPlan> plan = fleet.alloc().PlanPreemption(Strict(2, "s2"), {}, 0);
  ASSERT_OK(plan);
  EXPECT_EQ(fleet.alloc().DomainAt(plan->domain).id, "c");
  plan = fleet.alloc().PlanPreemption(Strict(2, "s1"), {}, 0);
  ASSERT_OK(plan);
  EXPECT_EQ(fleet.alloc().DomainAt(plan->domain).id, "a");
  EXPECT_STATUS(fleet.alloc().PlanPreemption(Strict(2, "s9"), {}, 0), absl::StatusCode::kNotFound,
                "site \"s9\"");
}

TEST(BatchSiteTest, MostFreeDomainStaysInTheSite) {
  TestFleet fleet = TwoSites();
  const TypeIndex t = fleet.alloc().TypeIndexOf(kGb200);
  EXPECT_EQ(fleet.alloc().DomainAt(fleet.alloc().MostFreeDomain(t, 1, {})).id, "c");
  EXPECT_EQ(fleet.alloc().DomainAt(
                fleet.alloc().MostFreeDomain(t, 1, {}, fleet.alloc().SiteIndexOf("s1"))).id,
            "a");
  EXPECT_EQ(fleet.alloc().MostFreeDomain(t, 5, {}, fleet.alloc().SiteIndexOf("s1")), kNoIndex);
  EXPECT_EQ(fleet.alloc().SiteOfDomain(fleet.alloc().DomainIndexOf("d")),
            fleet.alloc().SiteIndexOf("s2"));
}

}  // namespace
}  // namespace nvlsched::allocator
