// Tests store/schema.h: forward migration from an empty file, refusal of newer files, and that a
// failed migration leaves the file at its last complete version.
#include "store/schema.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store/store_test_util.h"

namespace nvlsched::store {
namespace {

using ::nvlsched::store::store_testing::TempDir;
using ::testing::HasSubstr;

int TableCount(SQLite::Database& db) {
  return db.execAndGet("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").getInt();
}

TEST(SchemaTest, MigrationsAreContiguousFromOne) {
  absl::Span<const Migration> migrations = SchemaMigrations();
  ASSERT_FALSE(migrations.empty());
  for (size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, static_cast<int>(i) + 1);
    EXPECT_NE(std::string(migrations[i].description), "");
  }
  EXPECT_EQ(CurrentSchemaVersion(), migrations.back().version);
}

TEST(SchemaTest, EmptyDatabaseMigratesToCurrentAndRerunIsANoOp) {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  EXPECT_EQ(*ReadSchemaVersion(db, "mem"), 0);
  ASSERT_TRUE(MigrateToCurrent(db, "mem").ok());
  EXPECT_EQ(*ReadSchemaVersion(db, "mem"), CurrentSchemaVersion());
  const int tables = TableCount(db);
  EXPECT_EQ(tables, 11);  // v1: 10 tables; v2: events; v3: a column of tenants
  ASSERT_TRUE(MigrateToCurrent(db, "mem").ok());
  EXPECT_EQ(TableCount(db), tables);
}

TEST(SchemaTest, NewerDatabaseIsRefusedNamingBothVersions) {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  const int newer = CurrentSchemaVersion() + 1;
  db.exec(absl::StrCat("PRAGMA user_version = ", newer));
  absl::Status status = MigrateToCurrent(db, "/var/lib/nvlsched/state.db");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("/var/lib/nvlsched/state.db"));
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("schema version ", newer)));
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("up to ", CurrentSchemaVersion())));
  EXPECT_EQ(CheckSchemaVersionSupported(newer, "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckSchemaVersionSupported(CurrentSchemaVersion(), "x").ok());
  EXPECT_TRUE(CheckSchemaVersionSupported(0, "x").ok());
}

TEST(SchemaTest, FailedMigrationLeavesTheLastCompleteVersion) {
  const Migration migrations[] = {
      {1, "create a", "CREATE TABLE a (x INTEGER)"},
      {2, "create b, then fail", "CREATE TABLE b (x INTEGER); INSERT INTO missing VALUES (1)"},
  };
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  absl::Status status = ApplyMigrations(db, "mem", migrations);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("from schema version 1 to 2 (create b, then fail)"));
  EXPECT_THAT(status.message(), HasSubstr("no such table: missing"));
  EXPECT_EQ(*ReadSchemaVersion(db, "mem"), 1);
  EXPECT_EQ(TableCount(db), 1);  // table b was rolled back with the failed step
}

TEST(SchemaTest, LaterMigrationsRunOnTopOfEarlierOnes) {
  const Migration v1[] = {{1, "create a", "CREATE TABLE a (x INTEGER)"}};
  const Migration v2[] = {{1, "create a", "CREATE TABLE a (x INTEGER)"},
                          {2, "add a.y", "ALTER TABLE a ADD COLUMN y TEXT"}};
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  ASSERT_TRUE(ApplyMigrations(db, "mem", v1).ok());
  ASSERT_TRUE(ApplyMigrations(db, "mem", v2).ok());
  EXPECT_EQ(*ReadSchemaVersion(db, "mem"), 2);
  db.exec("INSERT INTO a (x, y) VALUES (1, 'y')");
}

TEST(SchemaTest, VersionThreeGivesExistingTenantsPriorityZeroAndChecksTheRange) {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  ASSERT_TRUE(ApplyMigrations(db, "mem", SchemaMigrations().first(2)).ok());
  db.exec("INSERT INTO tenants (id, org, name) VALUES ('t-0', 'acme', 'Acme')");
  ASSERT_TRUE(MigrateToCurrent(db, "mem").ok());
  EXPECT_GE(*ReadSchemaVersion(db, "mem"), 3);
  EXPECT_EQ(db.execAndGet("SELECT priority FROM tenants WHERE id = 't-0'").getInt(), 0);
  auto insert = [&db](const char* id, int priority) {
    return db.exec(absl::StrCat("INSERT INTO tenants (id, org, name, priority) VALUES ('", id,
                                "', 'o', '', ", priority, ")"));
  };
  EXPECT_EQ(insert("t-1", 1000), 1);
  EXPECT_EQ(insert("t-2", -1000), 1);
  EXPECT_THROW(insert("t-3", 1001), SQLite::Exception);
  EXPECT_THROW(db.exec("UPDATE tenants SET priority = -1001 WHERE id = 't-0'"), SQLite::Exception);
}

TEST(SchemaTest, NonDatabaseFileIsDataLoss) {
  TempDir dir;
  store_testing::WriteFile(dir.File("junk"), std::string(4096, 'j'));
  SQLite::Database db(dir.File("junk"), SQLite::OPEN_READWRITE);
  absl::StatusOr<int> version = ReadSchemaVersion(db, dir.File("junk"));
  EXPECT_EQ(version.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(version.status().message(), HasSubstr("file is not a database"));
}

}  // namespace
}  // namespace nvlsched::store
