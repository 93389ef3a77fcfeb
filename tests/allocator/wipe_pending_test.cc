// Machine::wipe_pending in the allocator, on literal tables: a release with `clean` that leaves
// a machine unheld marks it in any state (a drained machine stays drained, a READY one goes
// CLEANING); a health issue keeps it; SetMachineState READY clears it, MAINTENANCE and ERROR keep
// it; UpsertMachine refuses READY with it; every change rolls back exactly, and
// CheckInvariants says a machine waiting for a wipe is never READY nor held.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "allocator/allocator.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator::testing {
namespace {

using ::testing::HasSubstr;

TEST(WipePendingTest, AReleaseWithCleanMarksTheMachineInAnyState) {
  TestFleet fleet({{"a", "s1", 4}});
  Allocator& alloc = fleet.alloc();
  ASSERT_TRUE(fleet.PlaceSingle(0).ok());
  const std::string drained = fleet.last_instances()[0];
  ASSERT_TRUE(fleet.PlaceSingle(0).ok());
  const std::string errored = fleet.last_instances()[0];
  ASSERT_TRUE(fleet.PlaceSingle(0).ok());
  const std::string ready = fleet.last_instances()[0];
  const std::string m_drained = fleet.Find(drained)->machine_id;
  const std::string m_errored = fleet.Find(errored)->machine_id;
  const std::string m_ready = fleet.Find(ready)->machine_id;
  ASSERT_TRUE(alloc.SetMachineState(m_drained, MachineState::kMaintenance, "bad DIMM").ok());
  ASSERT_TRUE(alloc.SetMachineState(m_errored, MachineState::kError, "PSU").ok());
  EXPECT_FALSE(alloc.FindMachine(m_drained)->wipe_pending) << "held: nothing to wipe yet";

  const JournalMark mark = alloc.Mark();
  absl::StatusOr<ReleasePlan> plan =
      alloc.PlanRelease(fleet.HandlesOf({drained, errored, ready}), false, /*clean=*/true);
  ASSERT_TRUE(plan.ok());
  alloc.Apply(*plan);
  // | machine   | state before | state after | wipe_pending |
  // | m_drained | MAINTENANCE  | MAINTENANCE | yes          |
  // | m_errored | ERROR        | ERROR       | yes          |
  // | m_ready   | READY        | CLEANING    | yes          |
  EXPECT_EQ(alloc.FindMachine(m_drained)->state, MachineState::kMaintenance);
  EXPECT_EQ(alloc.FindMachine(m_drained)->state_reason, "bad DIMM");
  EXPECT_TRUE(alloc.FindMachine(m_drained)->wipe_pending);
  EXPECT_EQ(alloc.FindMachine(m_errored)->state, MachineState::kError);
  EXPECT_TRUE(alloc.FindMachine(m_errored)->wipe_pending);
  EXPECT_EQ(alloc.FindMachine(m_ready)->state, MachineState::kCleaning);
  EXPECT_TRUE(alloc.FindMachine(m_ready)->wipe_pending);
  ASSERT_TRUE(alloc.CheckInvariants().ok());

  // MAINTENANCE and ERROR keep it; READY (the caller's word that it was wiped) clears it.
  ASSERT_TRUE(alloc.SetMachineState(m_ready, MachineState::kMaintenance, "rack work").ok());
  EXPECT_TRUE(alloc.FindMachine(m_ready)->wipe_pending);
  ASSERT_TRUE(alloc.SetMachineState(m_drained, MachineState::kError, "worse").ok());
  EXPECT_TRUE(alloc.FindMachine(m_drained)->wipe_pending);
  ASSERT_TRUE(alloc.SetMachineState(m_drained, MachineState::kReady, "wiped").ok());
  EXPECT_FALSE(alloc.FindMachine(m_drained)->wipe_pending);
  ASSERT_TRUE(alloc.CheckInvariants().ok());

  // All rolled back exactly: held again, nothing pending.
  alloc.RollbackTo(mark);
  for (const std::string& m : {m_drained, m_errored, m_ready}) {
    EXPECT_FALSE(alloc.FindMachine(m)->wipe_pending) << m;
  }
  EXPECT_EQ(alloc.FindMachine(m_drained)->state, MachineState::kMaintenance);
  EXPECT_EQ(alloc.FindMachine(m_ready)->state, MachineState::kReady);
  EXPECT_TRUE(fleet.Find(drained).has_value());
  ASSERT_TRUE(alloc.CheckInvariants().ok());

  // Without `clean` (--require_cleaning=false) nothing waits.
  plan = alloc.PlanRelease(fleet.HandlesOf({drained}), false, /*clean=*/false);
  ASSERT_TRUE(plan.ok());
  alloc.Apply(*plan);
  EXPECT_FALSE(alloc.FindMachine(m_drained)->wipe_pending);
  EXPECT_TRUE(alloc.CheckInvariants().ok());
}

TEST(WipePendingTest, AHealthIssueAndAReplacementKeepTheWipe) {
  TestFleet fleet({{"a", "s1", 4}});
  Allocator& alloc = fleet.alloc();
  ASSERT_TRUE(fleet.PlaceSingle(0).ok());
  const std::string sick = fleet.last_instances()[0];
  const std::string m_sick = fleet.Find(sick)->machine_id;
  absl::StatusOr<ReleasePlan> plan =
      alloc.PlanRelease(fleet.HandlesOf({sick}), /*machine_health_issue=*/true, /*clean=*/true);
  ASSERT_TRUE(plan.ok());
  alloc.Apply(*plan);
  EXPECT_EQ(alloc.FindMachine(m_sick)->state, MachineState::kMaintenance);
  EXPECT_TRUE(alloc.FindMachine(m_sick)->wipe_pending);

  ASSERT_TRUE(fleet.PlaceSingle(0).ok());
  const std::string moving = fleet.last_instances()[0];
  const std::string m_from = fleet.Find(moving)->machine_id;
  ASSERT_TRUE(alloc.SetMachineState(m_from, MachineState::kMaintenance, "fan").ok());
  absl::StatusOr<ReplacePlan> replace =
      alloc.PlanReplace(fleet.HandlesOf({moving})[0], false, /*clean=*/true);
  ASSERT_TRUE(replace.ok()) << replace.status();
  alloc.Apply(*replace);
  EXPECT_EQ(alloc.FindMachine(m_from)->state, MachineState::kMaintenance);
  EXPECT_EQ(alloc.FindMachine(m_from)->state_reason, "fan");
  EXPECT_TRUE(alloc.FindMachine(m_from)->wipe_pending);
  EXPECT_TRUE(alloc.CheckInvariants().ok());
}

TEST(WipePendingTest, UpsertMachineKeepsTheRuleAndTheCheckerCatchesWhatBreaksIt) {
  TestFleet fleet({{"a", "s1", 2}});
  Allocator& alloc = fleet.alloc();
  Machine machine = *alloc.FindMachine("a-0");
  machine.wipe_pending = true;
  absl::Status refused = alloc.UpsertMachine(machine);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("READY but waits for a wipe"));
  EXPECT_FALSE(alloc.FindMachine("a-0")->wipe_pending);

  // A CLEANING machine waits for its wipe by definition.
  machine.state = MachineState::kCleaning;
  machine.wipe_pending = false;
  ASSERT_TRUE(alloc.UpsertMachine(machine).ok());
  EXPECT_TRUE(alloc.FindMachine("a-0")->wipe_pending);
  // Upserted without it in MAINTENANCE (what CompleteCleaning of a drained machine does).
  machine.state = MachineState::kMaintenance;
  ASSERT_TRUE(alloc.UpsertMachine(machine).ok());
  EXPECT_FALSE(alloc.FindMachine("a-0")->wipe_pending);
  machine.wipe_pending = true;
  ASSERT_TRUE(alloc.UpsertMachine(machine).ok());
  EXPECT_TRUE(alloc.CheckInvariants().ok());

  // Restored data that holds a machine waiting for a wipe breaks the invariant.
  InstanceClaim claim;
  claim.tenant_id = kAcme;
  claim.instance_type_id = kGb200;
  claim.machine_id = "a-0";
  claim.gpu_count = 4;
  ASSERT_TRUE(alloc.RestoreInstance(claim).ok());
  absl::Status broken = alloc.CheckInvariants();
  EXPECT_EQ(broken.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(broken.message(), HasSubstr("a-0 waits for a wipe (wipe_pending) but is held"));
}

}  // namespace
}  // namespace nvlsched::allocator::testing
