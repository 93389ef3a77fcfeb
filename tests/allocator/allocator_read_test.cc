// Tests allocator/allocator_read.cc: lookups and iteration in index order.
#include "allocator/allocator.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::kAcme;
using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::TestFleet;

TEST(AllocatorReadTest, LookupsByIdReturnTheBoundaryStructs) {
  TestFleet fleet({{"a", "s1", 2}});
  Allocator& alloc = fleet.alloc();
  EXPECT_EQ(alloc.FindInstanceType(kGb200)->gpus_per_machine, 4);
  EXPECT_EQ(alloc.FindDomain("a")->site_id, "s1");
  EXPECT_EQ(alloc.FindMachine("a-1")->tray_index, 1);
  EXPECT_EQ(alloc.FindTenant(kAcme)->org, "acme-org");
  EXPECT_EQ(alloc.FindInstanceType("x"), nullptr);
  EXPECT_EQ(alloc.FindDomain("x"), nullptr);
  EXPECT_EQ(alloc.FindMachine("x"), nullptr);
  EXPECT_EQ(alloc.FindTenant("x"), nullptr);
  EXPECT_FALSE(alloc.FindInstance(InstanceHandle{}).has_value());
  EXPECT_STATUS(alloc.QuotaUsageGpus("x", kGb200), absl::StatusCode::kNotFound, "tenant \"x\"");
  EXPECT_STATUS(alloc.QuotaUsageGpus(kAcme, "x"), absl::StatusCode::kNotFound, "instance type \"x\"");
}

TEST(AllocatorReadTest, IterationIsInIndexOrderAndSkipsRemovedMachines) {
  TestFleet fleet({{"z", "s1", 3}, {"a", "s1", 1}});
  ASSERT_OK(fleet.alloc().RemoveMachine("z-1"));
  std::vector<std::string> machines;
  fleet.alloc().ForEachMachine([&](const Machine& m) { machines.push_back(m.id); });
  EXPECT_EQ(machines, (std::vector<std::string>{"z-0", "z-2", "a-0"}));
  std::vector<std::string> domains;
  fleet.alloc().ForEachDomain([&](const Domain& d) { domains.push_back(d.id); });
  EXPECT_EQ(domains, (std::vector<std::string>{"z", "a"}));
  std::vector<std::string> types;
  fleet.alloc().ForEachInstanceType([&](const InstanceType& t) { types.push_back(t.id); });
  EXPECT_EQ(types, (std::vector<std::string>{"gb200", "h100"}));
  int tenants = 0;
  fleet.alloc().ForEachTenant([&](const Tenant&) { ++tenants; });
  EXPECT_EQ(tenants, 1);
  EXPECT_EQ(fleet.alloc().machine_count(), 3u);

  ASSERT_OK(fleet.PlaceBatch(2));
  std::vector<std::string> instances;
  fleet.alloc().ForEachInstance([&](InstanceHandle h, const InstanceClaim& c) {
    instances.push_back(fleet.IdOf(h));
    EXPECT_EQ(fleet.alloc().FindInstance(h)->machine_id, c.machine_id);
  });
  EXPECT_EQ(instances, fleet.last_instances());
}

}  // namespace
}  // namespace nvlsched::allocator
