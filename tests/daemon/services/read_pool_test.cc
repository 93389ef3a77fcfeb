// ReadPool (daemon/services/read_pool.h): every task runs, on threads at the nice value asked
// for; tasks scheduled before the destructor all run; tasks run on more than one thread; beyond
// max_queued waiting tasks TrySchedule refuses.
#include "daemon/services/read_pool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "store/sync.h"

namespace nvlsched::daemon {
namespace {

int OwnNice() {
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
}

absl::Time In30s() { return absl::Now() + absl::Seconds(30); }

TEST(ReadPoolTest, TasksRunAtTheNiceValueAskedFor) {
  const int base = OwnNice();
  ASSERT_LT(base, 19) << "the test needs to run below nice 19";
  const int asked = base + 1;
  ReadPool pool(2, asked, 64);
  Mutex mu;
  std::vector<int> seen;
  Notification done;
  constexpr size_t kTasks = 20;
  for (size_t i = 0; i < kTasks; ++i) {
    EXPECT_TRUE(pool.TrySchedule([&] {
      MutexLock lock(&mu);
      seen.push_back(OwnNice());
      if (seen.size() == kTasks) done.Notify();
    }));
  }
  ASSERT_TRUE(done.WaitForNotificationWithDeadline(In30s()));
  MutexLock lock(&mu);
  for (int nice : seen) EXPECT_EQ(nice, asked);
  // The caller's own priority is untouched.
  EXPECT_EQ(OwnNice(), base);
}

TEST(ReadPoolTest, NiceZeroKeepsTheCallersPriority) {
  const int base = OwnNice();
  ReadPool pool(1, 0, 64);
  std::atomic<int> seen{-100};
  Notification done;
  EXPECT_TRUE(pool.TrySchedule([&] {
    seen = OwnNice();
    done.Notify();
  }));
  ASSERT_TRUE(done.WaitForNotificationWithDeadline(In30s()));
  EXPECT_EQ(seen.load(), base);
}

TEST(ReadPoolTest, TheDestructorRunsEveryScheduledTask) {
  std::atomic<int> ran{0};
  {
    ReadPool pool(2, 0, 1000);
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(pool.TrySchedule([&ran] { ++ran; }));
  }
  EXPECT_EQ(ran.load(), 1000);
}

TEST(ReadPoolTest, TasksRunSideBySideOnItsThreads) {
  ReadPool pool(2, 0, 64);
  // The first task waits for the second: with one thread this would never finish.
  Notification second_ran;
  Notification first_done;
  EXPECT_TRUE(pool.TrySchedule([&] {
    if (second_ran.WaitForNotificationWithDeadline(In30s())) first_done.Notify();
  }));
  EXPECT_TRUE(pool.TrySchedule([&] { second_ran.Notify(); }));
  EXPECT_TRUE(first_done.WaitForNotificationWithDeadline(In30s()));
}

TEST(ReadPoolTest, BeyondMaxQueuedTasksAreRefusedAndNotRun) {
  std::atomic<int> ran{0};
  Notification running;
  Notification release;
  {
    ReadPool pool(1, 0, 2);
    // The one thread takes this task off the queue and holds on to it.
    EXPECT_TRUE(pool.TrySchedule([&] {
      running.Notify();
      release.WaitForNotificationWithDeadline(In30s());
      ++ran;
    }));
    ASSERT_TRUE(running.WaitForNotificationWithDeadline(In30s()));
    EXPECT_TRUE(pool.TrySchedule([&ran] { ++ran; }));
    EXPECT_TRUE(pool.TrySchedule([&ran] { ++ran; }));
    EXPECT_FALSE(pool.TrySchedule([&ran] { ran += 100; }));  // two already wait
    release.Notify();
  }
  EXPECT_EQ(ran.load(), 3);
}

}  // namespace
}  // namespace nvlsched::daemon
