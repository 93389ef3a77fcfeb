// Tests allocator/allocator.cc: plan/apply/release, quota, what a Placement reports.
#include "allocator/allocator.h"

#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::kAcme;
using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::TestFleet;
using ::nvlsched::allocator::testing::Trays;
using ::testing::ElementsAre;

TEST(AllocatorTest, PlacementReportsMachineDomainAndGpusPerInstance) {
  TestFleet fleet({{"a", "s1", 4}});
  absl::StatusOr<Placement> plan = fleet.alloc().PlanBatch({kAcme, kGb200, 2});
  ASSERT_OK(plan);
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ(fleet.alloc().MachineAt(plan->instances[0].machine).id, "a-0");
  EXPECT_EQ(fleet.alloc().DomainAt(plan->instances[0].domain).id, "a");
  EXPECT_EQ(fleet.alloc().DomainAt(plan->instances[0].domain).site_id, "s1");
  EXPECT_EQ(plan->instances[0].gpu_count, 4);
  EXPECT_TRUE(plan->instances[0].whole_machine);
  InstanceHandle handles[2];
  fleet.alloc().Apply(*plan, "batch-1", absl::MakeSpan(handles));
  EXPECT_NE(handles[0], handles[1]);

  std::optional<InstanceClaim> claim = fleet.alloc().FindInstance(handles[1]);
  ASSERT_TRUE(claim.has_value());
  EXPECT_EQ(claim->machine_id, "a-1");
  EXPECT_EQ(claim->tenant_id, kAcme);
  EXPECT_EQ(claim->instance_type_id, kGb200);
  EXPECT_EQ(claim->gpu_count, 4);
  EXPECT_EQ(claim->batch_id, "batch-1");
  EXPECT_TRUE(claim->topology_optimized);
  EXPECT_EQ(fleet.alloc().instance_count(), 2u);
  EXPECT_EQ(*fleet.alloc().QuotaUsageGpus(kAcme, kGb200), 8);
}

TEST(AllocatorTest, PlanningChangesNothing) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 2}});
  std::string before = testing::Snapshot(fleet.alloc());
  absl::StatusOr<Placement> first = fleet.alloc().PlanBatch({kAcme, kGb200, 2});
  absl::StatusOr<Placement> second = fleet.alloc().PlanBatch({kAcme, kGb200, 2});
  ASSERT_OK(first);
  ASSERT_OK(second);
  EXPECT_EQ(first->instances[0].machine, second->instances[0].machine);
  EXPECT_EQ(testing::Snapshot(fleet.alloc()), before);
}

TEST(AllocatorTest, GpuGranularSinglesAreRecordedWithTheirGpus) {
  TestFleet fleet({{"a", "s1", 1}});
  ASSERT_OK(fleet.PlaceSingle(3));
  std::optional<InstanceClaim> claim = fleet.Find(fleet.last_instances()[0]);
  ASSERT_TRUE(claim.has_value());
  EXPECT_FALSE(claim->whole_machine);
  EXPECT_EQ(claim->gpu_count, 3);
  EXPECT_EQ(claim->batch_id, "");
  EXPECT_EQ(*fleet.alloc().QuotaUsageGpus(kAcme, kGb200), 3);
}

TEST(AllocatorTest, QuotaExceededFailsBeforeAnythingIsTakenWithItsPayload) {
  TestFleet fleet({{"a", "s1", 8}}, /*quota_machines=*/3);  // 3 machines = 12 GPUs
  ASSERT_OK(fleet.PlaceBatch(2));                           // 8 GPUs in use
  std::string before = testing::Snapshot(fleet.alloc());
  absl::StatusOr<Placement> plan = fleet.alloc().PlanBatch({kAcme, kGb200, 2});
  EXPECT_STATUS(plan, absl::StatusCode::kResourceExhausted,
                "quota exceeded: tenant acme may hold 3 gb200-tray machines (12 GPUs); 8 GPUs are "
                "in use and this request needs 8 more");
  EXPECT_EQ(GetQuotaViolation(plan.status()), (QuotaViolation{kAcme, kGb200, 3, 12, 8, 8}));
  EXPECT_FALSE(GetCapacityShortfall(plan.status()).has_value());
  EXPECT_EQ(testing::Snapshot(fleet.alloc()), before);
  // GPU-granular requests count their GPUs: 4 more fit exactly.
  ASSERT_OK(fleet.PlaceSingle(4));
  EXPECT_STATUS(fleet.PlaceSingle(1), absl::StatusCode::kResourceExhausted, "quota exceeded");
}

TEST(AllocatorTest, QuotaIsCheckedBeforeCapacity) {
  TestFleet fleet({{"a", "s1", 2}}, /*quota_machines=*/1);
  fleet.HoldWhole({"a-0", "a-1"});  // restored instances are not quota-checked
  EXPECT_STATUS(fleet.PlaceBatch(1), absl::StatusCode::kResourceExhausted, "quota exceeded");
}

TEST(AllocatorTest, ATypeMissingFromTheQuotaIsNotAllowed) {
  TestFleet fleet({{"a", "s1", 2}});
  ASSERT_OK(fleet.alloc().UpsertTenant({"beta", "beta-org", "beta", {}}));
  absl::StatusOr<Placement> plan = fleet.alloc().PlanBatch({"beta", kGb200, 1});
  EXPECT_STATUS(plan, absl::StatusCode::kResourceExhausted,
                "tenant beta has no quota for instance type gb200-tray");
  EXPECT_EQ(GetQuotaViolation(plan.status())->limit_gpus, 0);
}

TEST(AllocatorTest, ReleaseReturnsMachinesToThePoolAtOnce) {
  TestFleet fleet({{"a", "s1", 4}});
  ASSERT_OK(fleet.PlaceBatch(4));
  std::vector<std::string> batch = fleet.last_instances();
  EXPECT_EQ(fleet.FreeIn("a"), 0);
  ASSERT_OK(fleet.Release({batch[1], batch[3]}));
  EXPECT_EQ(fleet.FreeIn("a"), 2);
  EXPECT_EQ(*fleet.alloc().QuotaUsageGpus(kAcme, kGb200), 8);
  auto again = fleet.PlaceBatch(2);
  ASSERT_OK(again);
  EXPECT_THAT(*again, ElementsAre("a-1", "a-3"));
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorTest, ReleaseWithHealthIssueSendsTheMachineToMaintenance) {
  TestFleet fleet({{"a", "s1", 2}});
  ASSERT_OK(fleet.PlaceBatch(1));
  std::string instance = fleet.last_instances()[0];
  ASSERT_OK(fleet.Release({instance}, /*health_issue=*/true));
  const Machine* machine = fleet.alloc().FindMachine("a-0");
  EXPECT_EQ(machine->state, MachineState::kMaintenance);
  EXPECT_EQ(machine->state_reason, "health issue reported when instance " + instance + " was released");
  EXPECT_EQ(fleet.FreeIn("a"), 1);
  EXPECT_EQ(*fleet.PlaceSingle(0), "a-1");
  ASSERT_OK(fleet.alloc().SetMachineState("a-0", MachineState::kReady, "repaired"));
  EXPECT_EQ(fleet.FreeIn("a"), 1);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorTest, ReleasingOneGpuGranularInstanceFreesOnlyItsGpus) {
  TestFleet fleet({{"a", "s1", 1}});
  ASSERT_OK(fleet.PlaceSingle(1));
  std::string first = fleet.last_instances()[0];
  ASSERT_OK(fleet.PlaceSingle(2));
  ASSERT_OK(fleet.Release({first}));
  EXPECT_EQ(fleet.alloc().Capacity(kGb200)->free_gpus, 2);
  EXPECT_EQ(fleet.FreeIn("a"), 0);  // still partly held
}

TEST(AllocatorTest, ReleaseIsAllOrNothing) {
  TestFleet fleet({{"a", "s1", 2}});
  ASSERT_OK(fleet.PlaceBatch(2));
  std::vector<std::string> batch = fleet.last_instances();
  // A handle the allocator never gave out: named by the handle itself.
  absl::StatusOr<ReleasePlan> bogus = fleet.alloc().PlanRelease(
      {fleet.HandleOf(batch[0]), InstanceHandle{7, 1}}, false);
  EXPECT_STATUS(bogus, absl::StatusCode::kNotFound,
                "instance \"#7.1\" is not known (never created, or already deleted); nothing "
                "was released");
  EXPECT_STATUS(fleet.alloc().PlanRelease({InstanceHandle{}}, false), absl::StatusCode::kNotFound,
                "is not known");
  EXPECT_EQ(fleet.alloc().instance_count(), 2u);
  EXPECT_STATUS(fleet.Release({batch[0], batch[0]}), absl::StatusCode::kInvalidArgument,
                "instance \"" + batch[0] + "\" is listed twice; list each instance once");
  EXPECT_EQ(fleet.alloc().instance_count(), 2u);
  ASSERT_OK(fleet.Release(batch));
  EXPECT_STATUS(fleet.Release({batch[0]}), absl::StatusCode::kNotFound,
                "instance \"" + batch[0] + "\" is not known (never created, or already deleted)");
}

TEST(AllocatorTest, LongReleaseListsAreCheckedForDuplicatesToo) {
  TestFleet fleet({{"a", "s1", 100}});
  ASSERT_OK(fleet.PlaceBatch(100, false));
  std::vector<std::string> ids = fleet.last_instances();
  ids.push_back(ids[50]);
  EXPECT_STATUS(fleet.Release(ids), absl::StatusCode::kInvalidArgument, "listed twice");
  ids.pop_back();
  ASSERT_OK(fleet.Release(ids));
  EXPECT_EQ(fleet.FreeIn("a"), 100);
}

TEST(AllocatorTest, AReleasedInstancesHandleIsStaleEvenOnceItsSlotIsReused) {
  TestFleet fleet({{"a", "s1", 2}});
  ASSERT_OK(fleet.PlaceSingle(0));
  InstanceHandle first = fleet.HandleOf(fleet.last_instances()[0]);
  EXPECT_GE(first.generation, 1u);
  ASSERT_OK(fleet.Release(fleet.last_instances()));
  EXPECT_FALSE(fleet.alloc().FindInstance(first).has_value());
  fleet.alloc().ClearJournal();  // the slot becomes reusable

  ASSERT_OK(fleet.PlaceSingle(2));
  InstanceHandle second = fleet.HandleOf(fleet.last_instances()[0]);
  EXPECT_EQ(second.slot, first.slot);  // reused last-in first-out
  EXPECT_GT(second.generation, first.generation);
  EXPECT_NE(second, first);
  EXPECT_FALSE(fleet.alloc().FindInstance(first).has_value());
  EXPECT_EQ(fleet.alloc().FindInstance(second)->gpu_count, 2);
  EXPECT_STATUS(fleet.alloc().PlanRelease({first}, false), absl::StatusCode::kNotFound,
                "is not known (never created, or already deleted)");
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorTest, ReleaseRefusesAHandleListedTwiceAmongOthers) {
  TestFleet fleet({{"a", "s1", 3}});
  ASSERT_OK(fleet.PlaceBatch(3));
  std::vector<InstanceHandle> handles = fleet.HandlesOf(fleet.last_instances());
  handles.push_back(handles[1]);
  EXPECT_STATUS(fleet.alloc().PlanRelease(handles, false), absl::StatusCode::kInvalidArgument,
                "instance \"" + fleet.last_instances()[1] + "\" is listed twice");
  EXPECT_EQ(fleet.alloc().instance_count(), 3u);
}

TEST(AllocatorTest, HandlesWhoseSlotsShareADuplicateFilterBitAreNotDuplicates) {
  // PlanRelease's duplicate check filters on slot % 64 before it scans.
  TestFleet fleet({{"a", "s1", 100}});
  ASSERT_OK(fleet.PlaceBatch(100, /*strict=*/false));
  std::vector<InstanceHandle> h = fleet.HandlesOf(fleet.last_instances());
  ASSERT_EQ(h[64].slot, h[0].slot + 64);
  EXPECT_STATUS(fleet.alloc().PlanRelease({h[1], h[65], h[1]}, false),
                absl::StatusCode::kInvalidArgument, "is listed twice");
  absl::StatusOr<ReleasePlan> plan = fleet.alloc().PlanRelease({h[0], h[64], h[2]}, false);
  ASSERT_OK(plan);
  fleet.alloc().Apply(*plan);
  EXPECT_EQ(fleet.alloc().instance_count(), 97u);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(AllocatorTest, WithoutANamerMessagesNameInstancesByHandle) {
  TestFleet fleet({{"a", "s1", 2}});
  ASSERT_OK(fleet.PlaceBatch(1));
  InstanceHandle handle = fleet.HandleOf(fleet.last_instances()[0]);
  fleet.alloc().SetInstanceNamer(nullptr);
  EXPECT_STATUS(fleet.alloc().PlanRelease({handle, handle}, false),
                absl::StatusCode::kInvalidArgument,
                "instance \"" + HandleName(handle) + "\" is listed twice");
  EXPECT_EQ(HandleName(InstanceHandle{3, 12}), "#3.12");
}

TEST(AllocatorTest, AllocatorIsMovable) {
  TestFleet fleet({{"a", "s1", 3}});
  absl::StatusOr<Placement> plan = fleet.alloc().PlanBatch({kAcme, kGb200, 2});
  Allocator moved = std::move(fleet.alloc());
  InstanceHandle handles[2];
  moved.Apply(*plan, "b", absl::MakeSpan(handles));  // views stay valid
  EXPECT_EQ(moved.FindInstance(handles[1])->machine_id, "a-1");
  EXPECT_OK(moved.CheckInvariants());
}

}  // namespace
}  // namespace nvlsched::allocator
