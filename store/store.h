// Store: nvlsched's durable copy of everything it knows: one interface, two implementations.
//   SqliteStore (store/sqlite_store.h): one SQLite database file (WAL mode), the embedded
//     default; `--db=PATH`.
//   PgStore (store/pg_store.h): a PostgreSQL 15 database, `--db=postgresql://...`, for sites
//     that run active/standby daemons (issue 22). Same tables, same ChangeSet semantics, same
//     errors; the database's session-level advisory lock elects the one daemon that writes.
// Store::Open picks the implementation from the --db value (IsPostgresUri). What follows
// describes the contract both keep; SQLite specifics are marked.
//
// Memory is the source of truth at run time; the store is the source of truth on disk. The
// daemon loads the whole database once at start-up (LoadAll) and then writes each group of
// decisions as ONE transaction (Commit) before it answers any request of the group. Group
// commit — batching queued requests into one Commit — is the daemon engine's job.
//
// Schema (store/schema.cc for SQLite, versioned by PRAGMA user_version; store/pg_store.cc for
// PostgreSQL, versioned in the table nvlsched_schema; migrated forward at Open):
//   instance_types, domains, machines(+machine_labels), tenants(+tenant_quotas),
//   instances (their NVLink partition ids in a column), idempotency, meta, events.
// Maps are child tables keyed by (parent id, key); instances are indexed by (tenant, name)
// (unique) only; "no machine"/"no batch" is NULL. Foreign keys are enforced, so a machine
// cannot be deleted while an instance uses it and a quota cannot name an unknown instance type.
//
// Failure policy: the first failed Commit (anything after BEGIN) rolls back and LATCHES the
// store: every later Commit returns UNAVAILABLE quoting the first failure, without touching the
// database, until the process opens it again. Reads (LoadAll, WriteSnapshot) keep working. This
// mirrors the daemon's read-only-after-failure state and avoids retrying after an fsync error
// or a lost connection, whose outcome is unknown. (SQLite also empties its WAL then:
// store/sqlite_store.h.)
//
// Leadership: whoever holds the store writes. SQLite: an exclusive lock on "<path>.lock" for
// the Store's life (a second Open fails FAILED_PRECONDITION). PostgreSQL: a session-level
// advisory lock on the connection that commits; a second Open fails ABORTED naming the leader
// (a standby retries), and a leader whose connection is lost latches (every later Commit is
// UNAVAILABLE) and never reconnects: the lock may already be another daemon's.
//
// Thread-safety: every method is thread-safe. Commit and LoadAll share one connection and are
// serialised by an internal mutex. WriteSnapshot and ReadEvents use their own connections, so
// they run concurrently with commits.
//
// No SQLite or PostgreSQL type appears in this header; no exception leaves the store.
#ifndef NVLSCHED_STORE_STORE_H_
#define NVLSCHED_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "store/rows.h"

namespace nvlsched::store {

enum class SyncMode {
  // PRAGMA synchronous=FULL: every commit is fsynced; survives power loss. The default.
  kFull,
  // PRAGMA synchronous=NORMAL (WAL): survives a process crash; the last commits before a power
  // loss may be lost (they were acknowledged), so Invariant 3 holds only for process crashes.
  kNormal,
};

// One schema migration Open applies (StoreOptions::on_migration).
struct MigrationStep {
  int from_version = 0;
  int to_version = 0;
  std::string description;
  std::optional<absl::Duration> took;  // unset before the migration, set once it committed
};

struct StoreOptions {
  // SQLite: the database file, created if missing; ":memory:" gives a private in-memory
  // database (tests). PostgreSQL: a libpq URI (postgresql://user@host:port/dbname?...) of an
  // existing database; the tables are created in it at the first Open.
  std::string path;
  // SQLite only (PostgreSQL follows its server's synchronous_commit, on by default).
  SyncMode sync = SyncMode::kFull;
  // SQLite only: run PRAGMA quick_check at Open and refuse a damaged file. Leave on in the
  // daemon; it reads the whole file once: about 1 s for a 620 MB database (bench/store_bench.cc,
  // BM_Open).
  bool quick_check_on_open = true;
  // SQLite only, with quick_check_on_open: when the file is at the current schema version (no
  // migration will write to it), Open leaves the check to the first LoadAll, which runs it on a
  // read-only connection of its own while it reads, and fails DATA_LOSS with its findings. The
  // two each read the whole file, so on two cores a start-up pays for one of them. A Commit or
  // WriteSnapshot before any LoadAll runs the check first (nothing is written or copied from an
  // unchecked file). A file that needs a migration (or a new one) is still checked in Open.
  bool quick_check_with_load = false;
  // SQLite only: how long a statement waits for a lock held by another connection (e.g. a
  // checkpoint).
  int busy_timeout_ms = 5000;
  // SQLite only: the WAL is checkpointed on a thread and connection of its own once it holds
  // this many pages (and its last frames, at most an eighth of this, by the writer after a pass of
  // the thread), and by the writer itself once it holds checkpoint_on_writer_pages
  // (store/checkpointer.h). 0 keeps SQLite's automatic checkpoint on the writer (every 1000
  // pages) and no thread, so that every file call comes from the caller's thread in a fixed
  // order: the fault-injection tests need that. With checkpoint_on_writer_pages at or below
  // checkpoint_background_pages the thread is never woken (tests).
  int checkpoint_background_pages = 1000;
  int checkpoint_on_writer_pages = 10000;
  // Called by Open around each schema migration it applies to an existing database (not one it
  // creates), SQLite and PostgreSQL: before, with `took` unset, and after it committed, with
  // its duration (PostgreSQL: both once the one transaction of all its migrations committed).
  // Some rebuild a table (v12: 15-24 s for 500,000 instances), so the daemon logs them.
  // Empty: nothing is called.
  std::function<void(const MigrationStep& step)> on_migration;
  // PostgreSQL only: how long Open waits to connect (libpq connect_timeout, whole seconds).
  int connect_timeout_seconds = 5;
  // Tests only: caps the database at this many pages (PRAGMA max_page_count) so that a commit
  // meets SQLITE_FULL. 0 keeps SQLite's limit.
  int64_t max_page_count = 0;
  // Tests only: the name of a registered SQLite VFS that every connection of this Store (the
  // main one and WriteSnapshot's) opens the database through, e.g. the fault-injection VFS of
  // tests/store/fault_injection_vfs.h. Empty uses SQLite's default VFS. Open fails with
  // UNAVAILABLE ("no such vfs") if no VFS of that name is registered.
  std::string vfs;
};

// The WAL checkpoints a SQLite store ran so far (store/checkpointer.h), for the daemon's
// metrics; all zero for PostgreSQL, and for SQLite without the checkpointer's thread.
struct CheckpointCounts {
  int64_t background = 0;  // passes of the store's checkpoint thread
  int64_t on_writer = 0;   // checkpoints the writer ran itself (the WAL at its cap)
  int64_t failed = 0;      // checkpoints, on either side, that returned an error
  int64_t woken = 0;       // commits that woke the thread (each gets a pass of its own)
  int64_t rest_on_writer = 0;  // the writer copied the last frames after a pass of the thread
};

// What one Commit did, for the daemon's metrics.
struct CommitStats {
  absl::Duration duration;   // BEGIN IMMEDIATE to the end of COMMIT, including the fsync
  int64_t rows_written = 0;  // rows inserted, updated or deleted, child rows included
};

// True if `db` names a PostgreSQL database (a libpq URI: "postgresql://" or "postgres://"),
// not a SQLite file.
bool IsPostgresUri(absl::string_view db);

class Store {
 public:
  // Opens the store `options.path` names: a PostgreSQL URI (IsPostgresUri) opens a PgStore,
  // anything else the SQLite file at that path (SqliteStore: created if missing). Checks the
  // schema version, migrates forward to the current one and prepares for writing.
  // Errors:
  //   INVALID_ARGUMENT   empty path; a PostgreSQL URI libpq cannot parse.
  //   FAILED_PRECONDITION the database's schema version is newer than this build's (message
  //                      names both versions); SQLite: the file system cannot hold a WAL
  //                      database, or another Store holds the file (store/file_lock.h: an
  //                      exclusive lock on "<path>.lock" for the Store's life; the message names
  //                      the holder's pid).
  //   ABORTED            PostgreSQL: another daemon holds the database's leader lock; the
  //                      message names it ("the leader is <address>"). Retry to stand by.
  //   DATA_LOSS          SQLite: the file is not a database, or is corrupt (message names the
  //                      path and SQLite's message, or quick_check's first findings).
  //   UNAVAILABLE        cannot open/read/write the database (permissions, missing directory,
  //                      I/O, PostgreSQL unreachable), or a migration failed (the database
  //                      stays at its last complete version).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);

  virtual ~Store() = default;

  // Everything stored, each kind in insertion order, read in one read transaction.
  // Errors: DATA_LOSS (corrupt file, or a child row without its parent), UNAVAILABLE (I/O).
  // Cost: O(rows). Measured (bench/store_bench.cc, Release, 2 vCPUs): 100k machines + 500k
  // instances with 512-byte details (a 620 MB file) load in about 2 s of CPU, 2.8 s wall with
  // a warm page cache, into about 650 MB of resident memory.
  virtual absl::StatusOr<LoadedState> LoadAll(InstanceColumns columns) = 0;
  absl::StatusOr<LoadedState> LoadAll() { return LoadAll(InstanceColumns::kAll); }

  // Applies `changes` as ONE transaction. Either all of it is durable (SQLite: per
  // StoreOptions::sync; PostgreSQL: per the server's synchronous_commit) when this returns OK,
  // or none of it is visible. `stats`, if not null, receives the duration and rows written
  // (zeroes on error). An empty ChangeSet is OK and writes nothing.
  // Errors:
  //   INVALID_ARGUMENT  an id is both upserted and deleted in one ChangeSet, or a value the
  //                     store cannot keep (caller bug; nothing was written and the store is NOT
  //                     latched).
  //   UNAVAILABLE       anything failed once the transaction began: a constraint (duplicate
  //                     instance name in a tenant, unknown reference, CHECK, deleting a machine
  //                     still in use), a full disk, I/O, a lost PostgreSQL connection. The
  //                     message names the row or the statement and the database's message. The
  //                     transaction is rolled back and the store is latched: later calls return
  //                     UNAVAILABLE quoting this failure, until the process opens it again.
  // Cost: SQLite: one fsync (kFull) plus O(rows) prepared-statement executions. PostgreSQL:
  // a round trip per kind of row written (multi-row statements) and the server's WAL flush.
  virtual absl::Status Commit(const ChangeSet& changes, CommitStats* stats = nullptr) = 0;

  // Writes a consistent point-in-time copy of the database to `dest_path` as a SQLite
  // database that Store::Open accepts (SQLite: VACUUM INTO; PostgreSQL: one read transaction
  // copied into a new SQLite file), through a temporary file beside it, fsync, then an atomic
  // no-replace rename. Concurrent Commits proceed while it copies.
  // Errors: INVALID_ARGUMENT (empty path), ALREADY_EXISTS (dest_path exists; it is never
  // overwritten), UNAVAILABLE (cannot read the source or write the copy, e.g. disk full).
  // Cost: reads and writes the whole database once.
  virtual absl::Status WriteSnapshot(const std::string& dest_path) = 0;

  // Committed events with sequence > after_sequence, at most `limit`, in order. Reads on a
  // separate connection (opened on first use), so it never waits for or delays a Commit
  // (SQLite ":memory:" reads through the one connection).
  // Errors: UNAVAILABLE (I/O), DATA_LOSS (corrupt file).
  virtual absl::StatusOr<std::vector<EventRow>> ReadEvents(uint64_t after_sequence,
                                                           size_t limit) = 0;

  // OK, or the failure that latched the store.
  virtual absl::Status failure() const = 0;

  // OK while this Store still holds the database for writing. SQLite: failure() (a file lock
  // cannot be lost). PostgreSQL: a round trip on the connection that holds the leader lock
  // (waiting for a Commit in progress); a lost connection latches the store and returns
  // UNAVAILABLE. The daemon calls it every --standby_poll to step down promptly when idle.
  virtual absl::Status CheckLeadership() = 0;

  // Publishes the address clients reach this daemon at, so that a standby can name the
  // leader ("the leader is <address>"). SQLite: nothing to publish (one daemon per file).
  // PostgreSQL: the lock connection's application_name. Errors: UNAVAILABLE (lost connection).
  virtual absl::Status AnnounceLeader(const std::string& address) = 0;

  // The database, for messages: the SQLite path, or the PostgreSQL URI without its password.
  virtual const std::string& path() const = 0;

  // Any thread: the checkpoints run so far (see CheckpointCounts).
  virtual CheckpointCounts checkpoint_counts() const { return CheckpointCounts(); }
};

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_STORE_H_
