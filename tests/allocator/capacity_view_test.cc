// Tests allocator/capacity_view.h through Allocator::Capacity / GetDomainCapacity.
#include "allocator/capacity_view.h"

#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::TestFleet;
using ::nvlsched::allocator::testing::Trays;

TEST(CapacityViewTest, CountsFreeMachinesGpusBatchesAndStrandedMachines) {
  // domain | machines | held              | free machines | free GPUs
  // a      | 4        | a-0..a-2 whole    | 1 (stranded)  | 4
  // b      | 4        | b-0 3 GPUs        | 3             | 1 + 12
  // c      | 6        | -                 | 6 (fully free)| 24
  // d      | 2        | d-1 in MAINTENANCE| 1 (stranded)  | 4
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}, {"c", "s1", 6}, {"d", "s2", 2}});
  fleet.HoldWhole(Trays("a", 0, 3));
  fleet.HoldGpus("b-0", 3);
  ASSERT_OK(fleet.alloc().SetMachineState("d-1", MachineState::kMaintenance, "psu"));

  absl::StatusOr<CapacityView> view = fleet.alloc().Capacity(kGb200);
  ASSERT_OK(view);
  EXPECT_EQ(view->instance_type_id, kGb200);
  EXPECT_EQ(view->total_machines, 16);
  EXPECT_EQ(view->free_machines, 11);
  EXPECT_EQ(view->free_gpus, 4 + 13 + 24 + 4);
  EXPECT_EQ(view->largest_strict_batch, 6);
  EXPECT_EQ(view->largest_domain, 6);
  EXPECT_EQ(view->fully_free_domains, 1);
  EXPECT_EQ(view->stranded_machines, 2);

  absl::StatusOr<DomainCapacity> b = fleet.alloc().GetDomainCapacity("b", kGb200);
  ASSERT_OK(b);
  EXPECT_EQ(b->total_machines, 4);
  EXPECT_EQ(b->free_machines, 3);
  EXPECT_EQ(b->free_gpus, 13);

  std::vector<std::string> domains;
  ASSERT_OK(fleet.alloc().ForEachDomainCapacity(
      kGb200, [&](const DomainCapacity& d) { domains.push_back(d.domain_id); }));
  EXPECT_EQ(domains, (std::vector<std::string>{"a", "b", "c", "d"}));
  ASSERT_OK(fleet.alloc().ForEachDomainCapacity(
      testing::kH100, [&](const DomainCapacity&) { ADD_FAILURE() << "no h100 machines"; }));
}

TEST(CapacityViewTest, UnknownIdsAreNotFound) {
  TestFleet fleet({{"a", "s1", 1}});
  EXPECT_STATUS(fleet.alloc().Capacity("nope"), absl::StatusCode::kNotFound,
                "instance type \"nope\" is not known");
  EXPECT_STATUS(fleet.alloc().GetDomainCapacity("zz", kGb200), absl::StatusCode::kNotFound,
                "domain \"zz\" is not known");
}

}  // namespace
}  // namespace nvlsched::allocator
