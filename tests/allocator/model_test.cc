// Tests allocator/model.h: defaults and names used in messages.
#include "allocator/model.h"

#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(ModelTest, Names) {
  EXPECT_EQ(MachineStateName(MachineState::kReady), "READY");
  EXPECT_EQ(MachineStateName(MachineState::kMaintenance), "MAINTENANCE");
  EXPECT_EQ(MachineStateName(MachineState::kError), "ERROR");
  EXPECT_EQ(SpreadPolicyName(SpreadPolicy::kFill), "FILL");
  EXPECT_EQ(SpreadPolicyName(SpreadPolicy::kMinDomains), "MIN_DOMAINS");
  EXPECT_EQ(SpreadPolicyName(SpreadPolicy::kSpread), "SPREAD");
}

TEST(ModelTest, Defaults) {
  EXPECT_TRUE(BatchRequest{}.topology_optimized);
  EXPECT_EQ(BatchRequest{}.spread_policy, SpreadPolicy::kFill);
  EXPECT_EQ(SingleRequest{}.gpu_count, 0);  // whole machine
  EXPECT_EQ(Machine{}.state, MachineState::kReady);
  EXPECT_TRUE(InstanceClaim{}.topology_optimized);
}

}  // namespace
}  // namespace nvlsched::allocator
