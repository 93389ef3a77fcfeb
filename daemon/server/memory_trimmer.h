// MemoryTrimmer: gives memory the daemon has freed back to the operating system.
//
// glibc's malloc keeps freed memory for reuse: what is freed in the middle of its heaps (and in
// the heaps of its per-thread arenas) stays resident. After a burst — thousands of answers
// built, held while clients read them, then freed — the daemon's resident memory would stay at
// its peak although most of it is free. Once a second the trimmer asks malloc how much free
// memory it holds (mallinfo2), and when that has grown by `threshold_bytes` since the last trim
// it calls malloc_trim(0), which returns the free pages (madvise MADV_DONTNEED). It runs on a
// thread of its own: neither the engine nor a gRPC thread waits for a trim (malloc_trim takes
// each arena's lock in turn, so an allocation may wait for the trim of its arena). The baseline
// is what is still free after a trim, so memory that cannot be returned (free pieces smaller
// than a page) does not make it trim every second. Without glibc it does nothing.
//
// Thread-safety: Start and Stop from one thread; the counters from any.
#ifndef NVLSCHED_DAEMON_SERVER_MEMORY_TRIMMER_H_
#define NVLSCHED_DAEMON_SERVER_MEMORY_TRIMMER_H_

#include <atomic>
#include <cstdint>
#include <thread>

#include "absl/time/time.h"
#include "store/sync.h"

namespace nvlsched::daemon {

class MemoryTrimmer {
 public:
  // `threshold_bytes` > 0; `period` > 0.
  MemoryTrimmer(int64_t threshold_bytes, absl::Duration period = absl::Seconds(1));
  ~MemoryTrimmer();  // Stop()s.
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  void Start();
  // Wakes the thread and joins it. Idempotent.
  void Stop();

  // One check (what the thread does every period): trims if the free heap memory grew by the
  // threshold since the last trim. Returns true if it trimmed. Cost: mallinfo2 (walks the free
  // lists of every arena); a trim also walks the free chunks and makes a system call per range.
  bool CheckOnce();

  int64_t trims() const { return trims_.load(); }

 private:
  void Run();

  // Constant after construction.
  const int64_t threshold_bytes_;
  const absl::Duration period_;

  Notification stop_;
  std::thread thread_;
  // Free heap bytes after the last trim (thread of CheckOnce only).
  int64_t baseline_free_bytes_ = 0;
  std::atomic<int64_t> trims_{0};
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVER_MEMORY_TRIMMER_H_
