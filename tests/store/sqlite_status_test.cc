// Tests store/sqlite_status.h with errors raised by a real SQLite connection.
#include "store/sqlite_status.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvlsched::store {
namespace {

using ::testing::HasSubstr;

TEST(SqliteStatusTest, NamesPrimaryCodesAndReducesExtendedOnes) {
  EXPECT_EQ(SqliteCodeName(SQLITE_FULL), "SQLITE_FULL");
  EXPECT_EQ(SqliteCodeName(SQLITE_IOERR_FSYNC), "SQLITE_IOERR");
  EXPECT_EQ(SqliteCodeName(SQLITE_READONLY), "SQLITE_READONLY");
  EXPECT_EQ(SqliteCodeName(SQLITE_CONSTRAINT_UNIQUE), "SQLITE_CONSTRAINT");
  EXPECT_EQ(SqliteCodeName(SQLITE_NOTADB), "SQLITE_NOTADB");
  EXPECT_EQ(SqliteCodeName(999), "SQLITE_UNKNOWN(999)");
}

TEST(SqliteStatusTest, CorruptionCodesAreRecognised) {
  EXPECT_TRUE(IsCorruptionCode(SQLITE_CORRUPT));
  EXPECT_TRUE(IsCorruptionCode(SQLITE_CORRUPT_INDEX));
  EXPECT_TRUE(IsCorruptionCode(SQLITE_NOTADB));
  EXPECT_FALSE(IsCorruptionCode(SQLITE_FULL));
  EXPECT_FALSE(IsCorruptionCode(SQLITE_IOERR));
}

TEST(SqliteStatusTest, MessageSaysWhatFailedAndSqlitesReason) {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  db.exec("CREATE TABLE t (id TEXT PRIMARY KEY); INSERT INTO t VALUES ('a')");
  try {
    db.exec("INSERT INTO t VALUES ('a')");
    FAIL() << "the duplicate insert succeeded";
  } catch (const SQLite::Exception& e) {
    absl::Status status = SqliteErrorStatus(absl::StatusCode::kUnavailable, "adding row a", e);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(status.message(), HasSubstr("adding row a: UNIQUE constraint failed: t.id"));
    EXPECT_THAT(status.message(), HasSubstr("SQLITE_CONSTRAINT"));
    EXPECT_THAT(status.message(), HasSubstr("extended code 1555"));
  }
}

TEST(SqliteStatusTest, WrapperErrorsWithoutACodeKeepTheirMessage) {
  absl::Status status = SqliteErrorStatus(absl::StatusCode::kUnavailable, "stepping",
                                          SQLite::Exception("wrapper misuse"));
  EXPECT_EQ(status.message(), "stepping: wrapper misuse");
}

}  // namespace
}  // namespace nvlsched::store
