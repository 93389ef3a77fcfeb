// Spare trays (Domain::spare_machines) in the allocator, on literal tables: no new placement
// (strict batch, cross-domain batch, segments, whole single, a GPU-granular single opening a
// fresh machine, preemption) ever takes a domain's last `spare_machines` free machines;
// a strict batch larger than size - spares everywhere is infeasible and says why; a
// replacement may take a spare; changing spares is journaled and rolls back exactly; the
// invariant checker agrees after each step.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "allocator/allocator.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator::testing {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

// The machines placed, or the error as the only element, so a failure shows its message.
std::vector<std::string> Ok(const absl::StatusOr<std::vector<std::string>>& placed) {
  return placed.ok() ? *placed : std::vector<std::string>{placed.status().ToString()};
}
std::string Ok(const absl::StatusOr<std::string>& placed) {
  return placed.ok() ? *placed : placed.status().ToString();
}

void SetSpares(Allocator& alloc, const std::string& domain, int spares) {
  Domain spec = *alloc.FindDomain(domain);
  spec.spare_machines = spares;
  absl::Status status = alloc.UpsertDomain(spec);
  ASSERT_TRUE(status.ok()) << status;
}

int SparesIn(Allocator& alloc, const std::string& domain) {
  absl::StatusOr<DomainCapacity> cap = alloc.GetDomainCapacity(domain, kGb200);
  return cap.ok() ? cap->spare_machines : -1;
}

TEST(SpareMachinesTest, AStrictBatchNeverTakesTheSpares) {
  // a: 4 trays, 2 spare -> 2 placeable; b: 3 trays, no spares -> 3 placeable.
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 3}});
  Allocator& alloc = fleet.alloc();
  SetSpares(alloc, "a", 2);
  ASSERT_OK(alloc.CheckInvariants());
  EXPECT_EQ(fleet.FreeIn("a"), 2);
  EXPECT_EQ(SparesIn(alloc, "a"), 2);
  // Best fit for 3 would be... a has 4 free but only 2 placeable: b.
  EXPECT_THAT(Ok(fleet.PlaceBatch(3)), ElementsAre("b-0", "b-1", "b-2"));
  // 2 fit a, lowest trays.
  EXPECT_THAT(Ok(fleet.PlaceBatch(2)), ElementsAre("a-0", "a-1"));
  // a-2 and a-3 are free, but spares: nothing more fits anywhere.
  EXPECT_STATUS(fleet.PlaceBatch(1), absl::StatusCode::kResourceExhausted, "not enough free");
  EXPECT_STATUS(fleet.PlaceBatch(2), absl::StatusCode::kResourceExhausted, "most free in any domain is 0");
  EXPECT_EQ(alloc.FindMachine("a-2")->state, MachineState::kReady);
  EXPECT_EQ(SparesIn(alloc, "a"), 2);
  absl::StatusOr<CapacityView> cap = alloc.Capacity(kGb200);
  ASSERT_TRUE(cap.ok());
  EXPECT_EQ(cap->available_machines, 0);
  EXPECT_EQ(cap->free_machines, 2);
  EXPECT_EQ(cap->spare_machines, 2);
  EXPECT_EQ(cap->largest_strict_batch, 0);
  EXPECT_EQ(cap->largest_domain, 3) << "a can ever place 4 - 2 = 2, b 3";
  EXPECT_OK(alloc.CheckInvariants());
}

TEST(SpareMachinesTest, AStrictBatchLargerThanSizeLessSparesIsInfeasibleAndSaysWhy) {
  TestFleet fleet({{"a", "s1", 18}, {"b", "s1", 18}});
  Allocator& alloc = fleet.alloc();
  SetSpares(alloc, "a", 2);
  SetSpares(alloc, "b", 2);
  absl::StatusOr<std::vector<std::string>> batch = fleet.PlaceBatch(17);
  EXPECT_STATUS(batch, absl::StatusCode::kInvalidArgument,
                "infeasible: a topology-optimized batch of 17 gb200-tray machines can never be "
                "placed in one NVLink domain: at most 16 of a domain's 18 machines can be "
                "placed (NVLink domain rack a): 2 are spare trays kept for ReplaceInstance; ask "
                "for at most 16");
  // Larger than any domain at all: the old message.
  EXPECT_STATUS(fleet.PlaceBatch(19), absl::StatusCode::kInvalidArgument,
                "the largest domain for that type has 18 machines");
  // 16 fits, then 16 in b; the fleet's 4 spares stay free.
  EXPECT_THAT(Ok(fleet.PlaceBatch(16)), Each(StartsWith("a-")));
  EXPECT_THAT(Ok(fleet.PlaceBatch(16)), Each(StartsWith("b-")));
  EXPECT_EQ(SparesIn(alloc, "a") + SparesIn(alloc, "b"), 4);
  // Only one domain with 1 spare: 17 becomes feasible there.
  SetSpares(alloc, "a", 1);
  EXPECT_STATUS(fleet.PlaceBatch(17), absl::StatusCode::kResourceExhausted, "not enough free");
  // A preemption plan says infeasible too.
  BatchRequest request{kAcme, kGb200, 18};
  EXPECT_STATUS(alloc.PlanPreemption(request, PlanConstraints{}, 0), absl::StatusCode::kInvalidArgument,
                "at most 17 of a domain's 18 machines can be placed (NVLink domain rack a): 1 "
                "is a spare tray kept for ReplaceInstance; ask for at most 17");
  EXPECT_OK(alloc.CheckInvariants());
}

TEST(SpareMachinesTest, CrossDomainBatchesAndSegmentsLeaveTheSpares) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}, {"c", "s1", 4}});
  Allocator& alloc = fleet.alloc();
  SetSpares(alloc, "a", 1);
  SetSpares(alloc, "b", 2);
  // 12 machines, 3 spares: 9 placeable; 10 is infeasible, naming the spares.
  EXPECT_STATUS(fleet.PlaceBatch(10, /*strict=*/false), absl::StatusCode::kInvalidArgument,
                "only 9 of the fleet's 12 machines of that type can be placed: 3 are spare trays");
  for (SpreadPolicy policy : {SpreadPolicy::kFill, SpreadPolicy::kMinDomains, SpreadPolicy::kSpread}) {
    const JournalMark mark = alloc.Mark();
    absl::StatusOr<std::vector<std::string>> all = fleet.PlaceBatch(9, false, policy);
    ASSERT_TRUE(all.ok()) << all.status() << " " << SpreadPolicyName(policy);
    EXPECT_THAT(*all, ::testing::IsSupersetOf({"a-0", "a-1", "a-2", "b-0", "b-1", "c-0", "c-1",
                                               "c-2", "c-3"}));
    EXPECT_EQ(SparesIn(alloc, "a"), 1);
    EXPECT_EQ(SparesIn(alloc, "b"), 2);
    EXPECT_OK(alloc.CheckInvariants());
    alloc.RollbackTo(mark);
  }
  // Segments of 3: only a (4 - 1) and c (4) hold one; b (4 - 2) cannot.
  BatchRequest request{kAcme, kGb200, 6, /*topology_optimized=*/false};
  request.segment_size = 3;
  absl::StatusOr<Placement> plan = alloc.PlanBatch(request);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<std::string> machines = fleet.ApplyPlan(*plan, "seg");
  EXPECT_THAT(machines, UnorderedElementsAre("a-0", "a-1", "a-2", "c-0", "c-1", "c-2"));
  request.count = 3;
  EXPECT_STATUS(alloc.PlanBatch(request), absl::StatusCode::kResourceExhausted,
                "need 1 NVLink domains with 3 free machines each, but only 0");
  request.count = 9;
  EXPECT_STATUS(alloc.PlanBatch(request), absl::StatusCode::kInvalidArgument,
                "the fleet has 2");
  EXPECT_OK(alloc.CheckInvariants());
}

TEST(SpareMachinesTest, SinglesNeverTakeASpareButGpuSinglesFillPartlyHeldMachines) {
  TestFleet fleet({{"a", "s1", 3}});
  Allocator& alloc = fleet.alloc();
  SetSpares(alloc, "a", 2);
  // One placeable machine: a whole single takes it, then nothing.
  EXPECT_EQ(Ok(fleet.PlaceSingle(0)), "a-0");
  EXPECT_STATUS(fleet.PlaceSingle(0), absl::StatusCode::kResourceExhausted, "no READY");
  // A GPU-granular single would open a fresh machine, a spare: refused.
  EXPECT_STATUS(fleet.PlaceSingle(1), absl::StatusCode::kResourceExhausted, "no READY");
  EXPECT_EQ(alloc.LargestFreeGpus(alloc.TypeIndexOf(kGb200), {}), 0);
  EXPECT_OK(alloc.CheckInvariants());

  // With a-0 free again, a GPU single opens a-0 (placeable); the next ones fill it, never
  // opening a-1 or a-2.
  TestFleet gpus({{"a", "s1", 3}});
  Allocator& g = gpus.alloc();
  SetSpares(g, "a", 2);
  EXPECT_EQ(Ok(gpus.PlaceSingle(1)), "a-0");
  EXPECT_EQ(Ok(gpus.PlaceSingle(2)), "a-0");
  EXPECT_EQ(g.LargestFreeGpus(g.TypeIndexOf(kGb200), {}), 1);
  EXPECT_EQ(Ok(gpus.PlaceSingle(1)), "a-0");
  EXPECT_STATUS(gpus.PlaceSingle(1), absl::StatusCode::kResourceExhausted, "no READY");
  EXPECT_EQ(g.LargestFreeGpus(g.TypeIndexOf(kGb200), {}), 0);
  EXPECT_EQ(SparesIn(g, "a"), 2);
  // Without spares the fresh machine opens.
  SetSpares(g, "a", 1);
  EXPECT_EQ(Ok(gpus.PlaceSingle(1)), "a-1");
  EXPECT_OK(g.CheckInvariants());
}

TEST(SpareMachinesTest, PreemptionCountsFreePlusReclaimableLessSpares) {
  TestFleet fleet({{"a", "s1", 4}});
  Allocator& alloc = fleet.alloc();
  SetSpares(alloc, "a", 1);
  // Three spot machines held; one free (the spare).
  BatchRequest spot{kAcme, kGb200, 3};
  spot.spot = true;
  absl::StatusOr<Placement> plan = alloc.PlanBatch(spot);
  ASSERT_TRUE(plan.ok()) << plan.status();
  fleet.ApplyPlan(*plan, "spot");
  EXPECT_EQ(fleet.FreeIn("a"), 0);
  // An on-demand batch of 3 needs the whole spot gang evicted (3 reclaimable + 1 free - 1
  // spare = 3); without spares 2 machines would have sufficed but the gang is whole anyway.
  BatchRequest od{kAcme, kGb200, 3};
  absl::StatusOr<PreemptionPlan> pre = alloc.PlanPreemption(od, PlanConstraints{}, 0);
  ASSERT_TRUE(pre.ok()) << pre.status();
  EXPECT_EQ(pre->victims.size(), 3u);
  // 4 is infeasible (capacity 3).
  od.count = 4;
  EXPECT_EQ(alloc.PlanPreemption(od, PlanConstraints{}, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_OK(alloc.CheckInvariants());
}

TEST(SpareMachinesTest, AReplacementTakesASpare) {
  TestFleet fleet({{"a", "s1", 3}, {"b", "s1", 4}});
  Allocator& alloc = fleet.alloc();
  SetSpares(alloc, "a", 1);
  ASSERT_THAT(Ok(fleet.PlaceBatch(2)), ElementsAre("a-0", "a-1"));
  const std::vector<std::string> ids = fleet.last_instances();
  EXPECT_EQ(fleet.FreeIn("a"), 0);
  EXPECT_EQ(SparesIn(alloc, "a"), 1);
  absl::StatusOr<ReplacePlan> plan = alloc.PlanReplace(fleet.HandleOf(ids[0]), true, false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  alloc.Apply(*plan);
  EXPECT_EQ(fleet.Find(ids[0])->machine_id, "a-2") << "the spare tray of the same domain";
  EXPECT_EQ(alloc.FindMachine("a-0")->state, MachineState::kMaintenance);
  EXPECT_EQ(SparesIn(alloc, "a"), 0) << "the spare is used up until the domain frees another";
  EXPECT_OK(alloc.CheckInvariants());
  // No free machine left in a: FAILED_PRECONDITION (b's are not candidates).
  EXPECT_EQ(alloc.PlanReplace(fleet.HandleOf(ids[1]), true, false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Releasing the other instance frees a-1: it becomes the spare, not placeable.
  ASSERT_OK(fleet.Release({ids[1]}));
  EXPECT_EQ(fleet.FreeIn("a"), 0);
  EXPECT_EQ(SparesIn(alloc, "a"), 1);
  EXPECT_OK(alloc.CheckInvariants());
}

TEST(SpareMachinesTest, ChangingSparesIsJournaledAndRollsBackExactly) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 2}});
  Allocator& alloc = fleet.alloc();
  fleet.HoldWhole({"a-0"});
  const std::string before = Snapshot(alloc);
  const JournalMark mark = alloc.Mark();
  SetSpares(alloc, "a", 3);
  EXPECT_EQ(fleet.FreeIn("a"), 0);
  EXPECT_EQ(alloc.FindDomain("a")->spare_machines, 3);
  ASSERT_OK(alloc.CheckInvariants());
  // A type added while a domain has spares gets them too.
  ASSERT_OK(alloc.UpsertInstanceType({"b300", "b300-tray", "B300", 4, 1, 1, "nvlink5"}));
  fleet.AddMachines({{"a-9", "a", 9, 4, MachineState::kReady, "b300"}});
  EXPECT_EQ(fleet.FreeIn("a", "b300"), 0);
  ASSERT_OK(alloc.CheckInvariants());
  alloc.RollbackTo(mark);
  EXPECT_EQ(Snapshot(alloc), before);
  EXPECT_EQ(alloc.FindDomain("a")->spare_machines, std::nullopt);  // the default again
  EXPECT_EQ(fleet.FreeIn("a"), 3);
  ASSERT_OK(alloc.CheckInvariants());
  // A new domain with spares; a domain state change keeps them.
  ASSERT_OK(alloc.UpsertDomain({"c", "rack c", "s1", DomainState::kReady, "", 1}));
  fleet.AddMachines({{"c-0", "c", 0}, {"c-1", "c", 1}});
  EXPECT_EQ(fleet.FreeIn("c"), 1);
  ASSERT_OK(alloc.SetDomainState("c", DomainState::kDegraded, "links"));
  EXPECT_EQ(alloc.FindDomain("c")->spare_machines, 1);
  ASSERT_OK(alloc.CheckInvariants());
  // Bad values name the field.
  Domain bad = *alloc.FindDomain("b");
  bad.spare_machines = -1;
  EXPECT_STATUS(alloc.UpsertDomain(bad), absl::StatusCode::kInvalidArgument, "spare_machines -1");
  bad.spare_machines = kMaxMachinesPerDomain + 1;
  EXPECT_STATUS(alloc.UpsertDomain(bad), absl::StatusCode::kInvalidArgument, "spare_machines");
  EXPECT_OK(alloc.CheckInvariants());
}

TEST(SpareMachinesTest, TheFleetDefaultAppliesToDomainsWithoutTheirOwnSetting) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}, {"c", "s1", 4}});
  Allocator& alloc = fleet.alloc();
  SetSpares(alloc, "b", 0);  // b: its own setting, 0, whatever the default
  SetSpares(alloc, "c", 3);  // c: its own setting, 3
  const std::string before = Snapshot(alloc);
  const JournalMark mark = alloc.Mark();
  ASSERT_OK(alloc.SetDefaultSpareMachines(2));
  EXPECT_EQ(alloc.default_spare_machines(), 2);
  EXPECT_EQ(alloc.EffectiveSpareMachines(alloc.DomainIndexOf("a")), 2);
  EXPECT_EQ(alloc.EffectiveSpareMachines(alloc.DomainIndexOf("b")), 0);
  EXPECT_EQ(alloc.EffectiveSpareMachines(alloc.DomainIndexOf("c")), 3);
  EXPECT_EQ(fleet.FreeIn("a"), 2);
  EXPECT_EQ(fleet.FreeIn("b"), 4);
  EXPECT_EQ(fleet.FreeIn("c"), 1);
  ASSERT_OK(alloc.CheckInvariants());
  // Only b can place a strict batch of 3 (a places 2, c 1).
  EXPECT_THAT(Ok(fleet.PlaceBatch(3)), ElementsAre("b-0", "b-1", "b-2"));
  // A domain added later takes the default; one that drops its own setting too.
  ASSERT_OK(alloc.UpsertDomain({"d", "rack d", "s1"}));
  fleet.AddMachines({{"d-0", "d", 0}, {"d-1", "d", 1}, {"d-2", "d", 2}});
  EXPECT_EQ(fleet.FreeIn("d"), 1);
  Domain c = *alloc.FindDomain("c");
  c.spare_machines = std::nullopt;
  ASSERT_OK(alloc.UpsertDomain(c));
  EXPECT_EQ(fleet.FreeIn("c"), 2);
  ASSERT_OK(alloc.CheckInvariants());
  EXPECT_STATUS(alloc.SetDefaultSpareMachines(-1), absl::StatusCode::kInvalidArgument,
                "default_spare_machines is -1");
  EXPECT_EQ(alloc.default_spare_machines(), 2);
  // All of it rolls back, the default included.
  alloc.RollbackTo(mark);
  EXPECT_EQ(Snapshot(alloc), before);
  EXPECT_EQ(alloc.default_spare_machines(), 0);
  EXPECT_EQ(fleet.FreeIn("a"), 4);
  EXPECT_EQ(fleet.FreeIn("c"), 1);
  EXPECT_OK(alloc.CheckInvariants());
}

TEST(SpareMachinesTest, TheQueueReservesOnlyDomainsWhoseCapacityHoldsTheGang) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 3}});
  Allocator& alloc = fleet.alloc();
  SetSpares(alloc, "a", 2);
  const TypeIndex t = alloc.TypeIndexOf(kGb200);
  // A gang of 3 can only ever go to b (a: 4 - 2 = 2).
  EXPECT_EQ(alloc.MostFreeDomain(t, 3, {}), alloc.DomainIndexOf("b"));
  EXPECT_EQ(alloc.MostFreeDomain(t, 4, {}), kNoIndex);
  EXPECT_EQ(alloc.LargestFreeInDomain(t, {}), 3);
  EXPECT_EQ(alloc.TotalFreeMachines(t, {}), 5);
  EXPECT_EQ(alloc.DomainFreeMachines(t, alloc.DomainIndexOf("a")), 2);
}

}  // namespace
}  // namespace nvlsched::allocator::testing
