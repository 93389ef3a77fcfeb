// Checkpointer: copies a SQLite database's WAL back into the database file on a thread and
// connection of its own, so that the writer's commits do not pay for it.
//
// By default SQLite checkpoints on the writing connection, inside the COMMIT that takes the WAL
// past 1000 pages: that commit copies every page written since the last checkpoint and syncs the
// database file before it returns. On the daemon's single writer (the engine thread) that was
// 12% of its samples in a `nvlsched-load` batch run on 1,800 machines and 16% on 100,008 (perf),
// and every call waiting on that commit waits for it too.
//
// Here the writer's WAL hook (sqlite3_wal_hook, which replaces the automatic checkpoint) only
// wakes the checkpointer thread once the WAL holds `background_pages` pages, and the thread runs
// a PASSIVE checkpoint on its own connection: it copies the committed frames while the writer
// goes on committing (SQLite's WAL allows one checkpointer beside one writer and any readers).
// A passive checkpoint never reaches frames committed while it runs, and SQLite restarts the
// WAL from its beginning only when every frame has been copied. Under a writer that never
// pauses, a pass rarely ends between two commits: woken by every commit past the threshold, the
// thread ran one pass (and two syncs) for every second to fourth commit of a batch load on
// 1,800 machines (2,043-5,023 passes in 5,929-9,540 commits; 1.3-1.45 s of its CPU in 8 s at
// 1,650 calls/s), most passes copying only the frames of the last commits. So:
//  - a commit wakes the thread only while no pass is under way or pending: the pass copies
//    every frame committed before it begins;
//  - once the thread's last pass left at most background_pages / 8 frames of this WAL uncopied,
//    the writer copies them itself, from its WAL hook (a short checkpoint: those frames and the
//    database file's sync), and the next transaction restarts the WAL;
//  - when the WAL holds `on_writer_pages` pages (the thread has not caught up), the writer
//    copies what is left itself, once (after waiting for a pass under way), and the next
//    transaction restarts the WAL. The WAL is bounded by `on_writer_pages` pages plus one commit.
// (`background_pages` and `on_writer_pages` are StoreOptions::checkpoint_*_pages.)
//
// Durability is unchanged: a checkpoint copies only frames already committed (synced, with the
// connection's `synchronous` setting) and syncs the database file before the WAL is reused, as
// SQLite's own checkpoint does. A failed checkpoint, on either side, changes nothing on disk that
// a later one cannot redo; it is counted (CheckpointCounts::failed, in the daemon's
// nvlsched_wal_checkpoints_total{result="failed"}) and the next one retries.
//
// Thread-safety: counts() is thread-safe; OnCommit runs on the writer's thread only (from its
// WAL hook). Destroy the Checkpointer while the writer's connection is still open and not in
// use: the destructor unhooks it.
#ifndef NVLSCHED_STORE_CHECKPOINTER_H_
#define NVLSCHED_STORE_CHECKPOINTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "store/store.h"
#include "store/sync.h"

struct sqlite3;

namespace SQLite {
class Database;
}  // namespace SQLite

namespace nvlsched::store {

class Checkpointer {
 public:
  // Opens the checkpointer's connection to `options.path` (through `options.vfs`, with its
  // sync mode), starts the thread, and hooks `writer`'s commits: from now on `writer` no
  // longer checkpoints on its own but as described above.
  // Errors: UNAVAILABLE if the connection cannot be opened or configured.
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Start(const StoreOptions& options,
                                                             sqlite3* writer);

  // Unhooks the writer (it checkpoints on its own again, as SQLite does by default), stops the
  // thread (a pass under way finishes first) and closes its connection.
  ~Checkpointer();

  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  CheckpointCounts counts() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Checkpointer(const StoreOptions& options, sqlite3* writer,
               std::unique_ptr<SQLite::Database> connection);

  // The writer's WAL hook: `pages` is the number of frames in the WAL after a commit.
  static int WalHook(void* self, sqlite3* db, const char* schema, int pages);
  void OnCommit(sqlite3* db, const char* schema, int pages);
  // One passive checkpoint on `db` (the writer's or the thread's connection), holding pass_mu_:
  // returns SQLite's result code; *copied (when not null) = the frames of the WAL copied so far.
  int Copy(sqlite3* db, const char* schema, int* copied) ABSL_LOCKS_EXCLUDED(pass_mu_);
  void Run() ABSL_LOCKS_EXCLUDED(mu_);

  const int background_pages_;
  const int on_writer_pages_;
  // Frames the writer copies itself once the thread's pass has copied the rest of the WAL.
  const int rest_on_writer_pages_;
  sqlite3* const writer_;
  // Used by the writer only (OnCommit): the WAL's frames after the last commit, and how many
  // times the WAL restarted from its beginning (a WAL cycle).
  int last_pages_ = 0;
  uint64_t wal_cycle_ = 0;
  // Used by the thread only.
  const std::unique_ptr<SQLite::Database> connection_;

  // Held across each checkpoint, the thread's and the writer's: the writer waits for a pass of
  // the thread under way instead of meeting SQLITE_BUSY.
  Mutex pass_mu_;
  mutable Mutex mu_;
  CondVar wake_cv_;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // A pass is under way on the thread.
  bool pass_running_ ABSL_GUARDED_BY(mu_) = false;
  // The WAL cycle the writer saw when it woke the thread.
  uint64_t wake_cycle_ ABSL_GUARDED_BY(mu_) = 0;
  // The frames copied so far of WAL cycle copied_cycle_ (by the last checkpoint that copied).
  int copied_frames_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t copied_cycle_ ABSL_GUARDED_BY(mu_) = 0;
  CheckpointCounts counts_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;
};

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_CHECKPOINTER_H_
