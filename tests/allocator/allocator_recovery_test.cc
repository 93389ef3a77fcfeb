// Tests allocator/allocator_recovery.cc: rollback to journal marks, RestoreInstance,
// CheckInvariants on restored data.
#include "allocator/allocator.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::kAcme;
using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::Snapshot;
using ::nvlsched::allocator::testing::TestFleet;
using ::nvlsched::allocator::testing::Trays;

// A placement planned now, as machine ids: equal states must plan equally.
std::vector<std::string> NextPlans(Allocator& alloc) {
  std::vector<std::string> out;
  for (int k : {1, 2, 3}) {
    absl::StatusOr<Placement> plan = alloc.PlanBatch({kAcme, kGb200, k});
    out.push_back(plan.ok() ? alloc.MachineAt(plan->instances[0].machine).id : plan.status().ToString());
    plan = alloc.PlanSingle({kAcme, kGb200, k});
    out.push_back(plan.ok() ? alloc.MachineAt(plan->instances[0].machine).id : plan.status().ToString());
  }
  return out;
}

TEST(AllocatorRecoveryTest, RollbackRestoresExactlyTheStateAtTheMark) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 6}, {"c", "s2", 3}});
  ASSERT_OK(fleet.PlaceBatch(3));
  std::vector<std::string> early = fleet.last_instances();
  ASSERT_OK(fleet.PlaceSingle(1));
  fleet.alloc().ClearJournal();
  std::string before = Snapshot(fleet.alloc());
  std::vector<std::string> plans_before = NextPlans(fleet.alloc());
  JournalMark mark = fleet.alloc().Mark();

  // A group touching every kind of mutation.
  ASSERT_OK(fleet.PlaceBatch(4, false, SpreadPolicy::kSpread, {"p1"}));
  ASSERT_OK(fleet.Release({early[0]}, /*health_issue=*/true));
  ASSERT_OK(fleet.Release({early[1]}));
  ASSERT_OK(fleet.PlaceSingle(2, "", {"p1"}));
  ASSERT_OK(fleet.PlaceBatch(2));  // may reuse nothing released in this group
  ASSERT_OK(fleet.alloc().SetMachineState("c-2", MachineState::kError, "psu"));
  ASSERT_OK(fleet.alloc().UpsertDomain({"d", "rack d", "s2"}));
  ASSERT_OK(fleet.alloc().UpsertDomain({"a", "renamed", "s3"}));
  ASSERT_OK(fleet.alloc().UpsertMachine({"d-0", "d", 0, kGb200, 4}));
  ASSERT_OK(fleet.alloc().UpsertMachine({"d-1", "d", 1, kGb200, 2}));
  ASSERT_OK(fleet.alloc().RemoveMachine("d-1"));
  ASSERT_OK(fleet.alloc().RemoveMachine("c-1"));
  ASSERT_OK(fleet.alloc().UpsertMachine({"c-9", "c", 9, kGb200, 4}));
  ASSERT_OK(fleet.alloc().UpsertInstanceType({"b300", "b300-tray", "B300", 4}));
  ASSERT_OK(fleet.alloc().UpsertInstanceType({kGb200, "renamed", "GB200", 4}));
  ASSERT_OK(fleet.alloc().UpsertTenant({"beta", "b", "beta", {{"b300", 3}}}));
  ASSERT_OK(fleet.alloc().UpsertTenant({kAcme, "acme-org", "acme", {{kGb200, 7}}}));
  ASSERT_OK(fleet.alloc().CheckInvariants());
  ASSERT_NE(Snapshot(fleet.alloc()), before);

  fleet.alloc().RollbackTo(mark);
  EXPECT_OK(fleet.alloc().CheckInvariants());
  EXPECT_EQ(Snapshot(fleet.alloc()), before);
  EXPECT_EQ(NextPlans(fleet.alloc()), plans_before);
}

TEST(AllocatorRecoveryTest, NestedMarksRollBackStepByStep) {
  TestFleet fleet({{"a", "s1", 4}});
  std::string s0 = Snapshot(fleet.alloc());
  JournalMark m0 = fleet.alloc().Mark();
  ASSERT_OK(fleet.PlaceBatch(2));
  std::string s1 = Snapshot(fleet.alloc());
  JournalMark m1 = fleet.alloc().Mark();
  ASSERT_OK(fleet.Release(fleet.last_instances()));
  ASSERT_OK(fleet.PlaceBatch(3));
  fleet.alloc().RollbackTo(m1);
  EXPECT_EQ(Snapshot(fleet.alloc()), s1);
  fleet.alloc().RollbackTo(m0);
  EXPECT_EQ(Snapshot(fleet.alloc()), s0);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorRecoveryTest, ClearJournalMakesReleasedSlotsReusableAndStartsANewEpoch) {
  TestFleet fleet({{"a", "s1", 2}});
  JournalMark old = fleet.alloc().Mark();
  ASSERT_OK(fleet.PlaceBatch(2));
  ASSERT_OK(fleet.Release(fleet.last_instances()));
  fleet.alloc().ClearJournal();
  JournalMark fresh = fleet.alloc().Mark();
  EXPECT_EQ(fresh.position, 0u);
  EXPECT_NE(fresh.epoch, old.epoch);
  ASSERT_OK(fleet.PlaceBatch(2));
  std::string after_place = Snapshot(fleet.alloc());
  ASSERT_OK(fleet.Release(fleet.last_instances()));
  fleet.alloc().RollbackTo(fresh);
  EXPECT_EQ(fleet.alloc().instance_count(), 0u);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorRecoveryTest, RollbackRevivesTheHandlesOfReleasedInstances) {
  TestFleet fleet({{"a", "s1", 4}});
  ASSERT_OK(fleet.PlaceBatch(3));
  std::vector<std::string> batch = fleet.last_instances();
  fleet.alloc().ClearJournal();
  std::string before = Snapshot(fleet.alloc());
  JournalMark mark = fleet.alloc().Mark();

  ASSERT_OK(fleet.Release({batch[0], batch[2]}));
  ASSERT_OK(fleet.Release({batch[1]}));  // the last one: the batch ends
  EXPECT_FALSE(fleet.Find(batch[1]).has_value());
  fleet.alloc().RollbackTo(mark);

  EXPECT_EQ(Snapshot(fleet.alloc()), before);  // same handles (Snapshot lists them)
  for (const std::string& id : batch) {
    std::optional<InstanceClaim> claim = fleet.Find(id);
    ASSERT_TRUE(claim.has_value()) << id;
    EXPECT_EQ(claim->batch_id, "batch-0");
  }
  ASSERT_OK(fleet.Release(batch));  // reachable by the old handles again
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorRecoveryTest, RollbackLeavesTheHandlesOfAddedInstancesStaleForGood) {
  TestFleet fleet({{"a", "s1", 4}});
  fleet.alloc().ClearJournal();
  JournalMark mark = fleet.alloc().Mark();
  ASSERT_OK(fleet.PlaceBatch(2));
  std::vector<InstanceHandle> rolled_back = fleet.HandlesOf(fleet.last_instances());
  fleet.alloc().RollbackTo(mark);
  for (InstanceHandle h : rolled_back) {
    EXPECT_FALSE(fleet.alloc().FindInstance(h).has_value());
    EXPECT_STATUS(fleet.alloc().PlanRelease({h}, false), absl::StatusCode::kNotFound,
                  "is not known");
  }
  // The same slots again, each with a generation the rolled-back handles never had.
  ASSERT_OK(fleet.PlaceBatch(2));
  std::vector<InstanceHandle> again = fleet.HandlesOf(fleet.last_instances());
  for (size_t i = 0; i < again.size(); ++i) {
    EXPECT_NE(again[i], rolled_back[i]);
    EXPECT_FALSE(fleet.alloc().FindInstance(rolled_back[i]).has_value());
  }
  EXPECT_EQ(again[0].slot, rolled_back[0].slot);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorRecoveryTest, RollbackOfARestoreEndsTheBatchItStarted) {
  TestFleet fleet({{"a", "s1", 3}});
  InstanceClaim claim;
  claim.tenant_id = kAcme;
  claim.instance_type_id = kGb200;
  claim.machine_id = "a-0";
  claim.batch_id = "restored";
  JournalMark mark = fleet.alloc().Mark();
  absl::StatusOr<InstanceHandle> first = fleet.alloc().RestoreInstance(claim);
  ASSERT_OK(first);
  fleet.alloc().RollbackTo(mark);
  EXPECT_FALSE(fleet.alloc().FindInstance(*first).has_value());
  EXPECT_OK(fleet.alloc().CheckInvariants());
  // Restoring again starts the batch afresh, and a second instance joins it.
  ASSERT_OK(fleet.alloc().RestoreInstance(claim));
  claim.machine_id = "a-1";
  absl::StatusOr<InstanceHandle> second = fleet.alloc().RestoreInstance(claim);
  ASSERT_OK(second);
  EXPECT_EQ(fleet.alloc().FindInstance(*second)->batch_id, "restored");
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

InstanceClaim Claim(std::string machine, bool whole, int gpus = 0, std::string batch = "",
                    bool strict = true) {
  InstanceClaim claim;
  claim.tenant_id = kAcme;
  claim.instance_type_id = kGb200;
  claim.machine_id = std::move(machine);
  claim.whole_machine = whole;
  claim.gpu_count = gpus;
  claim.batch_id = std::move(batch);
  claim.topology_optimized = strict;
  return claim;
}

TEST(AllocatorRecoveryTest, RestoreInstanceRefusesWhatWouldBreakInvariantOne) {
  TestFleet fleet({{"a", "s1", 3}});
  Allocator& alloc = fleet.alloc();
  ASSERT_OK(fleet.Restore("w", Claim("a-0", true)));
  ASSERT_OK(fleet.Restore("g1", Claim("a-1", false, 3)));
  EXPECT_STATUS(alloc.RestoreInstance(Claim("a-0", true)), absl::StatusCode::kFailedPrecondition,
                "invariant 1: the restored instance would share machine a-0, which instance w "
                "already holds whole");
  EXPECT_STATUS(alloc.RestoreInstance(Claim("a-0", false, 1)),
                absl::StatusCode::kFailedPrecondition, "which instance w already holds whole");
  EXPECT_STATUS(alloc.RestoreInstance(Claim("a-1", true)), absl::StatusCode::kFailedPrecondition,
                "would hold machine a-1 whole, but 1 GPU-granular instance(s) already hold 3");
  EXPECT_STATUS(alloc.RestoreInstance(Claim("a-1", false, 2)),
                absl::StatusCode::kFailedPrecondition,
                "would bring machine a-1 to 5 GPUs held, more than its 4");
  EXPECT_STATUS(alloc.RestoreInstance(Claim("a-2", false, 5)),
                absl::StatusCode::kInvalidArgument, "it must hold 1..4");
  EXPECT_STATUS(alloc.RestoreInstance(Claim("a-9", true)), absl::StatusCode::kNotFound,
                "the restored instance names machine \"a-9\", which is not known");
  InstanceClaim wrong_type = Claim("a-2", true);
  wrong_type.instance_type_id = testing::kH100;
  EXPECT_STATUS(alloc.RestoreInstance(wrong_type), absl::StatusCode::kFailedPrecondition,
                "is of instance type h100 but machine a-2 is of type gb200");
  InstanceClaim no_tenant = Claim("a-2", true);
  no_tenant.tenant_id = "ghost";
  EXPECT_STATUS(alloc.RestoreInstance(no_tenant), absl::StatusCode::kNotFound,
                "names tenant \"ghost\", which is not known");
  InstanceClaim empty_partition = Claim("a-2", true);
  empty_partition.nvlink_partition_ids = {""};
  EXPECT_STATUS(alloc.RestoreInstance(empty_partition), absl::StatusCode::kInvalidArgument,
                "lists an empty NVLink partition id");
  EXPECT_OK(alloc.CheckInvariants());
  EXPECT_EQ(alloc.instance_count(), 2u);
}

TEST(AllocatorRecoveryTest, RestoreHandsOutADistinctHandlePerInstance) {
  TestFleet fleet({{"a", "s1", 2}});
  absl::StatusOr<InstanceHandle> a = fleet.alloc().RestoreInstance(Claim("a-0", true));
  absl::StatusOr<InstanceHandle> b = fleet.alloc().RestoreInstance(Claim("a-1", false, 2));
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(fleet.alloc().FindInstance(*a)->machine_id, "a-0");
  EXPECT_EQ(fleet.alloc().FindInstance(*b)->gpu_count, 2);
}

TEST(AllocatorRecoveryTest, RestoredStrictBatchSpanningDomainsFailsTheInvariantCheck) {
  TestFleet fleet({{"a", "s1", 2}, {"b", "s1", 2}});
  Allocator& alloc = fleet.alloc();
  ASSERT_OK(fleet.Restore("x1", Claim("a-0", true, 0, "cross", /*strict=*/false)));
  ASSERT_OK(fleet.Restore("x2", Claim("b-0", true, 0, "cross", /*strict=*/false)));
  EXPECT_OK(alloc.CheckInvariants());
  ASSERT_OK(fleet.Restore("s1", Claim("a-1", true, 0, "strict")));
  ASSERT_OK(fleet.Restore("s2", Claim("b-1", true, 0, "strict")));
  EXPECT_STATUS(alloc.CheckInvariants(), absl::StatusCode::kFailedPrecondition,
                "invariant 2: topology-optimized batch strict spans NVLink domains: instance s1 is "
                "in domain rack a, instance s2 in domain rack b");
}

TEST(AllocatorRecoveryTest, RestoreKeepsPartitionsAndDrainedMachines) {
  TestFleet fleet({{"a", "s1", 3}, {"b", "s1", 3}});
  ASSERT_OK(fleet.alloc().SetMachineState("b-0", MachineState::kMaintenance, "held and drained"));
  InstanceClaim claim = Claim("b-0", true);
  claim.nvlink_partition_ids = {"p7"};
  ASSERT_OK(fleet.Restore("r", claim));
  EXPECT_EQ(fleet.Find("r")->nvlink_partition_ids, std::vector<std::string>{"p7"});
  auto placed = fleet.PlaceBatch(2, true, SpreadPolicy::kFill, {"p7"});  // bound to b
  ASSERT_OK(placed);
  EXPECT_EQ(*placed, (std::vector<std::string>{"b-1", "b-2"}));
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

}  // namespace
}  // namespace nvlsched::allocator
