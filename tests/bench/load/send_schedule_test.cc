// SendSchedule (bench/load/send_schedule.h): the open loop's intended send times and its late /
// skipped accounting, driven with made-up time points instead of a clock.
#include "bench/load/send_schedule.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace nvlsched::load {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using TimePoint = SendSchedule::TimePoint;

// An arbitrary origin: the schedule must not care where the clock starts.
const TimePoint kStart = TimePoint(std::chrono::hours(1000));

TimePoint At(int64_t ms) { return kStart + milliseconds(ms); }

TEST(SendScheduleTest, IntendedTimesAreStartPlusIndexOverRate) {
  const SendSchedule schedule(200, 0, 1, 1000000, kStart, At(1000));
  EXPECT_EQ(schedule.Intended(0), kStart);
  EXPECT_EQ(schedule.Intended(1), At(5));
  EXPECT_EQ(schedule.Intended(199), At(995));
  // 3 calls/s: rounded to the nanosecond, never drifting.
  const SendSchedule thirds(3, 0, 1, 1000000, kStart, At(1000));
  EXPECT_EQ(thirds.Intended(1), kStart + nanoseconds(333333333));
  EXPECT_EQ(thirds.Intended(2), kStart + nanoseconds(666666667));
  EXPECT_EQ(thirds.Intended(3000), kStart + std::chrono::seconds(1000));
}

TEST(SendScheduleTest, RunCallsAreThoseIntendedBeforeTheEndWithinMaxCalls) {
  EXPECT_EQ(SendSchedule(200, 0, 1, 1000000, kStart, At(1000)).RunCalls(), 200);
  // A call intended exactly at the end is not in the run; one a nanosecond before is.
  EXPECT_EQ(SendSchedule(200, 0, 1, 1000000, kStart, At(1000) + nanoseconds(1)).RunCalls(), 201);
  EXPECT_EQ(SendSchedule(3, 0, 1, 1000000, kStart, At(1000)).RunCalls(), 3);
  EXPECT_EQ(SendSchedule(0.5, 0, 1, 1000000, kStart, At(1000)).RunCalls(), 1);  // only n = 0
  EXPECT_EQ(SendSchedule(200, 0, 1, 50, kStart, At(1000)).RunCalls(), 50);
  EXPECT_EQ(SendSchedule(200, 0, 1, 0, kStart, At(1000)).RunCalls(), 0);
  EXPECT_EQ(SendSchedule(200, 0, 1, 1000000, kStart, kStart).RunCalls(), 0);
  // Rates whose period does not divide a second: check against the definition.
  for (double rate : {7.0, 333.0, 999.9, 12345.0}) {
    const SendSchedule schedule(rate, 0, 1, 1000000, kStart, At(1000));
    const int64_t n = schedule.RunCalls();
    ASSERT_GT(n, 0) << rate;
    EXPECT_LT(schedule.Intended(n - 1), At(1000)) << rate;
    EXPECT_GE(schedule.Intended(n), At(1000)) << rate;
  }
}

TEST(SendScheduleTest, ThreadsSplitTheOneScheduleWithoutOverlap) {
  constexpr int kThreads = 3;
  std::set<int64_t> seen;
  int64_t scheduled = 0;
  for (int t = 0; t < kThreads; ++t) {
    SendSchedule schedule(100, t, kThreads, 1000000, kStart, At(1000));
    scheduled += schedule.scheduled();
    // Sent on time, every call in one go at the end: the thread's calls in order.
    for (int i = 0; i < 200; ++i) {
      std::optional<SendSchedule::Call> call = schedule.TakeDue(At(1000));
      if (!call.has_value()) break;
      EXPECT_EQ(call->index % kThreads, t);
      EXPECT_EQ(call->intended, schedule.Intended(call->index));
      EXPECT_TRUE(seen.insert(call->index).second) << call->index;
    }
    EXPECT_FALSE(schedule.Next().has_value());
    EXPECT_EQ(schedule.issued(), schedule.scheduled());
  }
  EXPECT_EQ(scheduled, 100);
  ASSERT_EQ(seen.size(), 100u);
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), 99);
}

TEST(SendScheduleTest, NothingIsDueBeforeItsIntendedTime) {
  SendSchedule schedule(100, 0, 1, 1000000, kStart, At(1000));  // every 10 ms
  ASSERT_TRUE(schedule.TakeDue(kStart).has_value());               // call 0 at 0 ms
  EXPECT_EQ(schedule.Next(), At(10));
  EXPECT_FALSE(schedule.TakeDue(At(9)).has_value());
  EXPECT_FALSE(schedule.TakeDue(At(10) - nanoseconds(1)).has_value());
  std::optional<SendSchedule::Call> call = schedule.TakeDue(At(10));
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->index, 1);
  EXPECT_FALSE(call->late);
  // A thread that woke up late but found a slot free: behind, yet not held back by the cap.
  call = schedule.TakeDue(At(35));
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->intended, At(20));
  EXPECT_FALSE(call->late);
  EXPECT_EQ(schedule.issued(), 3);
  EXPECT_EQ(schedule.late(), 0);
}

// A thread with one slot: call 0 takes it at 0 ms and completes at 25 ms, so calls 1 and 2
// (10 and 20 ms) wait for it; call 3 (30 ms) is sent on time.
TEST(SendScheduleTest, CallsHeldBackByTheCapAreLate) {
  SendSchedule schedule(100, 0, 1, 1000000, kStart, At(1000));
  ASSERT_TRUE(schedule.TakeDue(At(0)).has_value());
  schedule.SlotFreedAfterCap(At(25));
  std::optional<SendSchedule::Call> call = schedule.TakeDue(At(25));
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->intended, At(10));
  EXPECT_TRUE(call->late);
  // Call 1 took the slot at 25 ms and completes at 26 ms: call 2 (20 ms) waited for the cap too.
  schedule.SlotFreedAfterCap(At(26));
  call = schedule.TakeDue(At(26));
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->intended, At(20));
  EXPECT_TRUE(call->late);
  EXPECT_FALSE(schedule.TakeDue(At(26)).has_value());  // call 3 is not due yet
  schedule.SlotFreedAfterCap(At(27));
  call = schedule.TakeDue(At(30));
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->index, 3);
  EXPECT_FALSE(call->late);  // intended after the slot freed up
  EXPECT_EQ(schedule.issued(), 4);
  EXPECT_EQ(schedule.late(), 2);
  EXPECT_EQ(schedule.skipped(), 0);
}

// Several slots freeing at once: every call that waited is late, not only the first.
TEST(SendScheduleTest, EveryCallWaitingWhenTheCapLiftsIsLate) {
  SendSchedule schedule(1000, 0, 1, 1000000, kStart, At(1000));  // every 1 ms
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(schedule.TakeDue(At(3)).has_value());
  // Four slots, all busy until 10 ms: calls 4..9 waited.
  schedule.SlotFreedAfterCap(At(10));
  int late = 0;
  for (int i = 0; i < 4; ++i) {
    std::optional<SendSchedule::Call> call = schedule.TakeDue(At(10));
    ASSERT_TRUE(call.has_value());
    late += call->late ? 1 : 0;
  }
  EXPECT_EQ(late, 4);
  EXPECT_EQ(schedule.late(), 4);
}

TEST(SendScheduleTest, SkipRestCountsEveryCallNeverSent) {
  SendSchedule schedule(100, 1, 2, 1000000, kStart, At(1000));  // odd calls of 100: 50
  EXPECT_EQ(schedule.scheduled(), 50);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(schedule.TakeDue(At(1000)).has_value());
  EXPECT_EQ(schedule.SkipRest(), 40);
  EXPECT_EQ(schedule.SkipRest(), 0);  // once only
  EXPECT_FALSE(schedule.Next().has_value());
  EXPECT_FALSE(schedule.TakeDue(At(2000)).has_value());
  EXPECT_EQ(schedule.issued(), 10);
  EXPECT_EQ(schedule.skipped(), 40);
  EXPECT_EQ(schedule.issued() + schedule.skipped(), schedule.scheduled());
}

TEST(SendScheduleTest, MaxCallsBoundsEveryThreadsShare) {
  // 7 calls over 3 threads: 0 3 6 | 1 4 | 2 5.
  std::vector<int64_t> shares;
  for (int t = 0; t < 3; ++t) {
    shares.push_back(SendSchedule(1000, t, 3, 7, kStart, At(1000)).scheduled());
  }
  EXPECT_EQ(shares, (std::vector<int64_t>{3, 2, 2}));
}

}  // namespace
}  // namespace nvlsched::load
