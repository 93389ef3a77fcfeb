#include "daemon/server/memory_trimmer.h"

#if defined(__GLIBC__)
#include <pthread.h>
#include <malloc.h>
#endif
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace nvlsched::daemon {
namespace {

// Free bytes malloc holds (in every arena), or -1 without glibc.
int64_t HeapFreeBytes() {
#if defined(__GLIBC__)
  const struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.fordblks + info.fsmblks);
#else
  return -1;
#endif
}

// Resident memory of this process in bytes (0 if unreadable).
int64_t ResidentBytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  const int n = std::fscanf(f, "%ld %ld", &pages, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE) : 0;
}

double Mib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

}  // namespace

MemoryTrimmer::MemoryTrimmer(int64_t threshold_bytes, absl::Duration period)
    : threshold_bytes_(threshold_bytes), period_(period) {}

MemoryTrimmer::~MemoryTrimmer() { Stop(); }

void MemoryTrimmer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void MemoryTrimmer::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void MemoryTrimmer::Run() {
  pthread_setname_np(pthread_self(), "nvl-trimmer");
  while (!stop_.WaitForNotificationWithDeadline(absl::Now() + period_)) CheckOnce();
}

bool MemoryTrimmer::CheckOnce() {
#if defined(__GLIBC__)
  const int64_t free_bytes = HeapFreeBytes();
  // Memory freed since the last trim was reused: trim relative to what is free now.
  if (free_bytes < baseline_free_bytes_) baseline_free_bytes_ = free_bytes;
  if (free_bytes - baseline_free_bytes_ < threshold_bytes_) return false;
  const int64_t resident_before = ResidentBytes();
  const absl::Time start = absl::Now();
  malloc_trim(0);
  const absl::Duration took = absl::Now() - start;
  baseline_free_bytes_ = HeapFreeBytes();
  trims_.fetch_add(1);
  const int64_t resident_after = ResidentBytes();
  spdlog::info(
      "returned freed memory to the OS: resident {:.1f} -> {:.1f} MiB ({:.1f} MiB free "
      "in the heap) in {:.1f} ms",
      Mib(resident_before), Mib(resident_after), Mib(free_bytes), absl::ToDoubleMilliseconds(took));
  return true;
#else
  return false;
#endif
}

}  // namespace nvlsched::daemon
