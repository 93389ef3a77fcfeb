#include "store/checkpointer.h"

#include <pthread.h>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "store/sqlite_status.h"

namespace nvlsched::store {
namespace {

// SQLite's default wal_autocheckpoint (SQLITE_DEFAULT_WAL_AUTOCHECKPOINT, not in sqlite3.h).
constexpr int kSqliteDefaultAutocheckpointPages = 1000;

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Start(const StoreOptions& options,
                                                                  sqlite3* writer) {
  std::unique_ptr<SQLite::Database> connection;
  try {
    connection = std::make_unique<SQLite::Database>(
        options.path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX, options.busy_timeout_ms,
        options.vfs);
    // A checkpoint syncs the WAL before it copies and the database file after, as this
    // connection's setting says: the writer's.
    connection->exec(options.sync == SyncMode::kFull ? "PRAGMA synchronous = FULL"
                                                     : "PRAGMA synchronous = NORMAL");
  } catch (const SQLite::Exception& e) {
    return SqliteErrorStatus(absl::StatusCode::kUnavailable,
                             absl::StrCat("opening the checkpointer's connection to ", options.path),
                             e);
  }
  std::unique_ptr<Checkpointer> checkpointer(
      new Checkpointer(options, writer, std::move(connection)));
  checkpointer->thread_ = std::thread([raw = checkpointer.get()] { raw->Run(); });
  sqlite3_wal_hook(writer, &Checkpointer::WalHook, checkpointer.get());
  return checkpointer;
}

Checkpointer::Checkpointer(const StoreOptions& options, sqlite3* writer,
                           std::unique_ptr<SQLite::Database> connection)
    : background_pages_(options.checkpoint_background_pages),
      on_writer_pages_(options.checkpoint_on_writer_pages),
      rest_on_writer_pages_(std::max(1, options.checkpoint_background_pages / 8)),
      writer_(writer),
      connection_(std::move(connection)) {}

Checkpointer::~Checkpointer() {
  // Back to SQLite's own checkpoint on the writer, which also drops the hook's pointer to this.
  sqlite3_wal_autocheckpoint(writer_, kSqliteDefaultAutocheckpointPages);
  {
    MutexLock lock(&mu_);
    stop_ = true;
    wake_cv_.SignalAll();
  }
  thread_.join();
}

CheckpointCounts Checkpointer::counts() const {
  MutexLock lock(&mu_);
  return counts_;
}

int Checkpointer::WalHook(void* self, sqlite3* db, const char* schema, int pages) {
  static_cast<Checkpointer*>(self)->OnCommit(db, schema, pages);
  // As SQLite's own hook: a checkpoint's failure does not fail the commit that triggered it.
  return SQLITE_OK;
}

int Checkpointer::Copy(sqlite3* db, const char* schema, int* copied) {
  MutexLock pass(&pass_mu_);
  return sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, copied);
}

void Checkpointer::OnCommit(sqlite3* db, const char* schema, int pages) {
  // Fewer frames than after the last commit: the WAL restarted from its beginning, and what
  // the thread copied of the previous one says nothing about this one.
  if (pages < last_pages_) ++wal_cycle_;
  last_pages_ = pages;
  if (pages >= on_writer_pages_) {
    // The thread has not caught up (or the writer never paused long enough for a pass to reach
    // the WAL's end): copy what is left here, so the next transaction restarts the WAL. A pass
    // of the thread under way holds SQLite's checkpoint lock, and a second checkpoint would
    // fail SQLITE_BUSY at once whatever its mode: wait for the pass instead, so that the WAL
    // never passes the cap by more than a commit.
    const int rc = Copy(db, schema, /*copied=*/nullptr);
    MutexLock lock(&mu_);
    ++(rc == SQLITE_OK ? counts_.on_writer : counts_.failed);
    return;
  }
  if (pages < background_pages_) return;
  int copied = 0;
  {
    MutexLock lock(&mu_);
    // A pass under way (or woken and not yet begun) copies every frame committed before it
    // begins; commits meanwhile do not queue another, or a writer that never pauses would keep
    // the thread checkpointing (and syncing the database file) once per commit.
    if (wake_ || pass_running_) return;
    if (copied_cycle_ == wal_cycle_) copied = copied_frames_;
  }
  if (copied > 0 && pages - copied <= rest_on_writer_pages_) {
    // The thread copied all but the last few frames: the writer copies them itself, which is
    // short, so that the next transaction restarts the WAL. Left to the thread, a pass would
    // have to end between two commits, which under a steady writer it rarely does.
    int copied_now = 0;
    const int rc = Copy(db, schema, &copied_now);
    MutexLock lock(&mu_);
    if (rc == SQLITE_OK) {
      ++counts_.rest_on_writer;
      copied_frames_ = copied_now;
      copied_cycle_ = wal_cycle_;
    } else {
      ++counts_.failed;
    }
    return;
  }
  MutexLock lock(&mu_);
  wake_ = true;
  wake_cycle_ = wal_cycle_;
  ++counts_.woken;
  wake_cv_.Signal();
}

void Checkpointer::Run() {
  pthread_setname_np(pthread_self(), "nvl-checkpoint");
  for (;;) {
    uint64_t cycle;
    {
      MutexLock lock(&mu_);
      while (!wake_ && !stop_) wake_cv_.Wait(&mu_);
      if (stop_) return;
      wake_ = false;
      pass_running_ = true;
      cycle = wake_cycle_;
    }
    // SQLITE_BUSY: a checkpoint of another connection (not the writer's, which waits for this
    // one on pass_mu_) holds the checkpoint lock; the next commit past background_pages wakes
    // this thread again.
    int copied_now = 0;
    const int rc = Copy(connection_->getHandle(), nullptr, &copied_now);
    MutexLock lock(&mu_);
    pass_running_ = false;
    if (rc == SQLITE_OK) {
      ++counts_.background;
      copied_frames_ = copied_now;
      copied_cycle_ = cycle;
    } else if (rc != SQLITE_BUSY) {
      ++counts_.failed;
    }
  }
}

}  // namespace nvlsched::store
