// The versioned SQLite schema and its forward migrations. Internal to store/.
//
// `PRAGMA user_version` holds the schema version of a database file: 0 for a new (empty) file,
// N once migration N has run. Migration N takes a database from version N-1 to N; each runs in
// its own BEGIN IMMEDIATE transaction that also sets user_version, so a crash during an upgrade
// leaves the file at the last completed version. To change the schema, APPEND a migration;
// never edit one that has shipped.
//
// Thread-safety: functions take the connection they use; the caller serialises access to it.
#ifndef NVLSCHED_STORE_SCHEMA_H_
#define NVLSCHED_STORE_SCHEMA_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "store/store.h"

namespace SQLite {
class Database;
}  // namespace SQLite

namespace nvlsched::store {

struct Migration {
  int version;              // the version this migration produces
  const char* description;  // one line, for logs and errors
  const char* sql;          // DDL/DML, no transaction statements
};

// All migrations, versions 1..N in order.
absl::Span<const Migration> SchemaMigrations();

// The version a fully migrated database has (the last migration's version).
int CurrentSchemaVersion();

// Reads PRAGMA user_version. DATA_LOSS if the file is not a database or is corrupt,
// UNAVAILABLE on other SQLite errors.
absl::StatusOr<int> ReadSchemaVersion(SQLite::Database& db, absl::string_view path);

// OK if this build can open a database at `found_version`; otherwise FAILED_PRECONDITION naming
// the path, both versions and what to do.
absl::Status CheckSchemaVersionSupported(int found_version, absl::string_view path);

// Applies every migration in `migrations` whose version is above the database's, in order.
// REQUIRES: no transaction open on `db`; migrations sorted by version, contiguous from 1.
// Errors: FAILED_PRECONDITION if the database is newer than the last migration; UNAVAILABLE if
// a migration fails (the database is left at the last version that completed).
// `observer`, if set, is called before and after each migration applied (MigrationStep).
absl::Status ApplyMigrations(
    SQLite::Database& db, absl::string_view path, absl::Span<const Migration> migrations,
    const std::function<void(const MigrationStep&)>& observer = nullptr);

// ApplyMigrations(db, path, SchemaMigrations(), observer).
absl::Status MigrateToCurrent(
    SQLite::Database& db, absl::string_view path,
    const std::function<void(const MigrationStep&)>& observer = nullptr);

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_SCHEMA_H_
