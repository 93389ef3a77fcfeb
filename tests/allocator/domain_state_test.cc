// Domain health and cleaning in the allocator, on literal tables: a DEGRADED domain takes no
// strict batch but singles and cross-domain batches; a MAINTENANCE domain takes nothing and its
// running instances stay; a released machine with `clean` is CLEANING and never placed; every
// change rolls back exactly; the invariant checker agrees after each step.
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "allocator/allocator.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator::testing {
namespace {

using ::testing::Each;
using ::testing::StartsWith;

TEST(DomainStateTest, ADegradedDomainTakesNoStrictBatchButSinglesAndCrossDomainBatches) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 6}});
  Allocator& alloc = fleet.alloc();
  ASSERT_TRUE(alloc.SetDomainState("a", DomainState::kDegraded, "fabric manager: 2 links down").ok());
  ASSERT_TRUE(alloc.CheckInvariants().ok());
  // Best fit would be a (4 free); it is degraded, so b.
  absl::StatusOr<std::vector<std::string>> batch = fleet.PlaceBatch(3);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_THAT(*batch, Each(StartsWith("b-")));
  // b has 3 left: a batch of 4 fits only in a, which is degraded.
  absl::StatusOr<std::vector<std::string>> four = fleet.PlaceBatch(4);
  EXPECT_EQ(four.status().code(), absl::StatusCode::kResourceExhausted);
  // Singles and cross-domain batches still go there.
  absl::StatusOr<std::string> single = fleet.PlaceSingle(0);
  ASSERT_TRUE(single.ok());
  absl::StatusOr<std::string> gpus = fleet.PlaceSingle(2);
  ASSERT_TRUE(gpus.ok());
  absl::StatusOr<std::vector<std::string>> cross = fleet.PlaceBatch(4, /*strict=*/false);
  ASSERT_TRUE(cross.ok()) << cross.status();
  const std::vector<std::string> cross_ids = fleet.last_instances();
  // The queue's reservation for a strict batch skips it too; a cross-domain one may use it.
  const TypeIndex t = alloc.TypeIndexOf(kGb200);
  EXPECT_NE(alloc.MostFreeDomain(t, 2, {}), alloc.DomainIndexOf("a"));
  ASSERT_TRUE(alloc.CheckInvariants().ok());

  ASSERT_TRUE(alloc.SetDomainState("a", DomainState::kReady, "").ok());
  ASSERT_TRUE(fleet.Release(cross_ids).ok());
  absl::StatusOr<std::vector<std::string>> again = fleet.PlaceBatch(2);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(*again, Each(StartsWith("a-"))) << "back to READY, a takes strict batches again";
  EXPECT_TRUE(alloc.CheckInvariants().ok());
}

TEST(DomainStateTest, AMaintenanceDomainTakesNothingAndKeepsWhatRuns) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 2}});
  Allocator& alloc = fleet.alloc();
  fleet.HoldWhole({"a-0"});
  ASSERT_TRUE(alloc.SetDomainState("a", DomainState::kMaintenance, "rack power work").ok());
  ASSERT_TRUE(alloc.CheckInvariants().ok());
  EXPECT_EQ(fleet.FreeIn("a"), 0);
  EXPECT_TRUE(fleet.Find("hold-a-0").has_value()) << "running instances are untouched";
  ASSERT_TRUE(fleet.PlaceSingle(0).ok());  // b-0
  ASSERT_TRUE(fleet.PlaceSingle(0).ok());  // b-1
  EXPECT_EQ(fleet.PlaceSingle(0).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(fleet.PlaceSingle(1).status().code(), absl::StatusCode::kResourceExhausted);

  // Rolled back: a is READY with its 3 free machines again.
  const JournalMark mark = alloc.Mark();
  ASSERT_TRUE(alloc.SetDomainState("a", DomainState::kReady, "").ok());
  EXPECT_EQ(fleet.FreeIn("a"), 3);
  alloc.RollbackTo(mark);
  EXPECT_EQ(fleet.FreeIn("a"), 0);
  EXPECT_EQ(alloc.FindDomain("a")->state, DomainState::kMaintenance);
  EXPECT_EQ(alloc.FindDomain("a")->state_reason, "rack power work");
  ASSERT_TRUE(alloc.CheckInvariants().ok());

  ASSERT_TRUE(alloc.SetDomainState("a", DomainState::kReady, "").ok());
  EXPECT_EQ(fleet.FreeIn("a"), 3);
  EXPECT_TRUE(alloc.CheckInvariants().ok());
  EXPECT_EQ(alloc.SetDomainState("nope", DomainState::kReady, "").code(),
            absl::StatusCode::kNotFound);
}

TEST(DomainStateTest, AReleaseWithCleanLeavesTheMachineCleaningUntilItIsReadyAgain) {
  TestFleet fleet({{"a", "s1", 2}});
  Allocator& alloc = fleet.alloc();
  ASSERT_TRUE(fleet.PlaceSingle(0).ok());
  const std::string whole = fleet.last_instances()[0];
  ASSERT_TRUE(fleet.PlaceSingle(1).ok());
  const std::string quarter = fleet.last_instances()[0];
  ASSERT_TRUE(fleet.PlaceSingle(1).ok());
  const std::string other_quarter = fleet.last_instances()[0];
  const std::string whole_machine = fleet.Find(whole)->machine_id;
  const std::string shared_machine = fleet.Find(quarter)->machine_id;
  ASSERT_EQ(fleet.Find(other_quarter)->machine_id, shared_machine);

  const JournalMark mark = alloc.Mark();
  absl::StatusOr<ReleasePlan> plan =
      alloc.PlanRelease(fleet.HandlesOf({whole, quarter}), false, /*clean=*/true);
  ASSERT_TRUE(plan.ok());
  alloc.Apply(*plan);
  EXPECT_EQ(alloc.FindMachine(whole_machine)->state, MachineState::kCleaning);
  // The shared machine still holds a GPU-granular instance: not cleaning yet.
  EXPECT_EQ(alloc.FindMachine(shared_machine)->state, MachineState::kReady);
  EXPECT_EQ(fleet.FreeIn("a"), 0);
  EXPECT_EQ(alloc.GetDomainCapacity("a", kGb200)->cleaning_machines, 1);
  ASSERT_TRUE(alloc.CheckInvariants().ok());
  EXPECT_EQ(fleet.PlaceSingle(0).status().code(), absl::StatusCode::kResourceExhausted);

  plan = alloc.PlanRelease(fleet.HandlesOf({other_quarter}), false, /*clean=*/true);
  ASSERT_TRUE(plan.ok());
  alloc.Apply(*plan);
  EXPECT_EQ(alloc.FindMachine(shared_machine)->state, MachineState::kCleaning);
  ASSERT_TRUE(alloc.CheckInvariants().ok());

  alloc.RollbackTo(mark);
  EXPECT_EQ(alloc.FindMachine(whole_machine)->state, MachineState::kReady);
  EXPECT_EQ(alloc.FindMachine(shared_machine)->state, MachineState::kReady);
  EXPECT_EQ(alloc.GetDomainCapacity("a", kGb200)->cleaning_machines, 0);
  ASSERT_TRUE(alloc.CheckInvariants().ok());

  // Wiped: READY again, and placed.
  plan = alloc.PlanRelease(fleet.HandlesOf({whole}), false, /*clean=*/true);
  ASSERT_TRUE(plan.ok());
  alloc.Apply(*plan);
  ASSERT_TRUE(alloc.SetMachineState(whole_machine, MachineState::kReady, "wiped").ok());
  absl::StatusOr<std::string> again = fleet.PlaceSingle(0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, whole_machine);
  EXPECT_TRUE(alloc.CheckInvariants().ok());
}

TEST(ReplaceTest, AnInstanceMovesOnlyInsideItsDomainAndRollsBackExactly) {
  TestFleet fleet({{"a", "s1", 3}, {"b", "s1", 4}});
  Allocator& alloc = fleet.alloc();
  ASSERT_TRUE(fleet.PlaceBatch(2).ok());  // best fit: a-0, a-1
  const std::vector<std::string> ids = fleet.last_instances();
  ASSERT_EQ(fleet.Find(ids[0])->machine_id, "a-0");
  const std::string before = Snapshot(alloc);

  const JournalMark mark = alloc.Mark();
  absl::StatusOr<ReplacePlan> plan = alloc.PlanReplace(fleet.HandleOf(ids[0]), true, false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  alloc.Apply(*plan);
  EXPECT_EQ(fleet.Find(ids[0])->machine_id, "a-2") << "the free machine of the same domain";
  EXPECT_EQ(alloc.FindMachine("a-0")->state, MachineState::kMaintenance);
  ASSERT_TRUE(alloc.CheckInvariants().ok());
  // a is full now; b has 4 free, but a replacement never leaves its domain.
  absl::StatusOr<ReplacePlan> none = alloc.PlanReplace(fleet.HandleOf(ids[1]), false, false);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  alloc.RollbackTo(mark);
  EXPECT_EQ(Snapshot(alloc), before);
  ASSERT_TRUE(alloc.CheckInvariants().ok());

  // A GPU-granular instance goes to the machine of its domain with the fewest free GPUs that
  // holds it; the old one, left unheld, is CLEANING with `clean`.
  ASSERT_TRUE(fleet.Release(ids).ok());
  ASSERT_TRUE(fleet.PlaceSingle(3).ok());
  const std::string granular = fleet.last_instances()[0];
  const std::string granular_domain = alloc.FindMachine(fleet.Find(granular)->machine_id)->domain_id;
  plan = alloc.PlanReplace(fleet.HandleOf(granular), false, /*clean=*/true);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string old_machine = fleet.Find(granular)->machine_id;
  alloc.Apply(*plan);
  EXPECT_EQ(alloc.FindMachine(fleet.Find(granular)->machine_id)->domain_id, granular_domain);
  EXPECT_EQ(alloc.FindMachine(old_machine)->state, MachineState::kCleaning);
  EXPECT_TRUE(alloc.CheckInvariants().ok());
}

TEST(SegmentTest, ABatchInSegmentsGetsExactlyTheSegmentInEachDomainItUses) {
  // 32 machines in segments of 16 on three 18-tray domains, one of them with 2 held:
  // 16 + 16, never 18 + 14. Best fit: the domain with 16 free first.
  TestFleet fleet({{"a", "s1", 18}, {"b", "s1", 18}, {"c", "s1", 18}});
  Allocator& alloc = fleet.alloc();
  fleet.HoldWhole({"b-0", "b-1"});
  BatchRequest request{kAcme, kGb200, 32, /*topology_optimized=*/false};
  request.segment_size = 16;
  absl::StatusOr<Placement> plan = alloc.PlanBatch(request);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::map<std::string, int> per_domain;
  for (const PlacedInstance& p : plan->instances) ++per_domain[alloc.DomainAt(p.domain).id];
  EXPECT_EQ(per_domain, (std::map<std::string, int>{{"a", 16}, {"b", 16}}));

  request.count = 30;  // not a multiple
  EXPECT_EQ(alloc.PlanBatch(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.count = 64;  // 4 segments: only 3 domains exist
  EXPECT_EQ(alloc.PlanBatch(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.count = 48;  // 3 segments: b has only 16 free, so c, a and b
  EXPECT_TRUE(alloc.PlanBatch(request).ok());
  fleet.HoldWhole({"c-0", "c-1", "c-2"});  // c has 15 free: no third segment now
  EXPECT_EQ(alloc.PlanBatch(request).status().code(), absl::StatusCode::kResourceExhausted);
  request.topology_optimized = true;
  request.count = 16;
  EXPECT_EQ(alloc.PlanBatch(request).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace nvlsched::allocator::testing
