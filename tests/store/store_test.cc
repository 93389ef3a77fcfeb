// Tests store/store.h: the contract both stores keep (round trips of every row kind,
// atomicity, the failure latch; StoreContractTest, on SQLite and on PostgreSQL), and SQLite's
// own open-time checks and disk-full behaviour (page cap and a real tmpfs; StoreTest).
#include "store/store.h"

#include <SQLiteCpp/Database.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/schema.h"
#include "tests/store/store_test_util.h"
#include "tests/testing/pg_test_database.h"

namespace nvlsched::store {
namespace {

using ::nvlsched::store::store_testing::LoadOrFail;
using ::nvlsched::store::store_testing::MakeDomain;
using ::nvlsched::store::store_testing::MakeFleet;
using ::nvlsched::store::store_testing::MakeInstance;
using ::nvlsched::store::store_testing::MakeInstanceType;
using ::nvlsched::store::store_testing::MakeMachine;
using ::nvlsched::store::store_testing::MakeTenant;
using ::nvlsched::store::store_testing::OpenOrFail;
using ::nvlsched::store::store_testing::TempDir;
using ::nvlsched::store::store_testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class StoreTest : public ::testing::Test {
 protected:
  StoreOptions Options() const {
    StoreOptions options;
    options.path = dir_.File("state.db");
    return options;
  }

  std::unique_ptr<Store> Open(const StoreOptions& options) { return OpenOrFail(options); }
  std::unique_ptr<Store> Open() { return Open(Options()); }
  LoadedState Load(Store& store) { return LoadOrFail(store); }

  TempDir dir_;
};

enum class Backend { kSqlite, kPostgres };

// The contract of store/store.h, held by both stores: each test runs on a SQLite file and on a
// fresh PostgreSQL database (tests/testing/pg_test_database.h: the server tools/test.sh
// starts; without one these tests fail, never skip).
class StoreContractTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (!postgres()) return;
    absl::StatusOr<nvlsched::testing::PgTestDatabase> db =
        nvlsched::testing::PgTestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status();
    pg_.emplace(*std::move(db));
  }

  bool postgres() const { return GetParam() == Backend::kPostgres; }

  StoreOptions Options() const {
    StoreOptions options;
    options.path = postgres() ? pg_->uri() : dir_.File("state.db");
    return options;
  }

  std::unique_ptr<Store> Open() { return OpenOrFail(Options()); }
  LoadedState Load(Store& store) { return LoadOrFail(store); }

  // How the database words a violated constraint of `kind` ("UNIQUE", "CHECK", "FOREIGN KEY").
  std::string Violation(absl::string_view kind) const {
    if (!postgres()) return absl::StrCat(kind, " constraint failed");
    if (kind == "UNIQUE") return "duplicate key value violates unique constraint";
    if (kind == "CHECK") return "violates check constraint";
    return "violates foreign key constraint";
  }

  TempDir dir_;
  std::optional<nvlsched::testing::PgTestDatabase> pg_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
                         });

TEST_P(StoreContractTest, SpareTraysPersistAndReload) {
  ChangeSet fleet = MakeFleet(3, 4, 1);
  fleet.upsert_domains[0].spare_machines = 2;
  fleet.upsert_domains[1].spare_machines = 0;  // an explicit 0 is not "the default"
  fleet.put_meta.push_back(MetaRow{kDefaultSpareMachinesKey, "1"});
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Commit(fleet).ok());
  }
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  LoadedState state = Load(*store);
  ASSERT_EQ(state.domains.size(), 3u);
  EXPECT_EQ(state.domains[0].spare_machines, std::optional<int32_t>(2));
  EXPECT_EQ(state.domains[1].spare_machines, std::optional<int32_t>(0));
  EXPECT_EQ(state.domains[2].spare_machines, std::nullopt);
  EXPECT_THAT(state.meta, ::testing::Contains(MetaRow{kDefaultSpareMachinesKey, "1"}));

  ChangeSet update;
  update.upsert_domains.push_back(fleet.upsert_domains[0]);
  update.upsert_domains[0].spare_machines.reset();  // back to the default
  update.put_meta.push_back(MetaRow{kDefaultSpareMachinesKey, "3"});
  ASSERT_TRUE(store->Commit(update).ok());
  state = Load(*store);
  EXPECT_EQ(state.domains[0].spare_machines, std::nullopt);
  EXPECT_THAT(state.meta, ::testing::Contains(MetaRow{kDefaultSpareMachinesKey, "3"}));
}

TEST_F(StoreTest, NewFileOpensEmptyAtCurrentVersionInWalMode) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  LoadedState state = Load(*store);
  EXPECT_EQ(state.schema_version, CurrentSchemaVersion());
  EXPECT_THAT(state.machines, IsEmpty());
  EXPECT_THAT(state.instances, IsEmpty());
  ASSERT_TRUE(store->Commit(MakeFleet(1, 2, 1)).ok());
  EXPECT_TRUE(std::filesystem::exists(Options().path + "-wal"));

  SQLite::Database raw(Options().path, SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA journal_mode").getString(), "wal");
}

// Debian's SQLite is built with SQLITE_SECURE_DELETE, which zeroes a deleted row's bytes in its
// page (a page-sized memset per delete: 4% of the engine thread's instructions under the batch
// load). The store turns it off: the page the delete writes to the WAL still holds the deleted
// row's bytes in its free space, as with SQLite's own default.
TEST_F(StoreTest, ADeleteLeavesTheRowsBytesUnzeroedInItsPage) {
  const std::string marker = "deleted-row-marker-5f3a9c01";
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet create = MakeFleet(1, 2, 1);
  InstanceRow row = MakeInstance("i-1", "worker", "m-0-0");
  row.details = marker;
  create.upsert_instances.push_back(row);
  ASSERT_TRUE(store->Commit(create).ok());
  // The WAL's pages after the insert hold the marker once (the instance table's page).
  auto markers_in_wal = [&] {
    std::ifstream in(Options().path + "-wal", std::ios::binary);
    const std::string wal((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int count = 0;
    for (size_t at = wal.find(marker); at != std::string::npos; at = wal.find(marker, at + 1)) {
      ++count;
    }
    return count;
  };
  ASSERT_EQ(markers_in_wal(), 1);
  ChangeSet remove;
  remove.delete_instance_ids.push_back("i-1");
  ASSERT_TRUE(store->Commit(remove).ok());
  EXPECT_EQ(markers_in_wal(), 2) << "the delete's copy of the page had the row zeroed";
  EXPECT_THAT(Load(*store).instances, IsEmpty());
}

TEST_F(StoreTest, EmptyPathIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(StoreOptions());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store.status().message(), HasSubstr("path is empty"));
}

TEST_F(StoreTest, GarbageFileIsDataLossNamingPathAndSqliteMessage) {
  const std::string path = Options().path;
  WriteFile(path, std::string(8192, 'x'));
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr(path));
  EXPECT_THAT(store.status().message(), HasSubstr("file is not a database"));
}

TEST_F(StoreTest, NewerSchemaVersionIsFailedPreconditionNamingBothVersions) {
  ASSERT_NE(Open(), nullptr);
  const int newer = CurrentSchemaVersion() + 1;
  {
    SQLite::Database raw(Options().path, SQLite::OPEN_READWRITE);
    raw.exec(absl::StrCat("PRAGMA user_version = ", newer));
  }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(absl::StrCat("schema version ", newer)));
  EXPECT_THAT(store.status().message(), HasSubstr(absl::StrCat("up to ", CurrentSchemaVersion())));
  EXPECT_THAT(store.status().message(), HasSubstr(Options().path));
}

TEST_F(StoreTest, VersionZeroFileIsMigratedToCurrent) {
  {
    // An existing, valid, empty database: user_version 0, no tables.
    SQLite::Database raw(Options().path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec("PRAGMA user_version = 0");
  }
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Load(*store).schema_version, CurrentSchemaVersion());
  EXPECT_TRUE(store->Commit(MakeFleet()).ok());
}

// A database written before tenant priorities (schema version 2) opens at the current
// version with every tenant and quota kept, each tenant at the default priority 0.
TEST_F(StoreTest, VersionTwoFileIsMigratedKeepingTenantsAtPriorityZero) {
  {
    SQLite::Database raw(Options().path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ASSERT_TRUE(ApplyMigrations(raw, Options().path, SchemaMigrations().first(2)).ok());
    raw.exec(R"sql(
      INSERT INTO instance_types (id, name, gpu_model, gpus_per_machine, gpu_memory_mib,
                                  price_per_hour_micros, interconnect)
        VALUES ('it-0', 'gb200', 'GB200', 4, 189000, 42000000, 'nvlink');
      INSERT INTO tenants (id, org, name) VALUES ('t-0', 'acme', 'Acme'), ('t-1', 'globex', '');
      INSERT INTO tenant_quotas (tenant_id, instance_type_id, max_machines)
        VALUES ('t-0', 'it-0', 72);
    )sql");
    ASSERT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), 2);
  }
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  LoadedState state = Load(*store);
  EXPECT_EQ(state.schema_version, CurrentSchemaVersion());
  ASSERT_EQ(state.tenants.size(), 2u);
  EXPECT_EQ(state.tenants[0], (TenantRow{"t-0", "acme", "Acme", {{"it-0", 72}}, 0}));
  EXPECT_EQ(state.tenants[1], (TenantRow{"t-1", "globex", "", {}, 0}));

  // The migrated table takes priorities like a new one.
  ChangeSet update;
  update.upsert_tenants.push_back(state.tenants[1]);
  update.upsert_tenants[0].priority = -7;
  ASSERT_TRUE(store->Commit(update).ok());
  EXPECT_EQ(Load(*store).tenants[1].priority, -7);
}

// A database written before per-site quotas (schema version 7) opens at the current version
// with every quota kept as a fleet-wide entry; per-site entries then round-trip beside them.
TEST_F(StoreTest, VersionSevenFileIsMigratedKeepingQuotasFleetWide) {
  {
    SQLite::Database raw(Options().path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ASSERT_TRUE(ApplyMigrations(raw, Options().path, SchemaMigrations().first(7)).ok());
    raw.exec(R"sql(
      INSERT INTO instance_types (id, name, gpu_model, gpus_per_machine, gpu_memory_mib,
                                  price_per_hour_micros, interconnect)
        VALUES ('it-0', 'gb200', 'GB200', 4, 189000, 42000000, 'nvlink'),
               ('it-1', 'h100', 'H100', 8, 80000, 42000000, 'nvlink');
      INSERT INTO tenants (id, org, name, priority) VALUES ('t-0', 'acme', 'Acme', 5),
                                                           ('t-1', 'globex', '', 0);
      INSERT INTO tenant_quotas (tenant_id, instance_type_id, max_machines)
        VALUES ('t-0', 'it-0', 72), ('t-0', 'it-1', 3), ('t-1', 'it-0', 0);
    )sql");
    ASSERT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), 7);
  }
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  LoadedState state = Load(*store);
  EXPECT_EQ(state.schema_version, CurrentSchemaVersion());
  ASSERT_EQ(state.tenants.size(), 2u);
  EXPECT_EQ(state.tenants[0], (TenantRow{"t-0", "acme", "Acme", {{"it-0", 72}, {"it-1", 3}}, 5}));
  EXPECT_EQ(state.tenants[1], (TenantRow{"t-1", "globex", "", {{"it-0", 0}}, 0}));

  // A fleet-wide and two per-site entries for one type.
  ChangeSet update;
  update.upsert_tenants.push_back(state.tenants[0]);
  update.upsert_tenants[0].site_quotas = {{{"it-0", "site-a"}, 10}, {{"it-0", "site-b"}, 0}};
  ASSERT_TRUE(store->Commit(update).ok());
  EXPECT_EQ(Load(*store).tenants[0], update.upsert_tenants[0]);
  // Replaced whole: dropping a per-site entry drops its row.
  update.upsert_tenants[0].site_quotas.erase({"it-0", "site-b"});
  ASSERT_TRUE(store->Commit(update).ok());
  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Load(*store).tenants[0], update.upsert_tenants[0]);
}

TEST_P(StoreContractTest, TenantPriorityRoundTripsAndUpsertReplacesIt) {
  ChangeSet fleet = MakeFleet(1, 2, 3);
  fleet.upsert_tenants[0].priority = 1000;
  fleet.upsert_tenants[1].priority = -1000;
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Commit(fleet).ok());
  }
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Load(*store).tenants, fleet.upsert_tenants);

  ChangeSet update;
  update.upsert_tenants.push_back(fleet.upsert_tenants[0]);
  update.upsert_tenants[0].priority = 3;
  ASSERT_TRUE(store->Commit(update).ok());
  LoadedState state = Load(*store);
  ASSERT_EQ(state.tenants.size(), 3u);
  EXPECT_EQ(state.tenants[0], update.upsert_tenants[0]);  // updated in place: still first
  EXPECT_EQ(state.tenants[1].priority, -1000);
  EXPECT_EQ(state.tenants[2].priority, 0);
}

// The schema holds the API's range too: a priority outside -1000..1000 never reaches the file.
TEST_P(StoreContractTest, TenantPriorityOutsideTheRangeViolatesTheSchema) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet fleet = MakeFleet(1, 2, 1);
  fleet.upsert_tenants[0].priority = 1001;
  absl::Status status = store->Commit(fleet);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(Violation("CHECK")));
  EXPECT_THAT(status.message(), HasSubstr("t-0"));
}

TEST_F(StoreTest, CorruptFileIsDataLoss) {
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ChangeSet fleet = MakeFleet(8, 18, 4);
    ASSERT_TRUE(store->Commit(fleet).ok());
  }
  // Keep the 100-byte header (so it still looks like SQLite) and scribble over every page after
  // the first.
  const std::string path = Options().path;
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 3 * 4096u);
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(4096);
    file << std::string(size - 4096, '\x5a');
  }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr(path));
}

// Scribbles over the root page of machines' primary-key index. LoadAll reads the tables in
// rowid order and never that index, so only quick_check finds the damage.
void DamageMachineIdIndex(const std::string& path) {
  int64_t root = 0;
  {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    root = db.execAndGet("SELECT rootpage FROM sqlite_master WHERE name = "
                         "'sqlite_autoindex_machines_1'")
               .getInt64();
  }
  ASSERT_GT(root, 1);
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp((root - 1) * 4096 + 8);  // past the page header's first bytes
  file << std::string(4000, '\x5a');
}

TEST_F(StoreTest, QuickCheckWithLoadRunsBesideLoadAllAndRefusesADamagedIndex) {
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Commit(MakeFleet(8, 18, 4)).ok());
  }
  // A healthy file: Open leaves the check to LoadAll, which passes, and writes go on.
  StoreOptions options = Options();
  options.quick_check_with_load = true;
  {
    std::unique_ptr<Store> store = Open(options);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(Load(*store).machines.size(), 8u * 18u);
    ChangeSet more;
    more.upsert_tenants.push_back(MakeTenant(100));
    EXPECT_TRUE(store->Commit(more).ok());
  }
  DamageMachineIdIndex(Options().path);
  // Checked in Open, as before, without the option.
  absl::StatusOr<std::unique_ptr<Store>> checked_at_open = Store::Open(Options());
  EXPECT_EQ(checked_at_open.status().code(), absl::StatusCode::kDataLoss)
      << checked_at_open.status();
  checked_at_open = absl::CancelledError("closed");
  // With it, Open succeeds and LoadAll reports quick_check's findings, whatever it read.
  {
    std::unique_ptr<Store> store = Open(options);
    ASSERT_NE(store, nullptr);
    absl::StatusOr<LoadedState> loaded = store->LoadAll();
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss) << loaded.status();
    EXPECT_THAT(loaded.status().message(), HasSubstr("quick_check"));
    EXPECT_THAT(loaded.status().message(), HasSubstr(Options().path));
  }
  // Nothing is written to, or copied from, the file before its check has passed.
  {
    std::unique_ptr<Store> store = Open(options);
    ASSERT_NE(store, nullptr);
    ChangeSet more;
    more.upsert_tenants.push_back(MakeTenant(101));
    absl::Status commit = store->Commit(more);
    EXPECT_EQ(commit.code(), absl::StatusCode::kDataLoss) << commit;
    absl::Status snapshot = store->WriteSnapshot(dir_.File("snap.db"));
    EXPECT_EQ(snapshot.code(), absl::StatusCode::kDataLoss) << snapshot;
    EXPECT_FALSE(std::filesystem::exists(dir_.File("snap.db")));
  }
}

TEST_F(StoreTest, MissingDirectoryIsUnavailable) {
  StoreOptions options = Options();
  options.path = dir_.File("no/such/dir/state.db");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(store.status().message(), HasSubstr("unable to open database file"));
}

TEST_F(StoreTest, UnknownVfsIsUnavailableNamingIt) {
  StoreOptions options = Options();
  options.vfs = "no-such-vfs";
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(store.status().message(), HasSubstr("no such vfs: no-such-vfs"));
}

// One Store per database file: a second Open, from this process or another, is refused
// until the first Store is gone (store/file_lock.h).
TEST_F(StoreTest, SecondOpenOfTheSameFileIsRefusedUntilTheFirstCloses) {
  std::unique_ptr<Store> first = Open();
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<Store>> second = Store::Open(Options());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("another process (pid ", getpid(), ") holds ",
                                     Options().path, ".lock")));
  // The refused Open changed nothing: the first Store still commits.
  EXPECT_TRUE(first->Commit(MakeFleet(1, 2, 0)).ok());

  first.reset();
  std::unique_ptr<Store> again = Open();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(Load(*again).machines.size(), 2u);
}

TEST_F(StoreTest, InMemoryStoresTakeNoLock) {
  StoreOptions options;
  options.path = ":memory:";
  std::unique_ptr<Store> a = Open(options);
  std::unique_ptr<Store> b = Open(options);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
}

TEST_P(StoreContractTest, EveryRowKindRoundTripsAcrossReopen) {
  ChangeSet changes = MakeFleet(2, 3, 2);
  changes.upsert_instance_types.push_back(MakeInstanceType(1));
  changes.upsert_tenants[1].quotas = {{"it-0", 5}, {"it-1", 0}};
  changes.upsert_machines[1].state = kMachineMaintenance;
  changes.upsert_machines[1].state_reason = "drained for firmware";
  changes.upsert_machines[2].state = kMachineError;
  changes.upsert_machines[2].wipe_pending = true;  // drained when its last instance left
  changes.upsert_instances.push_back(MakeInstance("i-1", "worker-abc123", "m-0-0"));
  InstanceRow granular = MakeInstance("i-2", "single", "m-1-0", 1);
  granular.gpu_count = 2;
  granular.whole_machine = false;
  granular.batch_id = "";
  granular.strict = false;
  changes.upsert_instances.push_back(granular);
  changes.put_idempotency.push_back(
      IdempotencyRow{"t-0", "req-1", std::string("\xff\x00\x01", 3), "response", 17});
  changes.put_meta.push_back(MetaRow{"schema_note", std::string("\x00\x01", 2)});
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Commit(changes).ok());
  }
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  LoadedState state = Load(*store);
  EXPECT_EQ(state.instance_types, changes.upsert_instance_types);
  EXPECT_EQ(state.domains, changes.upsert_domains);
  EXPECT_EQ(state.machines, changes.upsert_machines);
  EXPECT_EQ(state.tenants, changes.upsert_tenants);
  EXPECT_EQ(state.instances, changes.upsert_instances);
  EXPECT_EQ(state.idempotency, changes.put_idempotency);
  EXPECT_EQ(state.meta, changes.put_meta);
}

// LoadAll(kStartUp): every row as LoadAll() reads it, but an instance row needs only its key
// columns (what the daemon's start-up reads); the others may be left at their defaults.
TEST_P(StoreContractTest, StartUpLoadHasEveryRowAndTheInstancesKeyColumns) {
  ChangeSet changes = MakeFleet(2, 3, 2);
  changes.upsert_instances.push_back(MakeInstance("i-1", "worker-abc123", "m-0-0"));
  InstanceRow granular = MakeInstance("i-2", "single", "m-1-0", 1);
  granular.gpu_count = 2;
  granular.whole_machine = false;
  granular.details = std::string("\x0a\x00record", 8);
  changes.upsert_instances.push_back(granular);
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Commit(changes).ok());
  absl::StatusOr<LoadedState> full = store->LoadAll();
  absl::StatusOr<LoadedState> start_up = store->LoadAll(InstanceColumns::kStartUp);
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_TRUE(start_up.ok()) << start_up.status();
  EXPECT_EQ(start_up->machines, full->machines);
  EXPECT_EQ(start_up->tenants, full->tenants);
  EXPECT_EQ(start_up->domains, full->domains);
  ASSERT_EQ(start_up->instances.size(), changes.upsert_instances.size());
  for (size_t i = 0; i < changes.upsert_instances.size(); ++i) {
    const InstanceRow& want = changes.upsert_instances[i];
    const InstanceRow& got = start_up->instances[i];
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(got.tenant_id, want.tenant_id);
    EXPECT_EQ(got.machine_id, want.machine_id);
    EXPECT_EQ(got.gpu_count, want.gpu_count);
    EXPECT_EQ(got.whole_machine, want.whole_machine);
    EXPECT_EQ(got.details, want.details);
  }
}

TEST_P(StoreContractTest, UpsertReplacesFieldsAndChildRowsAndKeepsInsertionOrder) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet fleet = MakeFleet(1, 3, 1);
  fleet.upsert_instances = {MakeInstance("i-1", "a", "m-0-0"), MakeInstance("i-2", "b", "m-0-1")};
  ASSERT_TRUE(store->Commit(fleet).ok());

  ChangeSet update;
  MachineRow machine = fleet.upsert_machines[0];
  machine.labels = {{"rack", "r9"}, {"new", "label"}};
  machine.state = kMachineMaintenance;
  update.upsert_machines.push_back(machine);
  TenantRow tenant = fleet.upsert_tenants[0];
  tenant.quotas.clear();
  update.upsert_tenants.push_back(tenant);
  InstanceRow instance = fleet.upsert_instances[0];
  instance.nvlink_partition_ids = {"part-z"};
  instance.status = "TERMINATING";
  instance.updated_unix_micros += 1000;
  update.upsert_instances.push_back(instance);
  update.put_meta.push_back(MetaRow{"fleet_seeded", "2"});
  ASSERT_TRUE(store->Commit(update).ok());

  LoadedState state = Load(*store);
  ASSERT_EQ(state.machines.size(), 3u);
  EXPECT_EQ(state.machines[0], machine);  // updated in place: still first
  EXPECT_EQ(state.machines[1], fleet.upsert_machines[1]);
  ASSERT_EQ(state.tenants.size(), 1u);
  EXPECT_THAT(state.tenants[0].quotas, IsEmpty());
  EXPECT_THAT(state.instances, ElementsAre(instance, fleet.upsert_instances[1]));
  EXPECT_THAT(state.meta, ElementsAre(MetaRow{"fleet_seeded", "2"}));
}

TEST_P(StoreContractTest, DeleteRemovesRowsAndChildRowsAndFreesTheName) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet fleet = MakeFleet(1, 3, 1);
  fleet.upsert_instances = {MakeInstance("i-1", "worker", "m-0-0")};
  ASSERT_TRUE(store->Commit(fleet).ok());

  // One group terminates "worker" and creates a new "worker": deletes go first.
  ChangeSet next;
  next.delete_instance_ids = {"i-1"};
  next.upsert_instances = {MakeInstance("i-2", "worker", "m-0-1")};
  next.delete_machine_ids = {"m-0-0", "m-0-2"};
  ASSERT_TRUE(store->Commit(next).ok()) << store->failure();

  LoadedState state = Load(*store);
  EXPECT_THAT(state.instances, ElementsAre(next.upsert_instances[0]));
  ASSERT_EQ(state.machines.size(), 1u);
  EXPECT_EQ(state.machines[0].id, "m-0-1");

  // No child row of a deleted parent is left behind (PostgreSQL: the foreign key's cascade).
  if (postgres()) return;
  SQLite::Database raw(Options().path, SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("SELECT count(*) FROM machine_labels WHERE machine_id IN "
                           "('m-0-0', 'm-0-2')")
                .getInt(),
            0);
}

TEST_P(StoreContractTest, UnicodeEmptyAndLargeValuesRoundTrip) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet changes = MakeFleet(1, 2, 1);
  changes.upsert_machines[0].labels = {{"zone", "東京-1"}, {"emoji 🚀", "GPU ✓"}, {"", ""}};
  changes.upsert_machines[1].labels.clear();
  changes.upsert_domains[0].name = "domaine réseau";
  InstanceRow bare = MakeInstance("i-bare", "名前", "", 0);
  bare.nvlink_partition_ids.clear();
  bare.batch_id.clear();
  bare.details.clear();
  bare.status.clear();
  InstanceRow large = MakeInstance("i-large", "large", "m-0-1", 0);
  large.details.resize(8 << 20);
  for (size_t i = 0; i < large.details.size(); ++i) {
    large.details[i] = static_cast<char>((i * 131) & 0xff);  // every byte value, NULs included
  }
  large.nvlink_partition_ids = {"p-3", "p-1", "p-2", "p-1"};  // order and repeats are kept
  changes.upsert_instances = {bare, large};
  ASSERT_TRUE(store->Commit(changes).ok()) << store->failure();

  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  LoadedState state = Load(*store);
  EXPECT_EQ(state.machines, changes.upsert_machines);
  EXPECT_EQ(state.domains, changes.upsert_domains);
  ASSERT_EQ(state.instances.size(), 2u);
  EXPECT_EQ(state.instances[0], bare);
  EXPECT_EQ(state.instances[1].details.size(), large.details.size());
  EXPECT_TRUE(state.instances[1] == large);
}

TEST_P(StoreContractTest, PartitionIdsThatCannotBeStoredAreRefusedWithoutLatching) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet changes = MakeFleet(1, 1, 1);
  for (std::vector<std::string> ids : {std::vector<std::string>{"p-1", ""},
                                       std::vector<std::string>{"p-1\np-2"}}) {
    ChangeSet bad = changes;
    InstanceRow instance = MakeInstance("i-1", "a", "m-0-0", 0);
    instance.nvlink_partition_ids = ids;
    bad.upsert_instances = {instance};
    absl::Status s = store->Commit(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr("i-1"));
  }
  // Refused before anything was written: the store still commits.
  EXPECT_TRUE(store->failure().ok());
  ASSERT_TRUE(store->Commit(changes).ok()) << store->failure();
  EXPECT_EQ(Load(*store).instances.size(), 0u);
}

TEST_P(StoreContractTest, ChangeSetIsAtomicWhenALaterPartViolatesAConstraint) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet fleet = MakeFleet(1, 4, 1);
  fleet.upsert_instances = {MakeInstance("i-1", "first", "m-0-0")};
  ASSERT_TRUE(store->Commit(fleet).ok());
  const LoadedState before = Load(*store);

  ChangeSet bad;
  bad.upsert_domains = {MakeDomain(7)};
  bad.upsert_machines = {MakeMachine(7, 0)};
  bad.put_meta = {MetaRow{"fleet_seeded", "changed"}};
  bad.upsert_instances = {MakeInstance("i-2", "fine", "m-0-1"), MakeInstance("i-3", "bad", "m-0-2")};
  bad.upsert_instances[1].gpu_count = 0;
  absl::Status status = store->Commit(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr(Violation("CHECK")));
  // SQLite's statement names the instance; PostgreSQL's DETAIL shows the row.
  EXPECT_THAT(status.message(), HasSubstr(postgres() ? "i-3, bad" : "\"i-3\""));

  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  const LoadedState after = Load(*store);
  EXPECT_EQ(after.domains, before.domains);
  EXPECT_EQ(after.machines, before.machines);
  EXPECT_EQ(after.instances, before.instances);
  EXPECT_EQ(after.meta, before.meta);
}

TEST_P(StoreContractTest, FailedCommitLatchesWritesButNotReads) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Commit(MakeFleet(1, 2, 1)).ok());
  ChangeSet unknown_tenant;
  unknown_tenant.upsert_instances = {MakeInstance("i-1", "x", "m-0-0", /*tenant=*/7)};
  absl::Status first = store->Commit(unknown_tenant);
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(first.message(), HasSubstr(Violation("FOREIGN KEY")));
  EXPECT_EQ(store->failure(), first);

  ChangeSet fine;
  fine.put_meta = {MetaRow{"k", "v"}};
  absl::Status later = store->Commit(fine);
  EXPECT_EQ(later.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(later.message(), HasSubstr("refuses writes"));
  EXPECT_THAT(later.message(), HasSubstr(Violation("FOREIGN KEY")));
  EXPECT_EQ(store->Commit(ChangeSet()).code(), absl::StatusCode::kUnavailable);

  EXPECT_EQ(Load(*store).machines.size(), 2u);
}

TEST_P(StoreContractTest, UpsertAndDeleteOfOneIdIsInvalidArgumentAndDoesNotLatch) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet fleet = MakeFleet(1, 2, 1);
  ASSERT_TRUE(store->Commit(fleet).ok());
  ChangeSet both;
  both.upsert_machines = {fleet.upsert_machines[0]};
  both.delete_machine_ids = {fleet.upsert_machines[0].id};
  absl::Status status = store->Commit(both);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("both upserts and deletes machine \"m-0-0\""));
  EXPECT_TRUE(store->failure().ok());
  EXPECT_TRUE(store->Commit(fleet).ok());
}

TEST_P(StoreContractTest, DeletingAnInstanceThatIsNotStoredIsANoOp) {
  // A group can create and delete the same instance: its net effect is only the delete.
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet changes = MakeFleet(1, 1, 1);
  changes.delete_instance_ids = {"i-created-and-deleted-in-one-group"};
  CommitStats stats;
  ASSERT_TRUE(store->Commit(changes, &stats).ok()) << store->failure();
  EXPECT_EQ(Load(*store).machines.size(), 1u);
}

// Since schema version 12 the store checks neither a tenant's instance names nor that an
// instance's machine exists: the engine refuses both before it writes (NameTaken, and
// RemoveMachine while an instance holds the machine: inventory_service_test). The store still
// checks an instance's tenant and instance type.
TEST_P(StoreContractTest, InstanceNamesAndMachinesAreTheEnginesToCheck) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet fleet = MakeFleet(1, 2, 1);
  fleet.upsert_instances = {MakeInstance("i-1", "x", "m-0-0"), MakeInstance("i-2", "x", "m-0-1")};
  ASSERT_TRUE(store->Commit(fleet).ok()) << store->failure();
  ChangeSet remove;
  remove.delete_machine_ids = {"m-0-0"};
  ASSERT_TRUE(store->Commit(remove).ok()) << store->failure();
  const LoadedState state = Load(*store);
  EXPECT_EQ(state.machines.size(), 1u);
  ASSERT_EQ(state.instances.size(), 2u);
  EXPECT_EQ(state.instances[0].machine_id, "m-0-0");

  ChangeSet unknown_type;
  unknown_type.upsert_instances = {MakeInstance("i-3", "y", "m-0-1")};
  unknown_type.upsert_instances[0].instance_type_id = "no-such-type";
  absl::Status status = store->Commit(unknown_type);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr(Violation("FOREIGN KEY")));
}

TEST_P(StoreContractTest, CommitReportsDurationAndRowsWritten) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  // 1 type + 1 domain + 2 machines + 4 labels + 1 tenant + 1 quota + 1 meta.
  CommitStats stats;
  ASSERT_TRUE(store->Commit(MakeFleet(1, 2, 1), &stats).ok());
  EXPECT_EQ(stats.rows_written, 11);
  EXPECT_GT(stats.duration, absl::ZeroDuration());

  // An instance (its 2 partition ids in its row), plus an idempotency record.
  ChangeSet create;
  create.upsert_instances = {MakeInstance("i-1", "x", "m-0-0")};
  create.put_idempotency = {IdempotencyRow{"t-0", "req", "fp", "resp", 1}};
  ASSERT_TRUE(store->Commit(create, &stats).ok());
  EXPECT_EQ(stats.rows_written, 2);

  ASSERT_TRUE(store->Commit(ChangeSet(), &stats).ok());
  EXPECT_EQ(stats.rows_written, 0);
}

TEST_F(StoreTest, SyncNormalDatabaseReopensWithEverything) {
  StoreOptions options = Options();
  options.sync = SyncMode::kNormal;
  ChangeSet fleet = MakeFleet(2, 18, 1);
  {
    std::unique_ptr<Store> store = Open(options);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Commit(fleet).ok());
  }
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Load(*store).machines, fleet.upsert_machines);
}

TEST_F(StoreTest, InMemoryDatabaseWorks) {
  StoreOptions options;
  options.path = ":memory:";
  std::unique_ptr<Store> store = Open(options);
  ASSERT_NE(store, nullptr);
  ChangeSet fleet = MakeFleet(1, 3, 1);
  ASSERT_TRUE(store->Commit(fleet).ok());
  EXPECT_EQ(Load(*store).machines, fleet.upsert_machines);
}

// An instance whose details take `bytes`: enough to outgrow a small database quickly.
InstanceRow BulkyInstance(int i, size_t bytes) {
  InstanceRow row = MakeInstance(absl::StrCat("i-", i), absl::StrCat("bulky-", i), "");
  row.details.assign(bytes, static_cast<char>('a' + i % 26));
  return row;
}

TEST_F(StoreTest, PageCapDiskFullIsUnavailableAndKeepsEarlierCommits) {
  StoreOptions options = Options();
  options.max_page_count = 80;  // the v1 schema takes about 25 pages of 4 KiB
  std::unique_ptr<Store> store = Open(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Commit(MakeFleet(1, 4, 1)).ok());
  std::vector<InstanceRow> committed;
  absl::Status status;
  for (int i = 0; i < 100 && status.ok(); ++i) {
    ChangeSet changes;
    changes.upsert_instances = {BulkyInstance(i, 20000)};
    status = store->Commit(changes);
    if (status.ok()) committed.push_back(changes.upsert_instances[0]);
  }
  ASSERT_FALSE(status.ok()) << "the page cap was never reached";
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("database or disk is full"));
  EXPECT_THAT(status.message(), HasSubstr("SQLITE_FULL"));
  EXPECT_FALSE(committed.empty());

  store.reset();
  store = Open();  // no cap
  ASSERT_NE(store, nullptr);
  LoadedState state = Load(*store);
  EXPECT_EQ(state.machines.size(), 4u);
  EXPECT_EQ(state.instances, committed);
}

// Mounts a tmpfs of `size` on a fresh directory; unmounts it (even after a failed assertion)
// when destroyed.
class SmallTmpfs {
 public:
  explicit SmallTmpfs(const std::string& dir, const char* size) : dir_(dir) {
    std::filesystem::create_directories(dir_);
    const std::string data = absl::StrCat("size=", size);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, data.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = absl::StrCat("mount -t tmpfs -o ", data, " ", dir_, ": ", std::strerror(errno));
    }
  }
  ~SmallTmpfs() {
    if (mounted_ && ::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

TEST_F(StoreTest, FullFilesystemIsUnavailableAndKeepsEarlierCommits) {
  // Opening takes about 160 KiB (schema in the WAL, shared memory); each commit then
  // appends about 40 KiB of WAL frames.
  SmallTmpfs tmpfs(dir_.File("tmpfs"), "512k");
  if (!tmpfs.mounted()) GTEST_SKIP() << "cannot mount a size-capped tmpfs here: " << tmpfs.error();
  StoreOptions options = Options();
  options.path = dir_.File("tmpfs/state.db");
  std::unique_ptr<Store> store = Open(options);  // destroyed before `tmpfs` unmounts
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Commit(MakeFleet(1, 2, 1)).ok());
  std::vector<InstanceRow> committed;
  absl::Status status;
  for (int i = 0; i < 100 && status.ok(); ++i) {
    ChangeSet changes;
    changes.upsert_instances = {BulkyInstance(i, 8000)};
    status = store->Commit(changes);
    if (status.ok()) committed.push_back(changes.upsert_instances[0]);
  }
  ASSERT_FALSE(status.ok()) << "512 KiB never filled up";
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("full"));
  EXPECT_FALSE(committed.empty()) << status;

  store.reset();
  store = Open(options);
  ASSERT_NE(store, nullptr);
  LoadedState state = Load(*store);
  EXPECT_EQ(state.machines.size(), 2u);
  EXPECT_EQ(state.instances, committed);
  store.reset();
}

}  // namespace
}  // namespace nvlsched::store
