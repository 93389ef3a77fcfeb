#include "store/sqlite_store.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "store/checkpointer.h"
#include "store/file_lock.h"
#include "store/row_reader.h"
#include "store/row_writer.h"
#include "store/schema.h"
#include "store/sqlite_status.h"

namespace nvlsched::store {
namespace {

// Cap the WAL file left behind after a checkpoint, so a burst of writes does not keep a large
// file around.
constexpr int64_t kJournalSizeLimitBytes = 64 << 20;
// Read the database file through a memory map of up to this size (SQLite caps it at its
// compile-time SQLITE_MAX_MMAP_SIZE; the rest is read with pread). SQLite's page cache is 2 MB by
// default; with 100k machines a batch run spent 16% of the engine thread's perf samples in
// pread, against 6% with 1,800 (which pages it read, presumably the indexes every commit
// probes, was not measured). Writes still go through the WAL with pwrite.
constexpr int64_t kMmapSizeBytes = int64_t{1} << 31;
// quick_check stops after this many findings; the first few say enough to an operator.
constexpr int kMaxQuickCheckFindings = 5;

absl::StatusCode CodeFor(const SQLite::Exception& e) {
  return IsCorruptionCode(e.getErrorCode()) ? absl::StatusCode::kDataLoss
                                            : absl::StatusCode::kUnavailable;
}

// PRAGMA quick_check of the database `options` names, on `db`, or on a read-only connection of
// its own when `db` is null (so that it can run beside a read of the main one). DATA_LOSS with
// the first findings; SQLite's errors as the store reports them.
absl::Status QuickCheck(const StoreOptions& options, SQLite::Database* db) {
  try {
    std::unique_ptr<SQLite::Database> own;
    if (db == nullptr) {
      own = std::make_unique<SQLite::Database>(
          options.path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX, options.busy_timeout_ms,
          options.vfs);
      db = own.get();
    }
    SQLite::Statement check(*db,
                            absl::StrCat("PRAGMA quick_check(", kMaxQuickCheckFindings, ")"));
    std::vector<std::string> findings;
    while (check.executeStep()) findings.push_back(check.getColumn(0).getString());
    if (findings.size() == 1 && findings[0] == "ok") return absl::OkStatus();
    return absl::DataLossError(absl::StrCat(
        "database ", options.path, " failed PRAGMA quick_check: ", absl::StrJoin(findings, "; "),
        ". Refusing to start from a damaged database: restore the newest snapshot"));
  } catch (const SQLite::Exception& e) {
    return SqliteErrorStatus(
        CodeFor(e), absl::StrCat("checking (PRAGMA quick_check) database ", options.path), e);
  }
}

absl::Status ConfigureConnection(SQLite::Database& db, const StoreOptions& options,
                                 bool in_memory) {
  std::string mode = absl::AsciiStrToLower(db.execAndGet("PRAGMA journal_mode = WAL").getString());
  if (mode != "wal" && !(in_memory && mode == "memory")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database ", options.path, " could not be switched to WAL journal mode (SQLite kept \"",
        mode, "\"); put the database on a local file system that supports shared memory"));
  }
  db.exec(options.sync == SyncMode::kFull ? "PRAGMA synchronous = FULL"
                                          : "PRAGMA synchronous = NORMAL");
  // Debian's SQLite is built with SQLITE_SECURE_DELETE, which zeroes every deleted row's bytes
  // in its page (4.4% of the engine thread's instructions under the batch load; README). Nothing
  // here is secret that the events table (which keeps each deleted instance as its last event)
  // does not keep anyway, so a delete costs what it costs in SQLite's own default.
  db.exec("PRAGMA secure_delete = OFF");
  db.exec("PRAGMA foreign_keys = ON");
  if (db.execAndGet("PRAGMA foreign_keys").getInt() != 1) {
    return absl::FailedPreconditionError(
        "this SQLite build cannot enforce foreign keys (PRAGMA foreign_keys stays off)");
  }
  db.exec(absl::StrCat("PRAGMA journal_size_limit = ", kJournalSizeLimitBytes));
  db.exec(absl::StrCat("PRAGMA mmap_size = ", kMmapSizeBytes));
  if (options.max_page_count > 0) {
    db.exec(absl::StrCat("PRAGMA max_page_count = ", options.max_page_count));
  }
  return absl::OkStatus();
}

}  // namespace

SqliteStore::SqliteStore(StoreOptions options) : options_(std::move(options)) {}

SqliteStore::~SqliteStore() = default;

bool SqliteStore::in_memory() const { return options_.path == ":memory:"; }

absl::StatusOr<std::unique_ptr<Store>> SqliteStore::Open(const StoreOptions& options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("StoreOptions.path is empty; name the database file");
  }
  if (options.checkpoint_background_pages < 0 ||
      (options.checkpoint_background_pages > 0 && options.checkpoint_on_writer_pages <= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StoreOptions.checkpoint_background_pages is ", options.checkpoint_background_pages,
        " and checkpoint_on_writer_pages ", options.checkpoint_on_writer_pages,
        ": the first must be 0 (SQLite's own checkpoint) or positive, and then the second "
        "positive too"));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(options));
  absl::Status status;
  {
    MutexLock lock(&store->mu_);
    status = store->Initialize();
  }
  if (!status.ok()) return status;
  return std::unique_ptr<Store>(std::move(store));
}

absl::Status SqliteStore::Initialize() {
  const std::string& path = options_.path;
  // What Open is doing, for the error message.
  const char* doing = "opening database";
  try {
    db_ = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX,
        options_.busy_timeout_ms, options_.vfs);
    // Before the first read: one daemon per database (store/file_lock.h). After the open, so
    // a missing directory is reported by SQLite as before.
    if (!in_memory()) {
      absl::StatusOr<std::unique_ptr<FileLock>> lock = FileLock::Acquire(path + ".lock");
      if (!lock.ok()) return lock.status();
      lock_ = *std::move(lock);
    }

    // The version comes first: it is the first read of the file (a non-database fails here),
    // and a newer file must be refused before this build writes anything to it.
    absl::StatusOr<int> version = ReadSchemaVersion(*db_, path);
    if (!version.ok()) return version.status();
    absl::Status status = CheckSchemaVersionSupported(*version, path);
    if (!status.ok()) return status;

    if (options_.quick_check_on_open) {
      if (options_.quick_check_with_load && !in_memory() && *version == CurrentSchemaVersion()) {
        check_due_ = true;  // LoadAll runs it beside its read; nothing writes before that
      } else {
        status = QuickCheck(options_, db_.get());
        if (!status.ok()) return status;
      }
    }
    doing = "configuring database";
    status = ConfigureConnection(*db_, options_, in_memory());
    if (!status.ok()) return status;

    status = MigrateToCurrent(*db_, path, options_.on_migration);
    if (!status.ok()) return status;

    doing = "preparing statements on database";
    begin_ = std::make_unique<SQLite::Statement>(*db_, "BEGIN IMMEDIATE");
    commit_ = std::make_unique<SQLite::Statement>(*db_, "COMMIT");
    rollback_ = std::make_unique<SQLite::Statement>(*db_, "ROLLBACK");
  } catch (const SQLite::Exception& e) {
    return SqliteErrorStatus(CodeFor(e), absl::StrCat(doing, " ", path), e);
  }
  absl::StatusOr<std::unique_ptr<RowWriter>> writer = RowWriter::Prepare(*db_);
  if (!writer.ok()) return writer.status();
  writer_ = *std::move(writer);
  if (!in_memory() && options_.checkpoint_background_pages > 0) {
    absl::StatusOr<std::unique_ptr<Checkpointer>> checkpointer =
        Checkpointer::Start(options_, db_->getHandle());
    if (!checkpointer.ok()) return checkpointer.status();
    checkpointer_ = *std::move(checkpointer);
  }
  return absl::OkStatus();
}

CheckpointCounts SqliteStore::checkpoint_counts() const {
  MutexLock lock(&mu_);
  return checkpointer_ == nullptr ? CheckpointCounts() : checkpointer_->counts();
}

absl::Status SqliteStore::CheckIfDue() {
  if (!check_due_) return absl::OkStatus();
  if (absl::Status status = QuickCheck(options_, db_.get()); !status.ok()) return status;
  check_due_ = false;
  return absl::OkStatus();
}

absl::StatusOr<LoadedState> SqliteStore::LoadAll(InstanceColumns columns) {
  MutexLock lock(&mu_);
  // The check Open left to this read runs beside it, on a read-only connection of its own.
  absl::Status check;
  std::thread checker;
  if (check_due_) {
    checker = std::thread([this, &check] { check = QuickCheck(options_, nullptr); });
  }
  absl::StatusOr<LoadedState> state;
  try {
    // Not through the memory map: the whole file would stay mapped and count in the daemon's
    // resident memory (RssFile 772 MiB at 500k instances), though the commits touch a few
    // indexes of it. Reducing mmap_size unmaps the file; it is mapped again for the commits.
    db_->exec("PRAGMA mmap_size = 0");
    {
      // One read transaction: every table is read at the same point in time.
      SQLite::Transaction read(*db_, SQLite::TransactionBehavior::DEFERRED);
      state = ReadAllRows(*db_, columns);
      read.commit();
    }
    db_->exec(absl::StrCat("PRAGMA mmap_size = ", kMmapSizeBytes));
  } catch (const SQLite::Exception& e) {
    state = SqliteErrorStatus(CodeFor(e), "loading the database", e);
  }
  if (checker.joinable()) {
    checker.join();
    // A damaged file is reported as quick_check words it, whatever the read made of it.
    if (!check.ok()) return check;
    check_due_ = false;
  }
  return state;
}

absl::StatusOr<std::vector<EventRow>> SqliteStore::ReadEvents(uint64_t after_sequence,
                                                               size_t limit) {
  try {
    if (in_memory()) {
      MutexLock lock(&mu_);
      return ReadEventRows(*db_, after_sequence, limit);
    }
    MutexLock lock(&read_mu_);
    if (reader_ == nullptr) {
      reader_ = std::make_unique<SQLite::Database>(
          options_.path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX, options_.busy_timeout_ms,
          options_.vfs);
    }
    return ReadEventRows(*reader_, after_sequence, limit);
  } catch (const SQLite::Exception& e) {
    return SqliteErrorStatus(CodeFor(e), absl::StrCat("reading events after ", after_sequence),
                             e);
  }
}

absl::Status SqliteStore::Commit(const ChangeSet& changes, CommitStats* stats) {
  if (stats != nullptr) *stats = CommitStats();
  if (absl::Status valid = CheckChangeSet(changes); !valid.ok()) return valid;

  MutexLock lock(&mu_);
  if (!failure_.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the store refuses writes since an earlier commit failed (",
                     failure_.message(), "); fix the cause and restart nvlsched"));
  }
  if (changes.empty()) return absl::OkStatus();
  if (absl::Status check = CheckIfDue(); !check.ok()) return check;

  const auto start = std::chrono::steady_clock::now();
  try {
    begin_->tryReset();
    begin_->exec();
  } catch (const SQLite::Exception& e) {
    FailTransaction(SqliteErrorStatus(absl::StatusCode::kUnavailable,
                                      "starting a write transaction (BEGIN IMMEDIATE)", e));
    return failure_;
  }
  absl::StatusOr<int64_t> rows = writer_->Apply(changes);
  if (!rows.ok()) {
    FailTransaction(rows.status());
    return failure_;
  }
  try {
    commit_->tryReset();
    commit_->exec();
  } catch (const SQLite::Exception& e) {
    FailTransaction(SqliteErrorStatus(
        absl::StatusCode::kUnavailable,
        absl::StrCat("committing ", changes.size(), " changed rows (COMMIT)"), e));
    return failure_;
  }
  if (stats != nullptr) {
    stats->duration = absl::FromChrono(std::chrono::steady_clock::now() - start);
    stats->rows_written = *rows;
  }
  return absl::OkStatus();
}

void SqliteStore::FailTransaction(const absl::Status& status) {
  failure_ = status;
  writer_->ResetAll();
  // SQLite may already have rolled back on its own (e.g. after SQLITE_FULL); then ROLLBACK only
  // reports that no transaction is active, which changes nothing.
  rollback_->tryReset();
  rollback_->tryExecuteStep();
  rollback_->tryReset();
  // A COMMIT that failed after writing its WAL frames (its fsync failed) leaves them in the WAL
  // with a valid commit mark. This connection ignores them, but after a crash recovery would
  // replay a commit the caller was told failed. A TRUNCATE checkpoint copies only committed
  // frames into the database and then empties the WAL, dropping them. If it fails as well, the
  // files are as before it (and the closing checkpoint drops the frames on a clean exit).
  if (!in_memory()) {
    try {
      db_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch (const SQLite::Exception&) {
      // Already latched on the first failure; this one adds nothing an operator needs.
    }
  }
}

absl::Status SqliteStore::failure() const {
  MutexLock lock(&mu_);
  return failure_;
}

}  // namespace nvlsched::store
