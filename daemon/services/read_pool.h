// ReadPool: the threads that answer the reads served from the engine's read view
// (ListInstances, through CallPath::ReadView), at a lower CPU priority than the rest of the
// daemon, so that reads run on the CPU the writes leave.
//
// On the gRPC thread a large ListInstances (a page of 500 records, ~0.5 MB to copy and
// serialize) competes for the CPU with the threads of the write path on equal terms: on the
// 2-core development machine 8 clients listing as fast as they could halved the batch rate of
// `nvlsched-load`. Here the gRPC thread only authenticates and validates the call and hands it
// to a thread of this pool, whose nice value (setpriority on the thread) is raised to `nice`:
// CFS then runs it mostly when the write path leaves a core idle. Reads still make progress
// under load (by CFS's weights a nice 10 thread gets about a tenth of a core that a nice 0 one
// keeps busy), and at full speed when writes are idle. Nice 19 isolated the writes a little
// more (0.66 / 0.75 of the batch rate without readers, against 0.65 / 0.68 at nice 10 and
// 0.48 / 0.50 at 0), but by the same weights a nice 19 thread gets 1.4%: under TSan, with a
// build running beside it, the overload e2e test's lists then waited out their 20 s deadlines.
// The queue is bounded: a read beyond `max_queued` is refused at once (RESOURCE_EXHAUSTED)
// instead of waiting out its deadline.
//
// A thread's nice value can be raised by anyone but lowered only with CAP_SYS_NICE (or within
// RLIMIT_NICE), which is why reads get threads of their own instead of lowering the gRPC threads
// for the duration of a call. Raising it cannot fail for a thread's own nice value; a `nice`
// below the daemon's own leaves the threads at the daemon's.
//
// Thread-safety: TrySchedule is thread-safe. The destructor runs every task already scheduled,
// then joins the threads; destroy the pool after the gRPC server has shut down (a scheduled
// task finishes its call, and the server's Shutdown waits for that).
#ifndef NVLSCHED_DAEMON_SERVICES_READ_POOL_H_
#define NVLSCHED_DAEMON_SERVICES_READ_POOL_H_

#include <cstddef>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "store/sync.h"

namespace nvlsched::daemon {

class ReadPool {
 public:
  // `threads` >= 1 threads at nice value `nice` (0..19; 0 keeps the daemon's priority), and
  // at most `max_queued` >= 1 tasks waiting for one of them.
  ReadPool(int threads, int nice, int max_queued);
  ~ReadPool();

  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  // Queues `task` for a thread; false (and `task` dropped unrun) when `max_queued` tasks are
  // already waiting: the caller refuses the read instead of letting it wait out its deadline.
  bool TrySchedule(absl::AnyInvocable<void() &&> task) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run(int nice) ABSL_LOCKS_EXCLUDED(mu_);

  const size_t max_queued_;
  Mutex mu_;
  CondVar cv_;
  std::deque<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_READ_POOL_H_
