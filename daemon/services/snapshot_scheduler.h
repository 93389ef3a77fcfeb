// Point-in-time snapshots of the database: the helpers AdminService's CreateSnapshot and the
// scheduler share, and SnapshotScheduler, which writes one every --snapshot_interval into
// --snapshot_dir and keeps the newest --snapshot_keep (DESIGN.md "Durability").
//
// A snapshot is written by store::Store::WriteSnapshot (VACUUM INTO on its own connection), so
// it runs concurrently with the engine's commits and contains every write acknowledged before
// it started. Files are named by store::SnapshotFileName ("nvlsched-20250102T030405.123456Z.db",
// UTC with microseconds), the names store::PruneSnapshots recognises: on-request snapshots
// written into --snapshot_dir under a generated name are pruned together with scheduled ones.
//
// Thread-safety: the free functions are thread-safe. SnapshotScheduler's methods may be called
// from any thread; it owns one thread between Start() and Stop().
#ifndef NVLSCHED_DAEMON_SERVICES_SNAPSHOT_SCHEDULER_H_
#define NVLSCHED_DAEMON_SERVICES_SNAPSHOT_SCHEDULER_H_

#include <cstdint>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/store.h"
#include "store/sync.h"

namespace nvlsched::daemon {

struct SnapshotFile {
  std::string path;
  int64_t size_bytes = 0;
};

// Creates `dir` (and its parents) if missing.
// Errors: INVALID_ARGUMENT (empty), FAILED_PRECONDITION (exists but is not a directory),
// UNAVAILABLE (cannot create it; the message names the path and the OS error).
absl::Status EnsureSnapshotDir(const std::string& dir);

// `dir`/SnapshotFileName(time).
std::string SnapshotPathIn(const std::string& dir, absl::Time time);

// Writes a snapshot of `store` to `path` and returns the path and the file's size.
// Errors: those of store::Store::WriteSnapshot — INVALID_ARGUMENT (empty path), ALREADY_EXISTS
// (never overwrites), UNAVAILABLE (cannot read the database or write the file, e.g. a missing
// directory or a full disk). Cost: reads and writes the whole database once (seconds when large).
absl::StatusOr<SnapshotFile> WriteSnapshotFile(store::Store& store, const std::string& path);

struct SnapshotSchedulerOptions {
  std::string dir;                                   // --snapshot_dir; created if missing
  absl::Duration interval = absl::ZeroDuration();    // --snapshot_interval; must be > 0
  int keep = 5;                                      // --snapshot_keep; must be >= 1
};

class SnapshotScheduler {
 public:
  // `store` must outlive the scheduler.
  SnapshotScheduler(store::Store* store, SnapshotSchedulerOptions options);
  // Same, from the flags' values. Nothing runs until Start().
  SnapshotScheduler(store::Store* store, std::string dir, absl::Duration interval, int keep)
      : SnapshotScheduler(store, SnapshotSchedulerOptions{std::move(dir), interval, keep}) {}
  ~SnapshotScheduler();  // Stop()s.

  SnapshotScheduler(const SnapshotScheduler&) = delete;
  SnapshotScheduler& operator=(const SnapshotScheduler&) = delete;

  // Starts the thread: the first snapshot is written one interval from now.
  // Errors: INVALID_ARGUMENT (empty dir, interval <= 0, keep < 1 — the message names the flag),
  // FAILED_PRECONDITION (started before, or stopped), and EnsureSnapshotDir's errors.
  absl::Status Start();

  // Wakes the thread and joins it. Returns at once when idle; if a snapshot is being written it
  // returns when that one is done (it is never left half-written). Idempotent.
  void Stop();

  // What one tick does: writes a snapshot into the directory, then prunes to `keep`. A failed
  // prune is logged and does not fail the call (the snapshot was written). Errors: those of
  // WriteSnapshotFile. Safe to call concurrently with the thread (names are unique per µs and
  // WriteSnapshot never overwrites).
  absl::StatusOr<SnapshotFile> RunOnce();

  // Counters for tests and logs.
  int64_t written() const;
  int64_t failed() const;

 private:
  void Run();

  // Constant after construction.
  store::Store* const store_;
  const SnapshotSchedulerOptions options_;

  Notification stop_;
  std::thread thread_;

  mutable Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_SNAPSHOT_SCHEDULER_H_
