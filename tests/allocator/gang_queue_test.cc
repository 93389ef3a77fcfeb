// GangQueue (allocator/gang_queue.h): one literal case per rule — order, expiry, backfill,
// reservation choice, reservation depth, cross-domain holders, priority, quota held while
// queued, positions.
#include "allocator/gang_queue.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::kAcme;
using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::TestFleet;
using ::nvlsched::allocator::testing::Trays;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

QueuedRequest Strict(uint64_t sequence, int count, int32_t priority = 0,
                     int64_t deadline = 1'000'000'000) {
  QueuedRequest r;
  r.sequence = sequence;
  r.priority = priority;
  r.deadline_micros = deadline;
  r.is_batch = true;
  r.batch = BatchRequest{kAcme, kGb200, count, true, SpreadPolicy::kFill, {}};
  r.gpus = int64_t{count} * 4;
  return r;
}

QueuedRequest Cross(uint64_t sequence, int count) {
  QueuedRequest r = Strict(sequence, count);
  r.batch.topology_optimized = false;
  return r;
}

QueuedRequest Single(uint64_t sequence, int gpus, int32_t priority = 0) {
  QueuedRequest r;
  r.sequence = sequence;
  r.priority = priority;
  r.deadline_micros = 1'000'000'000;
  r.is_batch = false;
  r.single = SingleRequest{kAcme, kGb200, gpus, "", {}};
  r.gpus = gpus == 0 ? 4 : gpus;
  return r;
}

// Applies placements to the fleet and writes down what happened.
class RecordingSink : public GangQueue::Sink {
 public:
  explicit RecordingSink(TestFleet& fleet) : fleet_(fleet) {}
  void Placed(const QueuedRequest& request, const Placement& placement) override {
    std::vector<std::string> machines = fleet_.ApplyPlan(placement, request.is_batch ? "b" : "");
    placed[request.sequence] = machines;
    order.push_back(request.sequence);
    instances[request.sequence] = fleet_.last_instances();
  }
  void Expired(const QueuedRequest& request) override { expired.push_back(request.sequence); }

  std::map<uint64_t, std::vector<std::string>> placed;
  std::map<uint64_t, std::vector<std::string>> instances;
  std::vector<uint64_t> order;
  std::vector<uint64_t> expired;

 private:
  TestFleet& fleet_;
};

std::vector<std::string> ReservedDomains(const TestFleet& fleet_const, const GangQueue& queue) {
  TestFleet& fleet = const_cast<TestFleet&>(fleet_const);
  std::vector<std::string> out;
  for (const Reservation& r : queue.reservations()) {
    for (DomainIndex d : r.domains) {
      out.push_back(std::to_string(r.sequence) + ":" + fleet.alloc().DomainAt(d).id);
    }
  }
  return out;
}

TEST(GangQueueTest, PlacesInPriorityThenArrivalOrderWhenCapacityFrees) {
  TestFleet fleet({{"a", "s1", 4}});
  fleet.HoldWhole(Trays("a", 0, 4));
  GangQueue queue;
  queue.Insert(fleet.alloc(), Single(1, 0));
  queue.Insert(fleet.alloc(), Single(2, 0, /*priority=*/5));
  queue.Insert(fleet.alloc(), Single(3, 0));
  EXPECT_EQ(queue.PositionOf(2), 1u);
  EXPECT_EQ(queue.PositionOf(1), 2u);
  EXPECT_EQ(queue.PositionOf(3), 3u);
  EXPECT_EQ(queue.PositionForNew(0), 4u);
  EXPECT_EQ(queue.PositionForNew(5), 2u);
  EXPECT_EQ(queue.PositionForNew(9), 1u);

  RecordingSink sink(fleet);
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 0u);  // nothing free
  ASSERT_OK(fleet.Release({"hold-a-2", "hold-a-0"}));
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 2u);
  EXPECT_THAT(sink.order, ElementsAre(2, 1));  // priority 5 first, then the older one
  EXPECT_THAT(sink.placed[2], ElementsAre("a-0"));
  EXPECT_THAT(sink.placed[1], ElementsAre("a-2"));
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue.PositionOf(3), 1u);
}

TEST(GangQueueTest, ExpiresAtTheDeadlineAndNotBefore) {
  TestFleet fleet({{"a", "s1", 2}});
  fleet.HoldWhole(Trays("a", 0, 2));
  GangQueue queue;
  queue.Insert(fleet.alloc(), Strict(1, 2, 0, /*deadline=*/100));
  queue.Insert(fleet.alloc(), Strict(2, 2, 0, /*deadline=*/50));
  EXPECT_EQ(queue.NextDeadline(), 50);
  RecordingSink sink(fleet);
  queue.Schedule(fleet.alloc(), 49, sink);
  EXPECT_THAT(sink.expired, IsEmpty());
  queue.Schedule(fleet.alloc(), 100, sink);
  EXPECT_THAT(sink.expired, ElementsAre(2, 1));  // oldest deadline first
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.NextDeadline(), std::nullopt);
  EXPECT_EQ(queue.QueuedGpus(fleet.alloc().TenantIndexOf(kAcme), fleet.alloc().TypeIndexOf(kGb200)), 0);
}

TEST(GangQueueTest, HeadBatchReservesTheMostFreeDomainAndSmallRequestsBackfillElsewhere) {
  // a: 2 free of 4, b: 3 free of 4, c: 1 free of 4. A batch of 4 waits; it reserves b (most
  // free). Singles behind it may go to a and c but never to b.
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}, {"c", "s1", 4}});
  fleet.HoldWhole({"a-0", "a-1", "b-0", "c-0", "c-1", "c-2"});
  GangQueue queue;
  queue.Insert(fleet.alloc(), Strict(1, 4));
  for (uint64_t s = 2; s <= 6; ++s) queue.Insert(fleet.alloc(), Single(s, 0));
  RecordingSink sink(fleet);
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 3u);
  EXPECT_THAT(ReservedDomains(fleet, queue), ElementsAre("1:b"));
  // Best fit outside b: c (1 free) first, then a.
  EXPECT_THAT(sink.placed[2], ElementsAre("c-3"));
  EXPECT_THAT(sink.placed[3], ElementsAre("a-2"));
  EXPECT_THAT(sink.placed[4], ElementsAre("a-3"));
  EXPECT_EQ(fleet.FreeIn("b"), 3);  // held for the batch
  EXPECT_EQ(queue.size(), 3u);      // the batch and two singles

  // b frees up: the batch goes there, and nothing behind it took b's machines meanwhile.
  ASSERT_OK(fleet.Release({"hold-b-0"}));
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 1u);
  EXPECT_THAT(sink.placed[1], ElementsAre("b-0", "b-1", "b-2", "b-3"));
  EXPECT_THAT(queue.reservations(), IsEmpty());
}

TEST(GangQueueTest, ReservationTiesGoToTheLowestIndexAndSkipDomainsTooSmall) {
  // a is too small for 5 whatever is free; b and c tie on free machines: b (lower index).
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 6}, {"c", "s1", 6}});
  fleet.HoldWhole({"b-0", "b-1", "c-0", "c-1"});
  fleet.HoldWhole(Trays("a", 0, 1));
  GangQueue queue;
  queue.Insert(fleet.alloc(), Strict(1, 5));
  RecordingSink sink(fleet);
  queue.Schedule(fleet.alloc(), 0, sink);
  EXPECT_THAT(ReservedDomains(fleet, queue), ElementsAre("1:b"));
}

TEST(GangQueueTest, BatchesBehindAHolderReserveOtherDomainsUpToTheDepth) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}, {"c", "s1", 4}});
  fleet.HoldWhole({"a-0", "b-0", "b-1", "c-0", "c-1", "c-2"});
  GangQueue queue(GangQueue::Options{/*reservation_depth=*/2, /*max_length=*/10});
  queue.Insert(fleet.alloc(), Strict(1, 4));
  queue.Insert(fleet.alloc(), Strict(2, 4));
  queue.Insert(fleet.alloc(), Strict(3, 4));
  queue.Insert(fleet.alloc(), Strict(4, 2));  // fits in c? no: c has 1 free; fits in b (2 free)? b reserved
  RecordingSink sink(fleet);
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 0u);
  // Holder 1 takes a (3 free), holder 2 takes b (2 free); depth 2: the third holds nothing;
  // the batch of 2 fits nowhere outside a and b (c has 1 free).
  EXPECT_THAT(ReservedDomains(fleet, queue), ElementsAre("1:a", "2:b"));
  EXPECT_THAT(queue.ExclusionsForNew(0).size(), 2u);
  EXPECT_TRUE(queue.ExclusionsForNew(1).empty());  // a higher priority arrives ahead of both
}

TEST(GangQueueTest, AWaitingRequestAheadOfAHolderMayUseTheHoldersDomain) {
  // Priority 1 single arrives after the batch but is ahead of it in order: b is not closed
  // to it.
  TestFleet fleet({{"a", "s1", 2}, {"b", "s1", 4}});
  fleet.HoldWhole({"a-0", "a-1", "b-0", "b-1", "b-2", "b-3"});
  GangQueue queue;
  queue.Insert(fleet.alloc(), Strict(1, 4));
  queue.Insert(fleet.alloc(), Single(2, 0));
  queue.Insert(fleet.alloc(), Single(3, 0, /*priority=*/1));
  RecordingSink sink(fleet);
  ASSERT_OK(fleet.Release({"hold-b-3"}));
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 1u);
  EXPECT_THAT(sink.order, ElementsAre(3));  // single 2 is behind the holder of b: it waits
  EXPECT_THAT(ReservedDomains(fleet, queue), ElementsAre("1:b"));
}

TEST(GangQueueTest, CrossDomainHolderReservesWholeDomainsUntilItsCountIsCovered) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}, {"c", "s1", 4}});
  fleet.HoldWhole({"a-0", "a-1", "b-0", "c-0", "c-1", "c-2", "c-3"});
  GangQueue queue;
  queue.Insert(fleet.alloc(), Cross(1, 6));  // 5 free in total: waits
  queue.Insert(fleet.alloc(), Single(2, 0));
  RecordingSink sink(fleet);
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 0u);
  // b (3 free) then a (2 free): 8 machines cover 6; the single cannot go anywhere.
  EXPECT_THAT(ReservedDomains(fleet, queue), ElementsAre("1:b", "1:a"));
  // One machine more anywhere makes 6: the batch goes first (FILL: least free domains
  // first), the single behind it still waits.
  ASSERT_OK(fleet.Release({"hold-c-0"}));
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 1u);
  EXPECT_THAT(sink.placed[1], ElementsAre("c-0", "a-2", "a-3", "b-1", "b-2", "b-3"));
  EXPECT_THAT(queue.reservations(), IsEmpty());
  ASSERT_OK(fleet.Release({"hold-a-0"}));
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 1u);
  EXPECT_THAT(sink.placed[2], ElementsAre("a-0"));
}

TEST(GangQueueTest, SinglesBackfillOutsideACrossDomainHoldersDomains) {
  TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 4}, {"c", "s1", 4}});
  fleet.HoldWhole({"a-0", "a-1", "b-0", "c-0", "c-1", "c-2", "c-3"});
  GangQueue queue;
  queue.Insert(fleet.alloc(), Cross(1, 9));  // 5 free, 12 in the fleet: waits, holds b and a
  queue.Insert(fleet.alloc(), Single(2, 0));
  RecordingSink sink(fleet);
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 0u);
  EXPECT_THAT(ReservedDomains(fleet, queue), ElementsAre("1:b", "1:a", "1:c"));
}

TEST(GangQueueTest, GpuSinglesFitByTheLargestFreeGpuCount) {
  TestFleet fleet({{"a", "s1", 1}});
  fleet.HoldGpus("a-0", 3);
  GangQueue queue;
  queue.Insert(fleet.alloc(), Single(1, 2));
  queue.Insert(fleet.alloc(), Single(2, 1));
  RecordingSink sink(fleet);
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 1u);  // 1 GPU free: the 2-GPU one waits
  EXPECT_THAT(sink.order, ElementsAre(2));
  EXPECT_EQ(queue.size(), 1u);
}

TEST(GangQueueTest, QuotaHeldByQueuedRequestsCountsWhenOneOfThemIsPlaced) {
  // Quota 2 machines (8 GPUs). Two queued singles hold 8 GPUs of it. While the tenant still
  // holds one machine (4 GPUs), placing either would make held + queued 12 > 8: neither is
  // placed, although 4 held + 4 placed alone would fit. Once nothing is held, both fit.
  TestFleet fleet({{"a", "s1", 4}}, /*quota_machines=*/2);
  fleet.HoldWhole(Trays("a", 0, 4));
  GangQueue queue;
  queue.Insert(fleet.alloc(), Single(1, 0));
  queue.Insert(fleet.alloc(), Single(2, 0));
  TenantIndex tenant = fleet.alloc().TenantIndexOf(kAcme);
  TypeIndex type = fleet.alloc().TypeIndexOf(kGb200);
  EXPECT_EQ(queue.QueuedGpus(tenant, type), 8);
  ASSERT_OK(fleet.Release({"hold-a-0", "hold-a-1", "hold-a-2"}));
  RecordingSink sink(fleet);
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 0u);
  EXPECT_EQ(queue.size(), 2u);
  ASSERT_OK(fleet.Release({"hold-a-3"}));
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 2u);
  EXPECT_THAT(sink.order, ElementsAre(1, 2));
  EXPECT_EQ(queue.QueuedGpus(tenant, type), 0);
}

TEST(GangQueueTest, RemoveTakesARequestOutOfEveryIndex) {
  TestFleet fleet({{"a", "s1", 2}});
  fleet.HoldWhole({"a-0", "a-1"});
  GangQueue queue;
  queue.Insert(fleet.alloc(), Strict(1, 2));
  queue.Insert(fleet.alloc(), Single(2, 0));
  std::optional<QueuedRequest> removed = queue.Remove(1);
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->sequence, 1u);
  EXPECT_EQ(queue.Remove(1), std::nullopt);
  EXPECT_EQ(queue.Find(1), nullptr);
  ASSERT_NE(queue.Find(2), nullptr);
  EXPECT_EQ(queue.PositionOf(2), 1u);
  ASSERT_OK(fleet.Release({"hold-a-1"}));
  RecordingSink sink(fleet);
  EXPECT_EQ(queue.Schedule(fleet.alloc(), 0, sink), 1u);
  EXPECT_THAT(sink.placed[2], ElementsAre("a-1"));
  EXPECT_THAT(queue.reservations(), IsEmpty());
}

}  // namespace
}  // namespace nvlsched::allocator
