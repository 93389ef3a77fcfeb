// PgStore: the Store (store/store.h) on a PostgreSQL 15 database, for sites that run
// active/standby daemons (issue 22). Store::Open returns one for a --db that is a libpq URI.
//
// Leader election and fencing are the database's own: Open takes a session-level advisory
// lock (pg_try_advisory_lock) on the connection it then commits on. Only the holder writes:
//   - A second Open on the same database fails ABORTED, naming the holder's announced address
//     (AnnounceLeader sets it as the lock connection's application_name; a standby reads it
//     from pg_locks joined with pg_stat_activity). The daemon stands by and retries.
//   - The lock lives exactly as long as the connection. Commits run on that connection only,
//     and it is never re-established (libpqxx's reactivation is inhibited): once it is lost
//     (the server restarts, the network drops, pg_terminate_backend), the store latches and
//     every Commit is UNAVAILABLE, so a daemon that lost the lock can never acknowledge a write
//     another leader might contradict. The daemon steps down and opens a new PgStore.
//
// Layout: the SQLite schema's tables and columns (store/schema.cc at CurrentSchemaVersion()),
// in PostgreSQL types (bigint, boolean, bytea), each top-level table with an identity column
// `seq` that keeps insertion order for LoadAll (an upsert keeps it, as SQLite's rowid). The
// version lives in the table nvlsched_schema; a newer database is refused as SQLite's is.
//
// Commit writes the whole ChangeSet in one transaction. Every statement is prepared once per
// connection and takes one binary-format array a column (INSERT ... SELECT FROM unnest(...)),
// so nothing is quoted, parsed or planned per commit and a kind of row costs one round trip
// however many rows it has: a batch call's group is BEGIN, 2-4 statements and COMMIT, which
// answers after the WAL flush (synchronous_commit).
// A connection lost during it leaves the outcome unknown to this daemon (the store latches; the
// caller answers UNAVAILABLE and a retry with the same request_id gets the stored answer from
// whichever daemon leads next).
//
// Thread-safety: as Store. Commit, LoadAll, CheckLeadership and AnnounceLeader share the lock
// connection (mu_); ReadEvents and WriteSnapshot have connections of their own.
#ifndef NVLSCHED_STORE_PG_STORE_H_
#define NVLSCHED_STORE_PG_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/rows.h"
#include "store/store.h"
#include "store/sync.h"

namespace nvlsched::store {

// One libpqxx connection (defined in pg_store.cc: no PostgreSQL header here).
struct PgConnection;

// The advisory lock key every nvlschedd on one database contends for ("nvls").
inline constexpr int64_t kLeaderLockKey = 0x6e766c73;

class PgStore final : public Store {
 public:
  // Store::Open for a PostgreSQL URI: connects, takes the leader lock (ABORTED naming the
  // leader if another session holds it), creates or migrates the tables.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);

  ~PgStore() override;

  using Store::LoadAll;
  absl::StatusOr<LoadedState> LoadAll(InstanceColumns columns) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Commit(const ChangeSet& changes, CommitStats* stats = nullptr) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status WriteSnapshot(const std::string& dest_path) override;
  absl::StatusOr<std::vector<EventRow>> ReadEvents(uint64_t after_sequence, size_t limit) override
      ABSL_LOCKS_EXCLUDED(read_mu_);
  absl::Status failure() const override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CheckLeadership() override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status AnnounceLeader(const std::string& address) override ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& path() const override { return display_; }

 private:
  explicit PgStore(StoreOptions options);

  // Open's work: connect, lock, migrate.
  absl::Status Initialize() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Latches `status` (the first failure wins) and returns the latched failure.
  absl::Status Latch(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new connection to the database (not the lock's): ReadEvents', WriteSnapshot's.
  absl::StatusOr<std::unique_ptr<PgConnection>> Connect(const char* purpose) const;

  const StoreOptions options_;
  // options_.path without a password, for messages.
  const std::string display_;

  mutable Mutex mu_;
  // The connection that holds the leader lock; the only one that writes.
  std::unique_ptr<PgConnection> conn_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);

  Mutex read_mu_;
  std::unique_ptr<PgConnection> reader_ ABSL_GUARDED_BY(read_mu_);
};

// `uri` with any password replaced by "***" (user:password@ and password=...).
std::string RedactPostgresUri(const std::string& uri);

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_PG_STORE_H_
