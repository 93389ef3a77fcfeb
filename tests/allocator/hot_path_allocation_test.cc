// Proves the hot path allocates nothing after warm-up: this binary replaces the global
// operator new with a counting one, then runs PlanBatch + Apply + PlanRelease +
// Apply(release) + ClearJournal in a loop on a fleet at ~70% occupancy and expects zero
// heap allocations. Batch ids are 36-character UUID-like strings (longer than the
// small-string buffer), as the daemon's are; instances are named by handle.
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "allocator/allocator.h"
#include "tests/testing/counting_allocator.h"
#include "tests/allocator/test_fleet.h"


namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::kAcme;
using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::TestFleet;

std::string Uuid(int n) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-0000-4000-8000-%012x", n, n * 7919);
  return buf;
}

// 100 domains of 18 gb200 machines; 70% of them held by strict batches of 18, 9 and 4.
TestFleet BusyFleet() {
  std::vector<testing::DomainRow> rows;
  for (int d = 0; d < 100; ++d) rows.push_back({"d" + std::to_string(d), "s1", 18});
  TestFleet fleet(rows);
  for (int d = 0; d < 100; ++d) {
    int held = (d % 10 < 7) ? 18 : (d % 10 == 7 ? 9 : 4);
    if (d % 10 == 9) held = 0;
    fleet.HoldWhole(testing::Trays("d" + std::to_string(d), 0, held));
  }
  fleet.alloc().ClearJournal();
  return fleet;
}

// Runs `cycle` a few times to warm up, then `kCycles` times counting allocations.
template <typename Cycle>
long long AllocationsInSteadyState(Cycle cycle) {
  for (int i = 0; i < 5; ++i) cycle();
  long long before = ::nvlsched::testing::AllocationCount();
  for (int i = 0; i < 2000; ++i) cycle();
  return ::nvlsched::testing::AllocationCount() - before;
}

// Scratch the caller keeps across calls, as the daemon's engine would.
struct Ids {
  std::vector<InstanceHandle> instances;
  std::string batch = Uuid(999999);
  explicit Ids(int n) : instances(n) {}
};

void PlaceAndRelease(Allocator& alloc, const BatchRequest& request, Ids& ids) {
  absl::StatusOr<Placement> plan = alloc.PlanBatch(request);
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::Span<InstanceHandle> handles = absl::MakeSpan(ids.instances).first(plan->size());
  alloc.Apply(*plan, ids.batch, handles);
  absl::StatusOr<ReleasePlan> release = alloc.PlanRelease(handles, false);
  ASSERT_TRUE(release.ok()) << release.status();
  alloc.Apply(*release);
  alloc.ClearJournal();
}

TEST(HotPathAllocationTest, StrictBatchOf18AllocatesNothing) {
  TestFleet fleet = BusyFleet();
  Ids ids(18);
  BatchRequest request{kAcme, kGb200, 18};
  EXPECT_EQ(AllocationsInSteadyState([&] { PlaceAndRelease(fleet.alloc(), request, ids); }), 0);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(HotPathAllocationTest, SmallStrictBatchIntoAFragmentAllocatesNothing) {
  TestFleet fleet = BusyFleet();
  Ids ids(3);
  BatchRequest request{kAcme, kGb200, 3};
  EXPECT_EQ(AllocationsInSteadyState([&] { PlaceAndRelease(fleet.alloc(), request, ids); }), 0);
}

TEST(HotPathAllocationTest, CrossDomainBatchesAllocateNothing) {
  TestFleet fleet = BusyFleet();
  Ids ids(18);
  for (SpreadPolicy policy : {SpreadPolicy::kFill, SpreadPolicy::kMinDomains, SpreadPolicy::kSpread}) {
    BatchRequest request{kAcme, kGb200, 18, false, policy};
    EXPECT_EQ(AllocationsInSteadyState([&] { PlaceAndRelease(fleet.alloc(), request, ids); }), 0)
        << SpreadPolicyName(policy);
  }
}

TEST(HotPathAllocationTest, SinglesAllocateNothing) {
  TestFleet fleet = BusyFleet();
  Ids ids(1);
  for (int gpus : {0, 1, 3}) {
    SingleRequest request{kAcme, kGb200, gpus};
    auto cycle = [&] {
      absl::StatusOr<Placement> plan = fleet.alloc().PlanSingle(request);
      ASSERT_TRUE(plan.ok()) << plan.status();
      fleet.alloc().Apply(*plan, "", absl::MakeSpan(ids.instances));
      absl::StatusOr<ReleasePlan> release = fleet.alloc().PlanRelease(ids.instances, false);
      ASSERT_TRUE(release.ok());
      fleet.alloc().Apply(*release);
      fleet.alloc().ClearJournal();
    };
    EXPECT_EQ(AllocationsInSteadyState(cycle), 0) << gpus << " GPUs";
  }
}

TEST(HotPathAllocationTest, RollingBackAPlacementAllocatesNothing) {
  TestFleet fleet = BusyFleet();
  Ids ids(18);
  BatchRequest request{kAcme, kGb200, 18};
  auto cycle = [&] {
    JournalMark mark = fleet.alloc().Mark();
    absl::StatusOr<Placement> plan = fleet.alloc().PlanBatch(request);
    ASSERT_TRUE(plan.ok());
    fleet.alloc().Apply(*plan, ids.batch, absl::MakeSpan(ids.instances));
    fleet.alloc().RollbackTo(mark);
    fleet.alloc().ClearJournal();
  };
  EXPECT_EQ(AllocationsInSteadyState(cycle), 0);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

TEST(HotPathAllocationTest, TheCounterSeesAllocations) {
  long long before = ::nvlsched::testing::AllocationCount();
  // volatile: the compiler may otherwise elide a new/delete pair it can see whole.
  std::vector<int>* volatile v = new std::vector<int>(100);
  delete v;
  EXPECT_GE(::nvlsched::testing::AllocationCount() - before, 2);
}

}  // namespace
}  // namespace nvlsched::allocator
