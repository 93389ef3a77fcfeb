// ReadPool (daemon/services/read_pool.h): every task runs, on threads at the nice value asked
// for; tasks scheduled before the destructor all run; tasks run on more than one thread.
#include "daemon/services/read_pool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "store/sync.h"

namespace nvlsched::daemon {
namespace {

int OwnNice() {
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
}

TEST(ReadPoolTest, TasksRunAtTheNiceValueAskedFor) {
  const int base = OwnNice();
  ASSERT_LT(base, 19) << "the test needs to run below nice 19";
  const int asked = base + 1;
  ReadPool pool(2, asked);
  Mutex mu;
  std::vector<int> seen;
  Notification done;
  constexpr int kTasks = 20;
  for (int i = 0; i < kTasks; ++i) {
    pool.Schedule([&] {
      MutexLock lock(&mu);
      seen.push_back(OwnNice());
      if (seen.size() == kTasks) done.Notify();
    });
  }
  ASSERT_TRUE(done.WaitForNotificationWithDeadline(absl::Now() + absl::Seconds(30)));
  MutexLock lock(&mu);
  for (int nice : seen) EXPECT_EQ(nice, asked);
  // The caller's own priority is untouched.
  EXPECT_EQ(OwnNice(), base);
}

TEST(ReadPoolTest, NiceZeroKeepsTheCallersPriority) {
  const int base = OwnNice();
  ReadPool pool(1, 0);
  std::atomic<int> seen{-100};
  Notification done;
  pool.Schedule([&] {
    seen = OwnNice();
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithDeadline(absl::Now() + absl::Seconds(30)));
  EXPECT_EQ(seen.load(), base);
}

TEST(ReadPoolTest, TheDestructorRunsEveryScheduledTask) {
  std::atomic<int> ran{0};
  {
    ReadPool pool(2, 0);
    for (int i = 0; i < 1000; ++i) pool.Schedule([&ran] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 1000);
}

TEST(ReadPoolTest, TasksRunSideBySideOnItsThreads) {
  ReadPool pool(2, 0);
  // The first task waits for the second: with one thread this would never finish.
  Notification second_ran;
  Notification first_done;
  pool.Schedule([&] {
    if (second_ran.WaitForNotificationWithDeadline(absl::Now() + absl::Seconds(30))) {
      first_done.Notify();
    }
  });
  pool.Schedule([&] { second_ran.Notify(); });
  EXPECT_TRUE(first_done.WaitForNotificationWithDeadline(absl::Now() + absl::Seconds(30)));
}

}  // namespace
}  // namespace nvlsched::daemon
