#include "daemon/services/read_pool.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <utility>

namespace nvlsched::daemon {

ReadPool::ReadPool(int threads, int nice, int max_queued)
    : max_queued_(static_cast<size_t>(max_queued)) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this, nice] { Run(nice); });
}

ReadPool::~ReadPool() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    cv_.SignalAll();
  }
  for (std::thread& thread : threads_) thread.join();
}

bool ReadPool::TrySchedule(absl::AnyInvocable<void() &&> task) {
  MutexLock lock(&mu_);
  if (tasks_.size() >= max_queued_) return false;
  tasks_.push_back(std::move(task));
  cv_.Signal();
  return true;
}

void ReadPool::Run(int nice) {
  pthread_setname_np(pthread_self(), "nvl-reader");
  // On Linux a thread's nice value is its own (PRIO_PROCESS with the thread id).
  const id_t tid = static_cast<id_t>(::syscall(SYS_gettid));
  if (nice > ::getpriority(PRIO_PROCESS, tid)) ::setpriority(PRIO_PROCESS, tid, nice);
  for (;;) {
    absl::AnyInvocable<void() &&> task;
    {
      MutexLock lock(&mu_);
      while (tasks_.empty() && !stop_) cv_.Wait(&mu_);
      if (tasks_.empty()) return;  // stopping, and nothing left to run
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    std::move(task)();
  }
}

}  // namespace nvlsched::daemon
