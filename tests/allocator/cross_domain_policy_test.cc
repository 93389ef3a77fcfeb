// Tests allocator/cross_domain_policy.h through Allocator::PlanBatch(topology_optimized=false).
#include "allocator/cross_domain_policy.h"

#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::TestFleet;
using ::nvlsched::allocator::testing::Trays;
using ::testing::ElementsAre;

constexpr bool kCrossDomain = false;

// The fleet most tests use:
// domain | machines | held   | free
// a      | 4        | 0,1    | 2
// b      | 8        | 0..2   | 5
// c      | 18       | -      | 18
TestFleet ThreeDomains() {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 8}, {"c", "s1", 18}});
  fleet.HoldWhole({"a-0", "a-1", "b-0", "b-1", "b-2"});
  return fleet;
}

TEST(CrossDomainPolicyTest, FillTakesLeastFreeDomainsFirst) {
  TestFleet fleet = ThreeDomains();
  auto placed = fleet.PlaceBatch(6, kCrossDomain, SpreadPolicy::kFill);
  ASSERT_OK(placed);
  EXPECT_THAT(*placed, ElementsAre("a-2", "a-3", "b-3", "b-4", "b-5", "b-6"));
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(CrossDomainPolicyTest, FillBreaksTiesByDomainIndex) {
  TestFleet fleet({{"x", "s1", 3}, {"y", "s1", 3}});
  auto placed = fleet.PlaceBatch(4, kCrossDomain, SpreadPolicy::kFill);
  ASSERT_OK(placed);
  EXPECT_THAT(*placed, ElementsAre("x-0", "x-1", "x-2", "y-0"));
}

TEST(CrossDomainPolicyTest, FillIsTheDefaultPolicy) {
  BatchRequest request;
  EXPECT_EQ(request.spread_policy, SpreadPolicy::kFill);
  EXPECT_TRUE(request.topology_optimized);
}

TEST(CrossDomainPolicyTest, MinDomainsTakesMostFreeDomainsFirst) {
  TestFleet fleet = ThreeDomains();
  auto placed = fleet.PlaceBatch(20, kCrossDomain, SpreadPolicy::kMinDomains);
  ASSERT_OK(placed);
  std::vector<std::string> want = Trays("c", 0, 18);
  want.push_back("b-3");
  want.push_back("b-4");
  EXPECT_EQ(*placed, want);
}

TEST(CrossDomainPolicyTest, MinDomainsFitsInOneDomainWhenItCan) {
  TestFleet fleet = ThreeDomains();
  auto placed = fleet.PlaceBatch(3, kCrossDomain, SpreadPolicy::kMinDomains);
  ASSERT_OK(placed);
  EXPECT_THAT(*placed, ElementsAre("c-0", "c-1", "c-2"));
}

TEST(CrossDomainPolicyTest, SpreadUsesAsManyDomainsAsPossibleRoundRobin) {
  TestFleet fleet = ThreeDomains();
  // Round 1: a, b, c; round 2: a, b, c; round 3: b (a is empty), c.
  auto placed = fleet.PlaceBatch(8, kCrossDomain, SpreadPolicy::kSpread);
  ASSERT_OK(placed);
  EXPECT_THAT(*placed, ElementsAre("a-2", "a-3", "b-3", "b-4", "b-5", "c-0", "c-1", "c-2"));
}

TEST(CrossDomainPolicyTest, SpreadWithMoreDomainsThanInstancesTakesOneEachInIndexOrder) {
  TestFleet fleet({{"a", "s1", 2}, {"b", "s1", 2}, {"c", "s1", 2}, {"d", "s1", 2}});
  fleet.HoldWhole({"a-0", "a-1"});  // a has nothing free: skipped
  auto placed = fleet.PlaceBatch(2, kCrossDomain, SpreadPolicy::kSpread);
  ASSERT_OK(placed);
  EXPECT_THAT(*placed, ElementsAre("b-0", "c-0"));
}

TEST(CrossDomainPolicyTest, SkipsMaintenanceAndPartlyHeldMachines) {
  TestFleet fleet({{"a", "s1", 3}, {"b", "s1", 3}});
  ASSERT_OK(fleet.alloc().SetMachineState("a-0", MachineState::kMaintenance, "fan"));
  fleet.HoldGpus("b-1", 2);
  auto placed = fleet.PlaceBatch(4, kCrossDomain, SpreadPolicy::kFill);
  ASSERT_OK(placed);
  EXPECT_THAT(*placed, ElementsAre("a-1", "a-2", "b-0", "b-2"));
}

TEST(CrossDomainPolicyTest, NotEnoughFreeInTheWholeFleet) {
  TestFleet fleet = ThreeDomains();
  absl::StatusOr<Placement> plan = fleet.alloc().PlanBatch(
      {testing::kAcme, testing::kGb200, 26, kCrossDomain, SpreadPolicy::kSpread, {}});
  EXPECT_STATUS(plan, absl::StatusCode::kResourceExhausted,
                "26 gb200-tray machines requested across NVLink domains (SPREAD), but only 25 are "
                "free (most in one domain: 18)");
  EXPECT_EQ(GetCapacityShortfall(plan.status()),
            (CapacityShortfall{testing::kGb200, CapacityUnit::kMachines, 26, 18, 25}));
}

TEST(CrossDomainPolicyTest, LargerThanTheFleetIsInfeasible) {
  TestFleet fleet = ThreeDomains();
  EXPECT_STATUS(fleet.PlaceBatch(31, kCrossDomain), absl::StatusCode::kInvalidArgument,
                "infeasible: 31 gb200-tray machines requested but the fleet has only 30");
}

TEST(CrossDomainPolicyTest, InstancesAreRecordedAsNotTopologyOptimized) {
  TestFleet fleet = ThreeDomains();
  ASSERT_OK(fleet.PlaceBatch(4, kCrossDomain, SpreadPolicy::kSpread));
  std::optional<InstanceClaim> claim = fleet.Find(fleet.last_instances()[0]);
  ASSERT_TRUE(claim.has_value());
  EXPECT_FALSE(claim->topology_optimized);
  EXPECT_TRUE(claim->whole_machine);
  EXPECT_OK(fleet.alloc().CheckInvariants());  // spanning domains is fine for these
}

}  // namespace
}  // namespace nvlsched::allocator
