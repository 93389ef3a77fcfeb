// FaultInjectionVfs: a test-only SQLite VFS that forwards every call to SQLite's "unix" VFS and
// can make one chosen call fail, so tests can prove what the store does when the disk fails at
// any point of a workload.
//
// It wraps the documented VFS interface (sqlite3_vfs_register, sqlite3_io_methods): files are
// real files opened by the "unix" VFS; nothing is stored by the shim itself. A connection uses
// it when opened with the shim's name (StoreOptions::vfs, or the zVfs argument of
// sqlite3_open_v2); other connections are untouched.
//
// It counts four kinds of file calls, over every file opened through it (database, WAL,
// journals, temporary files, VACUUM INTO targets):
//   kWrite    xWrite       kSync  xSync
//   kTruncate xTruncate    kLock  xLock (lock upgrades of the database file; not xShmLock)
// The intended loop: Reset(), run a workload with nothing armed and read count(kind); then for
// each n in 1..count, Reset(), FailNthCall(kind, n, ...), run the same (deterministic) workload
// on a fresh file and check the outcome. The armed call returns an error without reaching the
// file (nothing of it is written, synced, truncated or locked); every other call, before and
// after it, goes through unchanged. fired() and fired_call() say whether and where it failed.
//
// Thread-safety: every method is thread-safe; SQLite may call the shim from any thread.
// Register/unregister (construction/destruction) must not race with opening connections through
// it, and no connection may still use the shim when it is destroyed.
#ifndef NVLSCHED_TESTS_STORE_FAULT_INJECTION_VFS_H_
#define NVLSCHED_TESTS_STORE_FAULT_INJECTION_VFS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/sync.h"

namespace nvlsched::store::store_testing {

enum class FaultKind : int { kWrite = 0, kSync = 1, kTruncate = 2, kLock = 3 };
constexpr int kFaultKindCount = 4;
constexpr std::array<FaultKind, kFaultKindCount> kAllFaultKinds = {
    FaultKind::kWrite, FaultKind::kSync, FaultKind::kTruncate, FaultKind::kLock};

// "write", "sync", "truncate", "lock".
absl::string_view FaultKindName(FaultKind kind);

// What the failing call returns.
enum class FaultError {
  // The I/O error extended code that matches the kind: SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC,
  // SQLITE_IOERR_TRUNCATE or SQLITE_IOERR_LOCK (what the unix VFS returns when the system call
  // fails).
  kIoError,
  // SQLITE_FULL: what the unix VFS returns when a write meets ENOSPC.
  kDiskFull,
};

class FaultInjectionVfs {
 public:
  // Registers a VFS named `name` that wraps "unix" (not as the default VFS).
  // Errors: INVALID_ARGUMENT (empty name), ALREADY_EXISTS (a VFS of that name is registered),
  // NOT_FOUND (this SQLite has no "unix" VFS), INTERNAL (sqlite3_vfs_register failed).
  static absl::StatusOr<std::unique_ptr<FaultInjectionVfs>> Register(const std::string& name);

  // Unregisters the VFS. REQUIRES: no connection opened through it is still open.
  ~FaultInjectionVfs();
  FaultInjectionVfs(const FaultInjectionVfs&) = delete;
  FaultInjectionVfs& operator=(const FaultInjectionVfs&) = delete;

  const std::string& name() const { return name_; }

  // Zeroes every count and disarms the fault.
  void Reset() ABSL_LOCKS_EXCLUDED(mu_);

  // Calls of `kind` since the last Reset() (the failed one included).
  int64_t count(FaultKind kind) const ABSL_LOCKS_EXCLUDED(mu_);

  // Arms one fault: the `n`-th call (1-based, counted since the last Reset()) of `kind` returns
  // `error` instead of reaching the file. Replaces any fault armed before. n <= 0 disarms.
  void FailNthCall(FaultKind kind, int64_t n, FaultError error) ABSL_LOCKS_EXCLUDED(mu_);

  // True once the armed call has been made (and failed).
  bool fired() const ABSL_LOCKS_EXCLUDED(mu_);
  // Where the armed call failed, e.g. "write #17 of /tmp/x/state.db-wal (offset 4152, 4096
  // bytes): SQLITE_IOERR_WRITE"; empty until fired().
  std::string fired_call() const ABSL_LOCKS_EXCLUDED(mu_);

  // Called by the shim's file methods (public only for them): counts a call of `kind` on
  // `file_name` and returns the SQLite code it must fail with, or 0 (SQLITE_OK) to go through.
  // `offset` and `amount`, for the fired_call() text: write: offset and bytes; sync: flags;
  // truncate: new size; lock: lock level.
  int CountCall(FaultKind kind, const char* file_name, int64_t offset, int64_t amount)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The registered sqlite3_vfs (defined in fault_injection_vfs.cc, used only there).
  struct Shim;

 private:

  FaultInjectionVfs(std::string name, std::unique_ptr<Shim> shim);

  // Constant after construction.
  const std::string name_;
  const std::unique_ptr<Shim> shim_;

  // SQLite may call the shim from several threads.
  mutable Mutex mu_;
  std::array<int64_t, kFaultKindCount> counts_ ABSL_GUARDED_BY(mu_){};
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  FaultKind armed_kind_ ABSL_GUARDED_BY(mu_) = FaultKind::kWrite;
  int64_t armed_n_ ABSL_GUARDED_BY(mu_) = 0;
  FaultError armed_error_ ABSL_GUARDED_BY(mu_) = FaultError::kIoError;
  bool fired_ ABSL_GUARDED_BY(mu_) = false;
  std::string fired_call_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nvlsched::store::store_testing

#endif  // NVLSCHED_TESTS_STORE_FAULT_INJECTION_VFS_H_
