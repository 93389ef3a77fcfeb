// Tests tests/store/fault_injection_vfs.h on plain SQLite connections: registration, counting,
// and that exactly the armed call fails with the promised code.
#include "tests/store/fault_injection_vfs.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store/store_test_util.h"

namespace nvlsched::store::store_testing {
namespace {

using ::testing::HasSubstr;

constexpr char kName[] = "fault-vfs-test";

std::unique_ptr<FaultInjectionVfs> MustRegister(const std::string& name) {
  absl::StatusOr<std::unique_ptr<FaultInjectionVfs>> vfs = FaultInjectionVfs::Register(name);
  EXPECT_TRUE(vfs.ok()) << vfs.status();
  return vfs.ok() ? *std::move(vfs) : nullptr;
}

// A rollback-journal database through `vfs` with one table.
std::unique_ptr<SQLite::Database> OpenThrough(const FaultInjectionVfs& vfs,
                                              const std::string& path) {
  auto db = std::make_unique<SQLite::Database>(
      path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 0, vfs.name());
  db->exec("CREATE TABLE IF NOT EXISTS t (v TEXT)");
  return db;
}

TEST(FaultInjectionVfsTest, RegistersOnceUnderItsNameAndUnregistersWhenDestroyed) {
  EXPECT_EQ(FaultInjectionVfs::Register("").status().code(), absl::StatusCode::kInvalidArgument);
  {
    std::unique_ptr<FaultInjectionVfs> vfs = MustRegister(kName);
    ASSERT_NE(vfs, nullptr);
    EXPECT_EQ(vfs->name(), kName);
    EXPECT_NE(sqlite3_vfs_find(kName), nullptr);
    EXPECT_NE(sqlite3_vfs_find(nullptr), sqlite3_vfs_find(kName)) << "must not become the default";
    absl::StatusOr<std::unique_ptr<FaultInjectionVfs>> again = FaultInjectionVfs::Register(kName);
    EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  }
  EXPECT_EQ(sqlite3_vfs_find(kName), nullptr);
  EXPECT_NE(MustRegister(kName), nullptr);
}

TEST(FaultInjectionVfsTest, CountsOnlyConnectionsOpenedThroughIt) {
  TempDir dir;
  std::unique_ptr<FaultInjectionVfs> vfs = MustRegister(kName);
  ASSERT_NE(vfs, nullptr);
  std::unique_ptr<SQLite::Database> db = OpenThrough(*vfs, dir.File("a.db"));
  vfs->Reset();
  db->exec("INSERT INTO t VALUES ('x')");
  // Rollback journal: journal written and synced, database locked, written and synced.
  const int64_t writes = vfs->count(FaultKind::kWrite);
  EXPECT_GT(writes, 0);
  EXPECT_GT(vfs->count(FaultKind::kSync), 0);
  EXPECT_GT(vfs->count(FaultKind::kLock), 0);
  EXPECT_FALSE(vfs->fired());

  SQLite::Database plain(dir.File("b.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  plain.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('y')");
  EXPECT_EQ(vfs->count(FaultKind::kWrite), writes);

  vfs->Reset();
  EXPECT_EQ(vfs->count(FaultKind::kWrite), 0);
}

// Each kind's armed call fails with its extended I/O error code, or SQLITE_FULL; the calls
// before it went through, and a later statement works again (the fault is one call, not a
// broken disk).
TEST(FaultInjectionVfsTest, FailsExactlyTheArmedCallWithTheChosenCode) {
  struct Case {
    FaultKind kind;
    FaultError error;
    int want_code;
  };
  const Case cases[] = {
      {FaultKind::kWrite, FaultError::kIoError, SQLITE_IOERR_WRITE},
      {FaultKind::kSync, FaultError::kIoError, SQLITE_IOERR_FSYNC},
      {FaultKind::kLock, FaultError::kIoError, SQLITE_IOERR_LOCK},
      {FaultKind::kWrite, FaultError::kDiskFull, SQLITE_FULL},
  };
  TempDir dir;
  std::unique_ptr<FaultInjectionVfs> vfs = MustRegister(kName);
  ASSERT_NE(vfs, nullptr);
  for (const Case& c : cases) {
    SCOPED_TRACE(FaultKindName(c.kind));
    std::unique_ptr<SQLite::Database> db = OpenThrough(*vfs, dir.File("c.db"));
    vfs->Reset();
    db->exec("INSERT INTO t VALUES ('counted')");
    const int64_t calls = vfs->count(c.kind);
    ASSERT_GT(calls, 0);
    // The same statement again makes the same calls; fail its last one of this kind.
    vfs->Reset();
    vfs->FailNthCall(c.kind, calls, c.error);
    try {
      db->exec("INSERT INTO t VALUES ('refused')");
      ADD_FAILURE() << "the insert succeeded although its call failed";
    } catch (const SQLite::Exception& e) {
      EXPECT_EQ(e.getExtendedErrorCode(), c.want_code) << e.what();
    }
    EXPECT_TRUE(vfs->fired());
    EXPECT_GE(vfs->count(c.kind), calls);  // rolling back may make more calls, unharmed
    EXPECT_THAT(vfs->fired_call(), HasSubstr(absl::StrCat(FaultKindName(c.kind), " #", calls)));
    EXPECT_THAT(vfs->fired_call(), HasSubstr("c.db"));

    db->exec("INSERT INTO t VALUES ('after')");
    EXPECT_EQ(db->execAndGet("SELECT count(*) FROM t WHERE v = 'refused'").getInt(), 0);
    EXPECT_EQ(db->execAndGet("SELECT count(*) FROM t WHERE v = 'after'").getInt(), 1);
    db.reset();
    std::filesystem::remove(dir.File("c.db"));
  }
}

TEST(FaultInjectionVfsTest, FailsATruncate) {
  TempDir dir;
  std::unique_ptr<FaultInjectionVfs> vfs = MustRegister(kName);
  ASSERT_NE(vfs, nullptr);
  std::unique_ptr<SQLite::Database> db = OpenThrough(*vfs, dir.File("d.db"));
  db->exec("PRAGMA journal_mode = TRUNCATE");  // commits end by truncating the journal
  vfs->Reset();
  vfs->FailNthCall(FaultKind::kTruncate, 1, FaultError::kIoError);
  try {
    db->exec("INSERT INTO t VALUES ('x')");
    ADD_FAILURE() << "the insert succeeded although its journal truncate failed";
  } catch (const SQLite::Exception& e) {
    EXPECT_EQ(e.getExtendedErrorCode(), SQLITE_IOERR_TRUNCATE) << e.what();
  }
  EXPECT_TRUE(vfs->fired());
  EXPECT_THAT(vfs->fired_call(), HasSubstr("d.db-journal"));
}

}  // namespace
}  // namespace nvlsched::store::store_testing
