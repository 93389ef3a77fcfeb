// Store: nvlsched's durable copy of everything it knows, in one SQLite database (WAL mode).
//
// Memory is the source of truth at run time; the store is the source of truth on disk. The
// daemon loads the whole database once at start-up (LoadAll) and then writes each group of
// decisions as ONE transaction (Commit) before it answers any request of the group. Group
// commit — batching queued requests into one Commit — is the daemon engine's job.
//
// Schema (store/schema.cc, versioned by PRAGMA user_version, migrated forward at Open):
//   instance_types, domains, machines(+machine_labels), tenants(+tenant_quotas),
//   instances (their NVLink partition ids in a column), idempotency, meta.
// Maps and lists are WITHOUT ROWID child tables keyed by (parent id, key|position); instances
// are indexed by machine, by (tenant, name) (unique) and by batch; "no machine"/"no batch" is
// NULL. Foreign keys are enforced, so a machine cannot be deleted while an instance uses it and
// a quota cannot name an unknown instance type.
//
// Failure policy: the first failed Commit (anything after BEGIN) rolls back and LATCHES the
// store: every later Commit returns UNAVAILABLE quoting the first failure, without touching the
// file, until the process restarts. Before it returns, the failed Commit checkpoints and empties
// the WAL (PRAGMA wal_checkpoint(TRUNCATE)), so that a crash cannot resurrect a transaction
// whose fsync failed after its frames were written (tests/store/store_fault_test.cc). Reads
// (LoadAll, WriteSnapshot) keep working. This mirrors the daemon's read-only-after-failure state
// and avoids retrying after an fsync error, whose outcome on disk is unknown.
//
// Thread-safety: every method is thread-safe. Commit and LoadAll share one connection and are
// serialised by an internal mutex. WriteSnapshot uses its own connection and takes no lock on
// file databases, so a snapshot runs concurrently with commits (WAL lets them proceed).
//
// No SQLite type appears in this header; no exception leaves the store.
#ifndef NVLSCHED_STORE_STORE_H_
#define NVLSCHED_STORE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/rows.h"
#include "store/sync.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace nvlsched::store {

class FileLock;
class RowWriter;

enum class SyncMode {
  // PRAGMA synchronous=FULL: every commit is fsynced; survives power loss. The default.
  kFull,
  // PRAGMA synchronous=NORMAL (WAL): survives a process crash; the last commits before a power
  // loss may be lost (they were acknowledged), so Invariant 3 holds only for process crashes.
  kNormal,
};

struct StoreOptions {
  // Database file, created if missing. ":memory:" gives a private in-memory database (tests).
  std::string path;
  SyncMode sync = SyncMode::kFull;
  // Run PRAGMA quick_check at Open and refuse a damaged file. Leave on in the daemon; it reads
  // the whole file once: about 1 s for a 620 MB database (bench/store_bench.cc, BM_Open).
  bool quick_check_on_open = true;
  // How long a statement waits for a lock held by another connection (e.g. a checkpoint).
  int busy_timeout_ms = 5000;
  // Tests only: caps the database at this many pages (PRAGMA max_page_count) so that a commit
  // meets SQLITE_FULL. 0 keeps SQLite's limit.
  int64_t max_page_count = 0;
  // Tests only: the name of a registered SQLite VFS that every connection of this Store (the
  // main one and WriteSnapshot's) opens the database through, e.g. the fault-injection VFS of
  // tests/store/fault_injection_vfs.h. Empty uses SQLite's default VFS. Open fails with
  // UNAVAILABLE ("no such vfs") if no VFS of that name is registered.
  std::string vfs;
};

// What one Commit did, for the daemon's metrics.
struct CommitStats {
  absl::Duration duration;   // BEGIN IMMEDIATE to the end of COMMIT, including the fsync
  int64_t rows_written = 0;  // rows inserted, updated or deleted, child rows included
};

class Store {
 public:
  // Opens (creating if missing) the database at options.path: checks the schema version, runs
  // PRAGMA quick_check, switches to WAL, sets synchronous and foreign_keys, migrates forward to
  // CurrentSchemaVersion() and prepares the write statements.
  // Errors:
  //   INVALID_ARGUMENT   empty path.
  //   FAILED_PRECONDITION the file's schema version is newer than this build's (message names
  //                      both versions), or the file system cannot hold a WAL database.
  //   DATA_LOSS          the file is not a database, or is corrupt (message names the path and
  //                      SQLite's message, or quick_check's first findings).
  //   FAILED_PRECONDITION another Store holds the database (in this or another process): Open
  //                      takes an exclusive lock on "<path>.lock" (store/file_lock.h), held
  //                      until the Store is destroyed; the message names the holder's pid.
  //   UNAVAILABLE        cannot open/read/write the file (permissions, missing directory, I/O),
  //                      or a migration failed (the file stays at its last complete version).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Everything stored, each kind in insertion order, read in one read transaction.
  // Errors: DATA_LOSS (corrupt file, or a child row without its parent), UNAVAILABLE (I/O).
  // Cost: O(rows). Measured (bench/store_bench.cc, Release, 2 vCPUs): 100k machines + 500k
  // instances with 512-byte details (a 620 MB file) load in about 2 s of CPU, 2.8 s wall with
  // a warm page cache, into about 650 MB of resident memory.
  absl::StatusOr<LoadedState> LoadAll() ABSL_LOCKS_EXCLUDED(mu_);

  // Applies `changes` as ONE transaction (BEGIN IMMEDIATE ... COMMIT) with statements prepared
  // at Open. Either all of it is durable (per StoreOptions::sync) when this returns OK, or none
  // of it is visible. `stats`, if not null, receives the duration and rows written (zeroes on
  // error). An empty ChangeSet is OK and writes nothing.
  // Errors:
  //   INVALID_ARGUMENT  an id is both upserted and deleted in one ChangeSet (caller bug;
  //                     nothing was written and the store is NOT latched).
  //   UNAVAILABLE       anything failed after BEGIN: a constraint (duplicate instance name in a
  //                     tenant, unknown reference, CHECK, deleting a machine still in use),
  //                     SQLITE_FULL ("database or disk is full"), SQLITE_IOERR, SQLITE_READONLY.
  //                     The message names the row and SQLite's message. The transaction is
  //                     rolled back and the store is latched (see above): later calls return
  //                     UNAVAILABLE quoting this failure.
  // Cost: one fsync (kFull) plus O(rows) statement executions; no statement is prepared.
  absl::Status Commit(const ChangeSet& changes, CommitStats* stats = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Writes a consistent point-in-time copy of the database to `dest_path` (VACUUM INTO a
  // temporary file beside it, fsync, then an atomic no-replace rename). Runs on a separate
  // read-only connection: in WAL mode concurrent Commits proceed while it copies. The result is
  // a compact, self-contained database that Store::Open accepts. Defined in store/snapshot.cc.
  // Errors: INVALID_ARGUMENT (empty path), ALREADY_EXISTS (dest_path exists; it is never
  // overwritten), UNAVAILABLE (cannot read the source or write the copy, e.g. disk full).
  // Cost: reads and writes the whole database once.
  absl::Status WriteSnapshot(const std::string& dest_path) ABSL_LOCKS_EXCLUDED(mu_);

  // Committed events with sequence > after_sequence, at most `limit`, in order. Reads on a
  // separate read-only connection (opened on first use), so it never waits for or delays a
  // Commit in WAL mode (":memory:" reads through the one connection).
  // Errors: UNAVAILABLE (I/O), DATA_LOSS (corrupt file).
  absl::StatusOr<std::vector<EventRow>> ReadEvents(uint64_t after_sequence, size_t limit)
      ABSL_LOCKS_EXCLUDED(mu_, read_mu_);

  // OK, or the failure that latched the store.
  absl::Status failure() const ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& path() const { return options_.path; }

 private:
  explicit Store(StoreOptions options);

  // Open's work once the Store exists: opens, checks, configures, migrates, prepares.
  absl::Status Initialize() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Rolls back the open transaction, if any, and latches `status`.
  void FailTransaction(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool in_memory() const;

  // Constant after construction.
  const StoreOptions options_;

  mutable Mutex mu_;
  // The lock on "<path>.lock" (none for ":memory:"); declared first so it is released last,
  // after the connection has closed.
  std::unique_ptr<FileLock> lock_ ABSL_GUARDED_BY(mu_);
  // The connection and everything prepared on it; declared so the statements are finalized
  // before the connection closes.
  std::unique_ptr<SQLite::Database> db_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SQLite::Statement> begin_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SQLite::Statement> commit_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SQLite::Statement> rollback_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<RowWriter> writer_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);

  // ReadEvents' own connection.
  Mutex read_mu_;
  std::unique_ptr<SQLite::Database> reader_ ABSL_GUARDED_BY(read_mu_);
};

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_STORE_H_
