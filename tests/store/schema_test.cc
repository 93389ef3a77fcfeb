// Tests store/schema.h: forward migration from an empty file, refusal of newer files, and that a
// failed migration leaves the file at its last complete version.
#include "store/schema.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>

#include <string>
#include <vector>

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

// Instance type 'it', which the migration tests' machines, quotas and instances refer to; its
// columns are those of schema v1, so it inserts at every version.
constexpr char kInsertInstanceType[] = R"sql(
  INSERT INTO instance_types (id, name, gpu_model, gpus_per_machine, gpu_memory_mib,
                              price_per_hour_micros, interconnect)
    VALUES ('it', 'gb200', 'B200', 4, 1, 1, 'nvl');
)sql";

// Domain 'd' with machines `m0` and `m1` (trays 0 and 1, type 'it') and tenant 't'; columns of
// schema v1, so it inserts at every version.
void InsertRackAndTenant(SQLite::Database& db, const std::string& m0, const std::string& m1) {
  db.exec(absl::StrCat(R"sql(
    INSERT INTO domains (id, name, site_id) VALUES ('d', 'rack', 's');
    INSERT INTO machines (id, domain_id, tray_index, instance_type_id, gpu_count, state,
                          state_reason)
      VALUES (')sql", m0, "', 'd', 0, 'it', 4, 0, ''), ('", m1, R"sql(', 'd', 1, 'it', 4, 0, '');
    INSERT INTO tenants (id, org, name) VALUES ('t', 'o', 'tenant');
  )sql"));
}

// One unplaced READY instance row (columns of schema v1); throws what SQLite refuses.
void InsertInstance(SQLite::Database& db, const std::string& id, const std::string& name,
                    const std::string& tenant = "t", const std::string& type = "it",
                    int gpus = 4) {
  db.exec(absl::StrCat(R"sql(
    INSERT INTO instances (id, name, tenant_id, instance_type_id, gpu_count, whole_machine,
                           strict, status, created_unix_micros, updated_unix_micros, details)
      VALUES (')sql", id, "', '", name, "', '", tenant, "', '", type, "', ", gpus,
                       ", 1, 1, 'READY', 1, 1, x'')"));
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
  // v1: 10 tables; v2: events; v3: a column of tenants; v7: instance_nvlink_partitions dropped
  EXPECT_EQ(tables, 10);
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

TEST(SchemaTest, VersionSevenMovesPartitionIdsIntoTheRowInOrder) {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  ASSERT_TRUE(ApplyMigrations(db, "mem", SchemaMigrations().first(6)).ok());
  db.exec(kInsertInstanceType);
  db.exec(R"sql(
    INSERT INTO tenants (id, org, name) VALUES ('t', 'acme', 'Acme');
    INSERT INTO instances (id, name, tenant_id, instance_type_id, gpu_count, whole_machine,
                           strict, status, created_unix_micros, updated_unix_micros, details)
      VALUES ('i-2', 'b', 't', 'it', 4, 1, 1, 'READY', 1, 1, x''),
             ('i-1', 'a', 't', 'it', 4, 1, 1, 'READY', 1, 1, x''),
             ('i-0', 'c', 't', 'it', 4, 1, 1, 'READY', 1, 1, x'');
    -- Inserted out of order: the position decides, and repeats are kept.
    INSERT INTO instance_nvlink_partitions (instance_id, position, partition_id)
      VALUES ('i-1', 2, 'p-a'), ('i-2', 0, 'p-z'), ('i-1', 0, 'p-c'), ('i-1', 1, 'p-a'),
             ('i-1', 3, 'p-b');
  )sql");
  ASSERT_TRUE(MigrateToCurrent(db, "mem").ok());
  EXPECT_GE(*ReadSchemaVersion(db, "mem"), 7);
  auto partitions = [&db](const char* id) {
    return db.execAndGet(absl::StrCat("SELECT nvlink_partition_ids FROM instances WHERE id = '",
                                      id, "'"))
        .getString();
  };
  EXPECT_EQ(partitions("i-1"), "p-c\np-a\np-a\np-b");
  EXPECT_EQ(partitions("i-2"), "p-z");
  EXPECT_EQ(partitions("i-0"), "");
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM sqlite_schema WHERE name IN "
                          "('instance_nvlink_partitions', 'instances_by_batch')")
                .getInt(),
            0);
}

TEST(SchemaTest, VersionEightKeysQuotasByTypeAndSite) {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  ASSERT_TRUE(ApplyMigrations(db, "mem", SchemaMigrations().first(7)).ok());
  db.exec(kInsertInstanceType);
  db.exec(R"sql(
    INSERT INTO tenants (id, org, name) VALUES ('t', 'acme', 'Acme');
    INSERT INTO tenant_quotas (tenant_id, instance_type_id, max_machines) VALUES ('t', 'it', 9);
  )sql");
  ASSERT_TRUE(MigrateToCurrent(db, "mem").ok());
  EXPECT_GE(*ReadSchemaVersion(db, "mem"), 8);
  EXPECT_EQ(db.execAndGet("SELECT site_id || ':' || max_machines FROM tenant_quotas").getString(),
            ":9");
  db.exec("INSERT INTO tenant_quotas (tenant_id, instance_type_id, site_id, max_machines) "
          "VALUES ('t', 'it', 's1', 2)");
  EXPECT_THROW(db.exec("INSERT INTO tenant_quotas (tenant_id, instance_type_id, site_id, "
                       "max_machines) VALUES ('t', 'it', 's1', 3)"),
               SQLite::Exception);
  EXPECT_THROW(db.exec("INSERT INTO tenant_quotas (tenant_id, instance_type_id, max_machines) "
                       "VALUES ('t', 'it', 1)"),
               SQLite::Exception);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM sqlite_schema WHERE name = "
                          "'tenant_quotas_by_instance_type'")
                .getInt(),
            1);
  // The tenant's quotas still go with it.
  db.exec("PRAGMA foreign_keys = ON; DELETE FROM tenants WHERE id = 't'");
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM tenant_quotas").getInt(), 0);
}

TEST(SchemaTest, VersionNineMarksCleaningMachinesAsWaitingForAWipe) {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  ASSERT_TRUE(ApplyMigrations(db, "mem", SchemaMigrations().first(7)).ok());
  db.exec(kInsertInstanceType);
  db.exec(R"sql(
    INSERT INTO domains (id, name, site_id) VALUES ('d', 'rack', 's');
    INSERT INTO machines (id, domain_id, tray_index, instance_type_id, gpu_count, state,
                          state_reason, cleaning)
      VALUES ('m-cleaning', 'd', 0, 'it', 4, 1, 'cleaning: instance i was released', 1),
             ('m-drained', 'd', 1, 'it', 4, 1, 'bad DIMM', 0),
             ('m-ready', 'd', 2, 'it', 4, 0, '', 0);
  )sql");
  ASSERT_TRUE(MigrateToCurrent(db, "mem").ok());
  EXPECT_GE(*ReadSchemaVersion(db, "mem"), 9);
  auto wipe = [&db](const char* id) {
    return db.execAndGet(absl::StrCat("SELECT wipe_pending FROM machines WHERE id = '", id, "'"))
        .getInt();
  };
  EXPECT_EQ(wipe("m-cleaning"), 1);
  EXPECT_EQ(wipe("m-drained"), 0);  // nothing says an instance left it unwiped
  EXPECT_EQ(wipe("m-ready"), 0);
  EXPECT_THROW(db.exec("UPDATE machines SET wipe_pending = 2 WHERE id = 'm-ready'"),
               SQLite::Exception);
}

TEST(SchemaTest, SpareTraysMigrationGivesExistingDomainsTheFleetDefaultAndChecksTheRange) {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  ASSERT_TRUE(ApplyMigrations(db, "mem", SchemaMigrations().first(9)).ok());
  db.exec("INSERT INTO domains (id, name, site_id, state, state_reason) "
          "VALUES ('d-0', 'rack 0', 's', 1, 'links down')");
  ASSERT_TRUE(MigrateToCurrent(db, "mem").ok());
  EXPECT_EQ(*ReadSchemaVersion(db, "mem"), CurrentSchemaVersion());
  // NULL: the fleet default applies; the rest of the row is as it was.
  EXPECT_TRUE(db.execAndGet("SELECT spare_machines FROM domains WHERE id = 'd-0'").isNull());
  EXPECT_EQ(db.execAndGet("SELECT state_reason FROM domains WHERE id = 'd-0'").getString(),
            "links down");
  EXPECT_EQ(db.exec("UPDATE domains SET spare_machines = 2 WHERE id = 'd-0'"), 1);
  EXPECT_EQ(db.exec("UPDATE domains SET spare_machines = 0 WHERE id = 'd-0'"), 1);
  EXPECT_THROW(db.exec("UPDATE domains SET spare_machines = -1 WHERE id = 'd-0'"),
               SQLite::Exception);
}

TEST(SchemaTest, VersionElevenDropsTheInstancesByMachineIndexButKeepsTheForeignKey) {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  ASSERT_TRUE(ApplyMigrations(db, "mem", SchemaMigrations().first(10)).ok());
  auto has_index = [&db] {
    return db.execAndGet("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                         "name = 'instances_by_machine'")
               .getInt() == 1;
  };
  ASSERT_TRUE(has_index());
  db.exec(kInsertInstanceType);
  InsertRackAndTenant(db, "m-held", "m-free");
  db.exec(R"sql(
    INSERT INTO instances (id, name, tenant_id, instance_type_id, machine_id, gpu_count,
                           whole_machine, strict, status, created_unix_micros,
                           updated_unix_micros, details)
      VALUES ('i', 'worker-1', 't', 'it', 'm-held', 4, 1, 1, 'READY', 1, 1, x'');
  )sql");
  ASSERT_TRUE(ApplyMigrations(db, "mem", SchemaMigrations().first(11)).ok());
  EXPECT_FALSE(has_index());
  // The instance is still there, and still pins its machine (now by a scan).
  EXPECT_EQ(db.execAndGet("SELECT machine_id FROM instances WHERE id = 'i'").getString(),
            "m-held");
  db.exec("PRAGMA foreign_keys = ON");
  EXPECT_THROW(db.exec("DELETE FROM machines WHERE id = 'm-held'"), SQLite::Exception);
  EXPECT_EQ(db.exec("DELETE FROM machines WHERE id = 'm-free'"), 1);
}

TEST(SchemaTest, VersionTwelveDropsTheNameIndexAndTheMachineKeyAndKeepsEveryRowInOrder) {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  ASSERT_TRUE(ApplyMigrations(db, "mem", SchemaMigrations().first(11)).ok());
  db.exec("PRAGMA foreign_keys = ON");
  db.exec(kInsertInstanceType);
  // Ids out of insertion order, partition ids, a NULL machine and batch: the rebuilt table
  // must give back every column and the rowid order.
  InsertRackAndTenant(db, "m-0", "m-1");
  db.exec(R"sql(
    INSERT INTO instances (id, name, tenant_id, instance_type_id, machine_id, gpu_count,
                           whole_machine, batch_id, strict, status, created_unix_micros,
                           updated_unix_micros, details, nvlink_partition_ids)
      VALUES ('i-2', 'b', 't', 'it', 'm-1', 4, 1, 'bt', 1, 'READY', 5, 6, x'0a01', 'p-1' || char(10) || 'p-0'),
             ('i-1', 'a', 't', 'it', NULL, 2, 0, NULL, 0, 'QUEUED', 7, 8, x'', '');
  )sql");
  EXPECT_THROW(InsertInstance(db, "i-3", "a"), SQLite::Exception);  // v11: a second 'a'
  const std::string kRows =
      "SELECT group_concat(r, ';') FROM (SELECT rowid || ',' || id || ',' || name || ',' || "
      "tenant_id || ',' || instance_type_id || ',' || coalesce(machine_id, '-') || ',' || "
      "gpu_count || ',' || whole_machine || ',' || coalesce(batch_id, '-') || ',' || strict || "
      "',' || status || ',' || created_unix_micros || ',' || updated_unix_micros || ',' || "
      "hex(details) || ',' || nvlink_partition_ids AS r FROM instances ORDER BY rowid)";
  const std::string before = db.execAndGet(kRows).getString();

  ASSERT_TRUE(MigrateToCurrent(db, "mem").ok());
  EXPECT_GE(*ReadSchemaVersion(db, "mem"), 12);
  EXPECT_EQ(db.execAndGet(kRows).getString(), before);
  EXPECT_EQ(before, "1,i-2,b,t,it,m-1,4,1,bt,1,READY,5,6,0A01,p-1\np-0;"
                    "2,i-1,a,t,it,-,2,0,-,0,QUEUED,7,8,,");
  // The instances' only index is their primary key's.
  EXPECT_EQ(db.execAndGet("SELECT group_concat(name) FROM sqlite_schema WHERE type = 'index' "
                          "AND tbl_name = 'instances'")
                .getString(),
            "sqlite_autoindex_instances_1");
  EXPECT_THAT(db.execAndGet("SELECT sql FROM sqlite_schema WHERE name = 'instances'").getString(),
              ::testing::Not(HasSubstr("machines")));
  // A second name 'a' is the engine's to refuse now, and a machine's row goes whoever refers
  // to it; the tenant and the instance type are still checked.
  InsertInstance(db, "i-3", "a");
  EXPECT_EQ(db.exec("DELETE FROM machines WHERE id = 'm-1'"), 1);
  EXPECT_THROW(InsertInstance(db, "i-4", "c", "no-such-tenant"), SQLite::Exception);
  EXPECT_THROW(InsertInstance(db, "i-5", "d", "t", "no-such-type"), SQLite::Exception);
  EXPECT_THROW(InsertInstance(db, "i-6", "e", "t", "it", 0), SQLite::Exception);  // CHECKs stay
  // New rows go after the old ones.
  EXPECT_EQ(db.execAndGet("SELECT rowid FROM instances WHERE id = 'i-3'").getInt(), 3);
}

TEST(SchemaTest, AnUpgradeIsReportedBeforeAndAfterEachStepButANewDatabaseIsNot) {
  std::vector<std::string> seen;
  auto observer = [&seen](const MigrationStep& step) {
    seen.push_back(absl::StrCat(step.from_version, "->", step.to_version,
                                step.took.has_value() ? " done" : " starting", " ",
                                step.description.substr(0, 12)));
    if (step.took.has_value()) EXPECT_GE(*step.took, absl::ZeroDuration());
  };
  SQLite::Database fresh(":memory:", SQLite::OPEN_READWRITE);
  ASSERT_TRUE(MigrateToCurrent(fresh, "mem", observer).ok());
  EXPECT_TRUE(seen.empty());

  SQLite::Database old(":memory:", SQLite::OPEN_READWRITE);
  ASSERT_TRUE(ApplyMigrations(old, "mem", SchemaMigrations().first(10)).ok());
  ASSERT_TRUE(MigrateToCurrent(old, "mem", observer).ok());
  std::vector<std::string> expected;
  for (const Migration& m : SchemaMigrations().subspan(10)) {
    const std::string what = std::string(m.description).substr(0, 12);
    expected.push_back(absl::StrCat(m.version - 1, "->", m.version, " starting ", what));
    expected.push_back(absl::StrCat(m.version - 1, "->", m.version, " done ", what));
  }
  EXPECT_EQ(seen, expected);
  ASSERT_GE(seen.size(), 4u);  // 10 -> 11 -> 12 at least
  seen.clear();
  ASSERT_TRUE(MigrateToCurrent(old, "mem", observer).ok());
  EXPECT_TRUE(seen.empty());
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
