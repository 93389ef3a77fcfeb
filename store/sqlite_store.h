// SqliteStore: the Store (store/store.h) on one SQLite database file in WAL mode, nvlsched's
// embedded default. Store::Open returns one for any --db that is not a PostgreSQL URI.
//
// Failure policy: the first failed Commit (anything after BEGIN) rolls back and latches the
// store. Before it returns, the failed Commit checkpoints and empties the WAL (PRAGMA
// wal_checkpoint(TRUNCATE)), so that a crash cannot resurrect a transaction whose fsync failed
// after its frames were written (tests/store/store_fault_test.cc). Reads (LoadAll,
// WriteSnapshot) keep working. This avoids retrying after an fsync error, whose outcome on disk
// is unknown.
//
// Thread-safety: as Store. WriteSnapshot takes no lock on file databases (VACUUM INTO on its
// own connection), so a snapshot runs concurrently with commits.
#ifndef NVLSCHED_STORE_SQLITE_STORE_H_
#define NVLSCHED_STORE_SQLITE_STORE_H_

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

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace nvlsched::store {

class Checkpointer;
class FileLock;
class RowWriter;

class SqliteStore final : public Store {
 public:
  // Store::Open for a SQLite path (its errors, less ABORTED).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);

  ~SqliteStore() override;

  using Store::LoadAll;
  absl::StatusOr<LoadedState> LoadAll(InstanceColumns columns) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Commit(const ChangeSet& changes, CommitStats* stats = nullptr) override
      ABSL_LOCKS_EXCLUDED(mu_);
  // Defined in store/snapshot.cc.
  absl::Status WriteSnapshot(const std::string& dest_path) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<EventRow>> ReadEvents(uint64_t after_sequence, size_t limit) override
      ABSL_LOCKS_EXCLUDED(mu_, read_mu_);
  absl::Status failure() const override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CheckLeadership() override ABSL_LOCKS_EXCLUDED(mu_) { return failure(); }
  absl::Status AnnounceLeader(const std::string&) override { return absl::OkStatus(); }
  const std::string& path() const override { return options_.path; }

  // All zero for ":memory:" and with StoreOptions::checkpoint_background_pages 0 (no thread).
  CheckpointCounts checkpoint_counts() const override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit SqliteStore(StoreOptions options);

  // Open's work once the Store exists: opens, checks, configures, migrates, prepares.
  absl::Status Initialize() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The quick_check that Open left to LoadAll (StoreOptions::quick_check_with_load), run now on
  // the main connection if still due; clears check_due_ once the file passed.
  absl::Status CheckIfDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

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
  // Declared after the connection so that it stops (and unhooks it) before the connection
  // closes. Null for ":memory:" and when StoreOptions::checkpoint_background_pages is 0.
  std::unique_ptr<Checkpointer> checkpointer_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  // Open left quick_check to LoadAll (StoreOptions::quick_check_with_load) and it has not passed
  // yet.
  bool check_due_ ABSL_GUARDED_BY(mu_) = false;

  // ReadEvents' own connection.
  Mutex read_mu_;
  std::unique_ptr<SQLite::Database> reader_ ABSL_GUARDED_BY(read_mu_);
};

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_SQLITE_STORE_H_
