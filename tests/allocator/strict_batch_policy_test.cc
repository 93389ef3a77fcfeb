// Tests allocator/strict_batch_policy.h through Allocator::PlanBatch / PlanSingle(0):
// best-fit domain choice, tie-breaks, inside-domain order, infeasible vs. not-now, affinity.
#include "allocator/strict_batch_policy.h"

#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::MachineRow;
using ::nvlsched::allocator::testing::TestFleet;
using ::nvlsched::allocator::testing::Trays;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

TEST(StrictBatchPolicyTest, ChoosesTheDomainWithFewestFreeMachinesThatStillFits) {
  // domain | machines | held  | free
  // a      | 18       | 0..11 | 6
  // b      | 18       | 0..13 | 4
  // c      | 18       | -     | 18
  TestFleet fleet({{"a", "s1", 18}, {"b", "s1", 18}, {"c", "s1", 18}});
  fleet.HoldWhole(Trays("a", 0, 12));
  fleet.HoldWhole(Trays("b", 0, 14));

  auto four = fleet.PlaceBatch(4);
  ASSERT_OK(four);
  EXPECT_THAT(*four, ElementsAreArray(Trays("b", 14, 18)));  // exactly fits b

  auto five = fleet.PlaceBatch(5);
  ASSERT_OK(five);
  EXPECT_THAT(*five, ElementsAreArray(Trays("a", 12, 17)));  // b is full; a (6) beats c (18)

  auto seven = fleet.PlaceBatch(7);
  ASSERT_OK(seven);
  EXPECT_THAT(*seven, ElementsAreArray(Trays("c", 0, 7)));   // only c holds 7
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(StrictBatchPolicyTest, TiesGoToTheLowestDomainIndexWhichIsInsertionOrder) {
  // Domains are added z, then m, then a: index order, not id order, breaks ties.
  TestFleet fleet({{"z", "s1", 4}, {"m", "s1", 4}, {"a", "s1", 4}});
  auto first = fleet.PlaceBatch(2);
  ASSERT_OK(first);
  EXPECT_THAT(*first, ElementsAre("z-0", "z-1"));
  auto second = fleet.PlaceBatch(3);  // z has 2 free now: too few; m and a tie at 4
  ASSERT_OK(second);
  EXPECT_THAT(*second, ElementsAre("m-0", "m-1", "m-2"));
}

TEST(StrictBatchPolicyTest, TakesTheLowestFreeTraysInsideTheDomain) {
  TestFleet fleet({{"a", "s1", 8}});
  fleet.HoldWhole({"a-1", "a-3", "a-4"});
  auto placed = fleet.PlaceBatch(3);
  ASSERT_OK(placed);
  EXPECT_THAT(*placed, ElementsAre("a-0", "a-2", "a-5"));
}

TEST(StrictBatchPolicyTest, TrayOrderIsByTrayIndexNotByInsertion) {
  TestFleet fleet({});
  fleet.AddDomain("a", "s1");
  // id      | domain | tray
  fleet.AddMachines({{"m-x", "a", 7}, {"m-y", "a", 2}, {"m-z", "a", 5}, {"m-w", "a", 11}});
  auto placed = fleet.PlaceBatch(3);
  ASSERT_OK(placed);
  EXPECT_THAT(*placed, ElementsAre("m-y", "m-z", "m-x"));
}

TEST(StrictBatchPolicyTest, NeverChoosesMaintenanceErrorOrPartlyHeldMachines) {
  TestFleet fleet({{"b", "s1", 6}});
  fleet.AddDomain("a", "s1");
  // id    | domain | tray | gpus | state
  fleet.AddMachines({{"a-0", "a", 0, 4, MachineState::kMaintenance},
                     {"a-1", "a", 1, 4, MachineState::kError},
                     {"a-2", "a", 2},
                     {"a-3", "a", 3},
                     {"a-4", "a", 4}});
  fleet.HoldGpus("a-3", 1);  // partly held: not free for a batch
  EXPECT_EQ(fleet.FreeIn("a"), 2);
  auto two = fleet.PlaceBatch(2);
  ASSERT_OK(two);
  EXPECT_THAT(*two, ElementsAre("a-2", "a-4"));
  auto three = fleet.PlaceBatch(3);
  ASSERT_OK(three);
  EXPECT_THAT(*three, ElementsAre("b-0", "b-1", "b-2"));
}

TEST(StrictBatchPolicyTest, NeverFailsWhileSomeDomainCanHoldTheBatch) {
  TestFleet fleet({{"a", "s1", 18}, {"b", "s1", 18}});
  fleet.HoldWhole(Trays("a", 0, 16));  // a: 2 free, b: 18 free
  for (int k : {3, 3, 3, 3, 3, 3}) {
    auto placed = fleet.PlaceBatch(k);
    ASSERT_OK(placed);
  }
  EXPECT_EQ(fleet.FreeIn("b"), 0);
  auto last = fleet.PlaceBatch(2);
  ASSERT_OK(last);
  EXPECT_THAT(*last, ElementsAre("a-16", "a-17"));
}

TEST(StrictBatchPolicyTest, WholeMachineSingleIsABestFitBatchOfOne) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}, {"c", "s2", 4}});
  fleet.HoldWhole({"a-0"});            // a: 3 free
  fleet.HoldWhole(Trays("b", 0, 3));  // b: 1 free (a stranded machine gets used first)
  auto single = fleet.PlaceSingle(0);
  ASSERT_OK(single);
  EXPECT_EQ(*single, "b-3");
  auto next = fleet.PlaceSingle(0);
  ASSERT_OK(next);
  EXPECT_EQ(*next, "a-1");
  auto in_site = fleet.PlaceSingle(0, "s2");
  ASSERT_OK(in_site);
  EXPECT_EQ(*in_site, "c-0");
}

TEST(StrictBatchPolicyTest, SiteFilterThatHasNothingFreeSaysSo) {
  TestFleet fleet({{"a", "s1", 2}, {"c", "s2", 1}});
  fleet.HoldWhole({"c-0"});
  EXPECT_STATUS(fleet.PlaceSingle(0, "s2"), absl::StatusCode::kResourceExhausted,
                "no READY gb200-tray machine is free in site s2");
  EXPECT_STATUS(fleet.PlaceSingle(0, "s9"), absl::StatusCode::kNotFound, "site \"s9\" is not known");
}

TEST(StrictBatchPolicyTest, LargerThanAnyDomainCouldEverHoldIsInfeasible) {
  TestFleet fleet({{"a", "s1", 18}, {"b", "s1", 12}});
  EXPECT_STATUS(fleet.PlaceBatch(19), absl::StatusCode::kInvalidArgument,
                "infeasible: a topology-optimized batch of 19 gb200-tray machines can never fit "
                "in one NVLink domain: the largest domain for that type has 18 machines");
  // A type with no machines at all is infeasible too.
  EXPECT_STATUS(fleet.PlaceBatch(1, true, SpreadPolicy::kFill, {}, testing::kH100),
                absl::StatusCode::kInvalidArgument, "largest domain for that type has 0 machines");
}

TEST(StrictBatchPolicyTest, DrainedMachinesStillCountForFeasibilityButNotForNow) {
  TestFleet fleet({{"a", "s1", 4}});
  ASSERT_OK(fleet.alloc().SetMachineState("a-2", MachineState::kMaintenance, "disk"));
  EXPECT_STATUS(fleet.PlaceBatch(4), absl::StatusCode::kResourceExhausted,
                "not enough free capacity now");
}

TEST(StrictBatchPolicyTest, NotEnoughCapacityNowCarriesTheShortfall) {
  // domain | machines | held | free
  // a      | 4        | 0    | 3
  // b      | 4        | 0,1  | 2
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}});
  fleet.HoldWhole({"a-0", "b-0", "b-1"});
  absl::StatusOr<Placement> plan =
      fleet.alloc().PlanBatch({testing::kAcme, testing::kGb200, 4, true, SpreadPolicy::kFill, {}});
  EXPECT_STATUS(plan, absl::StatusCode::kResourceExhausted,
                "needs 4 free machines in one NVLink domain, but the most free in any domain is 3 "
                "(5 free in total)");
  std::optional<CapacityShortfall> shortfall = GetCapacityShortfall(plan.status());
  ASSERT_TRUE(shortfall.has_value());
  EXPECT_EQ(*shortfall, (CapacityShortfall{testing::kGb200, CapacityUnit::kMachines, 4, 3, 5}));
  EXPECT_FALSE(GetQuotaViolation(plan.status()).has_value());
}

TEST(StrictBatchPolicyTest, PartitionAffinityBindsTheBatchToThePartitionsDomain) {
  TestFleet fleet({{"a", "s1", 18}, {"b", "s1", 18}});
  fleet.HoldWhole(Trays("a", 0, 15));  // a: 3 free (best fit for small batches)
  // p1's first batch goes by best fit... to a:
  auto first = fleet.PlaceBatch(2, true, SpreadPolicy::kFill, {"p1"});
  ASSERT_OK(first);
  EXPECT_THAT(*first, ElementsAre("a-15", "a-16"));
  // p2 starts in b (a cannot hold 4).
  auto p2 = fleet.PlaceBatch(4, true, SpreadPolicy::kFill, {"p2"});
  ASSERT_OK(p2);
  EXPECT_THAT(*p2, ElementsAre("b-0", "b-1", "b-2", "b-3"));
  // Another p2 batch of 1 would best-fit into a (1 free) but must join p2 in b.
  auto p2_again = fleet.PlaceBatch(1, true, SpreadPolicy::kFill, {"p2"});
  ASSERT_OK(p2_again);
  EXPECT_THAT(*p2_again, ElementsAre("b-4"));
  // p1 needs 2 more but a has only 1 free: fail, naming the domain and why.
  EXPECT_STATUS(fleet.PlaceBatch(2, true, SpreadPolicy::kFill, {"p1"}),
                absl::StatusCode::kResourceExhausted,
                "NVLink logical partition p1 has instances in domain rack a (1 of 18 gb200-tray "
                "machines free");
  // A partition nobody used yet does not bind.
  auto fresh = fleet.PlaceBatch(2, true, SpreadPolicy::kFill, {"p-new"});
  ASSERT_OK(fresh);
  EXPECT_THAT(*fresh, ElementsAre("b-5", "b-6"));
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(StrictBatchPolicyTest, AffinityOverSeveralDomainsUsesBestFitAmongThem) {
  TestFleet fleet({{"a", "s1", 6}, {"b", "s1", 6}, {"c", "s1", 6}});
  // A cross-domain SPREAD batch puts p1 in a, b and c.
  auto spread = fleet.PlaceBatch(3, false, SpreadPolicy::kSpread, {"p1"});
  ASSERT_OK(spread);
  fleet.HoldWhole(Trays("c", 1, 4));  // c: 2 free, a and b: 5 free
  auto placed = fleet.PlaceBatch(2, true, SpreadPolicy::kFill, {"p1"});
  ASSERT_OK(placed);
  EXPECT_THAT(*placed, ElementsAre("c-4", "c-5"));
}

TEST(StrictBatchPolicyTest, DomainsUpTo144MachinesAreSupported) {
  TestFleet fleet({{"nvl576", "s1", 144}});
  auto all = fleet.PlaceBatch(144);
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 144u);
  EXPECT_STATUS(fleet.alloc().UpsertMachine({"extra", "nvl576", 200, testing::kGb200, 4}),
                absl::StatusCode::kInvalidArgument, "already has 144 machines");
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(StrictBatchPolicyTest, MalformedAndUnknownRequests) {
  TestFleet fleet({{"a", "s1", 4}});
  Allocator& alloc = fleet.alloc();
  EXPECT_STATUS(alloc.PlanBatch({testing::kAcme, testing::kGb200, 0}),
                absl::StatusCode::kInvalidArgument, "count must be at least 1 (got 0)");
  EXPECT_STATUS(alloc.PlanBatch({"nobody", testing::kGb200, 1}), absl::StatusCode::kNotFound,
                "tenant \"nobody\" is not known");
  EXPECT_STATUS(alloc.PlanBatch({testing::kAcme, "b300", 1}), absl::StatusCode::kNotFound,
                "instance type \"b300\" is not known");
  EXPECT_STATUS(alloc.PlanBatch({testing::kAcme, testing::kGb200, 1, true, SpreadPolicy::kFill, {""}}),
                absl::StatusCode::kInvalidArgument, "empty id");
}

}  // namespace
}  // namespace nvlsched::allocator
