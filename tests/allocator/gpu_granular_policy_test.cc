// Tests allocator/gpu_granular_policy.h through Allocator::PlanSingle(gpu_count > 0).
#include "allocator/gpu_granular_policy.h"

#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::MachineRow;
using ::nvlsched::allocator::testing::TestFleet;

TEST(GpuGranularPolicyTest, TakesTheMachineWithFewestFreeGpusThatStillFit) {
  // machine | GPUs held | free
  // a-0     | 3         | 1
  // a-1     | 2         | 2
  // a-2     | -         | 4
  TestFleet fleet({{"a", "s1", 3}});
  fleet.HoldGpus("a-0", 3);
  fleet.HoldGpus("a-1", 2);
  EXPECT_EQ(*fleet.PlaceSingle(2), "a-1");  // a-0 is too small
  EXPECT_EQ(*fleet.PlaceSingle(1), "a-0");
  EXPECT_EQ(*fleet.PlaceSingle(3), "a-2");  // only a whole free machine fits
  EXPECT_EQ(*fleet.PlaceSingle(1), "a-2");  // now a-2 has 1 free
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(GpuGranularPolicyTest, PrefersDomainsAlreadyBrokenOverFullyFreeOnes) {
  // domain | machines | held      -> class
  // a      | 4        | -         -> fully free
  // b      | 4        | b-0 whole -> broken
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}});
  fleet.HoldWhole({"b-0"});
  EXPECT_EQ(*fleet.PlaceSingle(1), "b-1");
  EXPECT_EQ(*fleet.PlaceSingle(4), "b-2");  // whole free machines: broken domain first
  EXPECT_EQ(fleet.FreeIn("a"), 4);
}

TEST(GpuGranularPolicyTest, FewerFreeGpusBeatsTheBrokenDomainPreference) {
  // A 3-GPU machine in a fully free domain vs 4-GPU machines in a broken domain, for 3 GPUs:
  // fewest free GPUs that fit comes first.
  TestFleet fleet({{"b", "s1", 3}});
  fleet.AddDomain("a", "s1");
  fleet.AddMachines({{"a-0", "a", 0, /*gpus=*/3}});
  fleet.HoldWhole({"b-0"});
  EXPECT_EQ(*fleet.PlaceSingle(3), "a-0");
}

TEST(GpuGranularPolicyTest, BrokenDomainsTieByIndexThenTray) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}});
  fleet.HoldWhole({"a-0", "b-0"});
  EXPECT_EQ(*fleet.PlaceSingle(2), "a-1");
  EXPECT_EQ(*fleet.PlaceSingle(2), "a-1");  // exactly fills a-1
  EXPECT_EQ(*fleet.PlaceSingle(2), "a-2");
}

TEST(GpuGranularPolicyTest, WithEveryDomainFullyFreeTakesLowestDomainAndTray) {
  TestFleet fleet({{"a", "s1", 2}, {"b", "s1", 2}});
  EXPECT_EQ(*fleet.PlaceSingle(1), "a-0");
  EXPECT_EQ(*fleet.PlaceSingle(1), "a-0");  // a is broken now, and a-0 has the fewest free
}

TEST(GpuGranularPolicyTest, ADomainWithADrainedMachineCountsAsBroken) {
  TestFleet fleet({{"a", "s1", 2}, {"b", "s1", 2}});
  ASSERT_OK(fleet.alloc().SetMachineState("b-1", MachineState::kMaintenance, "nic"));
  EXPECT_EQ(*fleet.PlaceSingle(1), "b-0");
}

TEST(GpuGranularPolicyTest, NeverUsesAWholeHeldOrNotReadyMachine) {
  TestFleet fleet({{"a", "s1", 3}});
  fleet.HoldWhole({"a-0"});
  ASSERT_OK(fleet.alloc().SetMachineState("a-1", MachineState::kError, "gpu fell off the bus"));
  EXPECT_EQ(*fleet.PlaceSingle(1), "a-2");
}

TEST(GpuGranularPolicyTest, PartlyHeldMachinesAreNotGivenToWholeMachineRequests) {
  TestFleet fleet({{"a", "s1", 2}});
  fleet.HoldGpus("a-0", 1);
  fleet.HoldGpus("a-1", 1);
  EXPECT_STATUS(fleet.PlaceSingle(0), absl::StatusCode::kResourceExhausted,
                "no READY gb200-tray machine is free");
  EXPECT_STATUS(fleet.PlaceBatch(1), absl::StatusCode::kResourceExhausted,
                "not enough free capacity now");
  EXPECT_EQ(*fleet.PlaceSingle(3), "a-0");
}

TEST(GpuGranularPolicyTest, NoMachineFitsCarriesAGpuShortfall) {
  TestFleet fleet({{"a", "s1", 2}});
  fleet.HoldGpus("a-0", 2);
  fleet.HoldGpus("a-1", 1);
  absl::StatusOr<Placement> plan =
      fleet.alloc().PlanSingle({testing::kAcme, testing::kGb200, 4, "", {}});
  EXPECT_STATUS(plan, absl::StatusCode::kResourceExhausted,
                "no READY gb200-tray machine has 4 free GPUs; the most free on one machine is 3 "
                "(5 free GPUs in total)");
  EXPECT_EQ(GetCapacityShortfall(plan.status()),
            (CapacityShortfall{testing::kGb200, CapacityUnit::kGpus, 4, 3, 5}));
}

TEST(GpuGranularPolicyTest, GpuCountOutsideTheMachineIsInvalid) {
  TestFleet fleet({{"a", "s1", 2}});
  EXPECT_STATUS(fleet.PlaceSingle(5), absl::StatusCode::kInvalidArgument,
                "gpu_count 5 is more than the 4 GPUs a gb200-tray machine has; ask for 1..4");
  EXPECT_STATUS(fleet.PlaceSingle(-1), absl::StatusCode::kInvalidArgument,
                "gpu_count must be 0 (whole machine) or a positive GPU count");
}

TEST(GpuGranularPolicyTest, SiteFilterRestrictsCandidates) {
  TestFleet fleet({{"a", "s1", 2}, {"b", "s2", 2}});
  fleet.HoldGpus("a-0", 3);  // the best machine overall, but in s1
  EXPECT_EQ(*fleet.PlaceSingle(1, "s2"), "b-0");
  EXPECT_EQ(*fleet.PlaceSingle(1, "s2"), "b-0");
  EXPECT_EQ(*fleet.PlaceSingle(1), "a-0");
}

TEST(GpuGranularPolicyTest, PartitionAffinityKeepsAPartitionInItsDomain) {
  TestFleet fleet({{"a", "s1", 2}, {"b", "s1", 2}});
  fleet.HoldGpus("a-0", 3);                                 // a-0: the best fit overall
  EXPECT_EQ(*fleet.PlaceSingle(2, "", {"p1"}), "a-1");      // not bound yet: a-1 (a is broken)
  fleet.HoldWhole({"b-0"});
  EXPECT_EQ(*fleet.PlaceSingle(1, "", {"p2"}), "a-0");      // p2 starts at the best fit
  EXPECT_EQ(*fleet.PlaceSingle(2, "", {"p1"}), "a-1");      // p1 stays in a
  EXPECT_STATUS(fleet.PlaceSingle(1, "", {"p1"}), absl::StatusCode::kResourceExhausted,
                "NVLink logical partition p1 has instances in domain rack a");
  EXPECT_EQ(*fleet.PlaceSingle(1), "b-1");
}

}  // namespace
}  // namespace nvlsched::allocator
