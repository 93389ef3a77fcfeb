// PgStore's own behaviour (store/pg_store.h), on fresh databases of the test server: the
// leader lock and the standby's view of it, fencing once the lock's connection is lost,
// snapshots into SQLite, events, the schema version, URIs in messages. The contract both stores
// share is in store_test.cc (StoreContractTest).
#include "store/pg_store.h"

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/copy.h"
#include "store/schema.h"
#include "store/store.h"
#include "tests/store/store_test_util.h"
#include "tests/testing/pg_test_database.h"

namespace nvlsched::store {
namespace {

using ::nvlsched::store::store_testing::MakeFleet;
using ::nvlsched::store::store_testing::MakeInstance;
using ::nvlsched::store::store_testing::OpenOrFail;
using ::nvlsched::store::store_testing::TempDir;
using ::testing::HasSubstr;

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<nvlsched::testing::PgTestDatabase> db =
        nvlsched::testing::PgTestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status();
    db_.emplace(*std::move(db));
  }

  StoreOptions Options() const {
    StoreOptions options;
    options.path = db_->uri();
    return options;
  }

  std::unique_ptr<Store> Open() { return OpenOrFail(Options()); }

  // Runs `sql` on a connection of its own (an operator's psql).
  pqxx::result Admin(const std::string& sql) {
    pqxx::connection conn(db_->uri());
    pqxx::nontransaction t(conn);
    return t.exec(sql);
  }

  // pg_terminate_backend on every session that announced `name`: how an operator (or a
  // network partition) cuts a daemon off from the database. Returns how many it ended.
  int Terminate(const std::string& name) {
    pqxx::connection conn(db_->uri());
    pqxx::nontransaction t(conn);
    return t.exec1(absl::StrCat("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE application_name = ",
                                t.quote(name)))[0]
        .as<int>();
  }

  std::optional<nvlsched::testing::PgTestDatabase> db_;
  TempDir dir_;
};

TEST_F(PgStoreTest, OpenPicksPostgresByTheUriAndCreatesTheTablesAtTheCurrentVersion) {
  EXPECT_TRUE(IsPostgresUri("postgresql:///x?host=/tmp"));
  EXPECT_TRUE(IsPostgresUri("postgres://u@h/x"));
  EXPECT_FALSE(IsPostgresUri("/var/lib/nvlsched/state.db"));
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<LoadedState> state = store->LoadAll();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->schema_version, CurrentSchemaVersion());
  EXPECT_EQ(Admin("SELECT version FROM nvlsched_schema")[0][0].as<int>(),
            CurrentSchemaVersion());
}

TEST_F(PgStoreTest, SecondOpenIsAbortedNamingTheAnnouncedLeaderUntilTheFirstCloses) {
  std::unique_ptr<Store> leader = Open();
  ASSERT_NE(leader, nullptr);
  absl::StatusOr<std::unique_ptr<Store>> early = Store::Open(Options());
  EXPECT_EQ(early.status().code(), absl::StatusCode::kAborted) << early.status();
  EXPECT_THAT(early.status().message(), HasSubstr("(starting)"));

  ASSERT_TRUE(leader->AnnounceLeader("10.1.2.3:7443").ok());
  absl::StatusOr<std::unique_ptr<Store>> standby = Store::Open(Options());
  EXPECT_EQ(standby.status().code(), absl::StatusCode::kAborted) << standby.status();
  EXPECT_THAT(standby.status().message(), HasSubstr("the leader is 10.1.2.3:7443"));
  // The refused Open changed nothing: the leader still commits.
  ASSERT_TRUE(leader->Commit(MakeFleet(1, 2, 1)).ok());
  EXPECT_TRUE(leader->CheckLeadership().ok());

  leader.reset();  // the session ends, and the lock with it
  std::unique_ptr<Store> next = Open();
  ASSERT_NE(next, nullptr);
  absl::StatusOr<LoadedState> state = next->LoadAll();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->machines.size(), 2u);
}

// The fencing rule: a leader whose connection is gone never writes again, even once the server
// is reachable, and another daemon can take over at once.
TEST_F(PgStoreTest, LeaderWhoseConnectionIsTerminatedNeverCommitsAgain) {
  std::unique_ptr<Store> old_leader = Open();
  ASSERT_NE(old_leader, nullptr);
  ASSERT_TRUE(old_leader->AnnounceLeader("old-leader").ok());
  ASSERT_TRUE(old_leader->Commit(MakeFleet(1, 3, 1)).ok());
  ASSERT_EQ(Terminate("old-leader"), 1);

  ChangeSet create;
  create.upsert_instances = {MakeInstance("i-1", "x", "m-0-0")};
  absl::Status lost = old_leader->Commit(create);
  EXPECT_EQ(lost.code(), absl::StatusCode::kUnavailable) << lost;
  EXPECT_FALSE(old_leader->failure().ok());

  // The lock went with the session: a standby takes it and writes.
  std::unique_ptr<Store> new_leader = Open();
  ASSERT_NE(new_leader, nullptr);
  ChangeSet other;
  other.upsert_instances = {MakeInstance("i-2", "y", "m-0-1")};
  ASSERT_TRUE(new_leader->Commit(other).ok());

  // The old one stays fenced: no reconnect, however often it tries.
  for (int i = 0; i < 3; ++i) {
    absl::Status again = old_leader->Commit(create);
    EXPECT_EQ(again.code(), absl::StatusCode::kUnavailable) << again;
    EXPECT_THAT(again.message(), HasSubstr("refuses writes"));
  }
  EXPECT_EQ(old_leader->CheckLeadership().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Admin("SELECT id FROM instances ORDER BY id").size(), 1u);
  EXPECT_EQ(Admin("SELECT id FROM instances")[0][0].as<std::string>(), "i-2");
}

// An idle leader learns of a lost connection from CheckLeadership (the daemon polls it).
TEST_F(PgStoreTest, CheckLeadershipNoticesALostConnectionWhileIdle) {
  std::unique_ptr<Store> leader = Open();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(leader->AnnounceLeader("idle-leader").ok());
  EXPECT_TRUE(leader->CheckLeadership().ok());
  ASSERT_EQ(Terminate("idle-leader"), 1);
  absl::Status status = leader->CheckLeadership();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("holds the leader lock was lost"));
  EXPECT_EQ(leader->Commit(MakeFleet(1, 1, 1)).code(), absl::StatusCode::kUnavailable);
}

TEST_F(PgStoreTest, SnapshotIsASqliteDatabaseWithEverything) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet changes = MakeFleet(2, 3, 2);
  changes.upsert_instances = {MakeInstance("i-1", "a", "m-0-0"), MakeInstance("i-2", "b", "")};
  changes.put_idempotency = {IdempotencyRow{"t-0", "req-1", std::string("\0\xff", 2), "r", 5}};
  changes.append_events = {EventRow{1, 10, 2, "org-0", "t-0", "one"},
                           EventRow{2, 11, 3, "org-0", "t-0", std::string("\0two", 4)}};
  ASSERT_TRUE(store->Commit(changes).ok()) << store->failure();
  absl::StatusOr<LoadedState> before = store->LoadAll();
  ASSERT_TRUE(before.ok()) << before.status();

  const std::string path = dir_.File("snap.db");
  ASSERT_TRUE(store->WriteSnapshot(path).ok());
  EXPECT_EQ(store->WriteSnapshot(path).code(), absl::StatusCode::kAlreadyExists);

  StoreOptions sqlite;
  sqlite.path = path;
  absl::StatusOr<std::unique_ptr<Store>> copy = Store::Open(sqlite);
  ASSERT_TRUE(copy.ok()) << copy.status();
  absl::StatusOr<LoadedState> after = (*copy)->LoadAll();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->instance_types, before->instance_types);
  EXPECT_EQ(after->domains, before->domains);
  EXPECT_EQ(after->machines, before->machines);
  EXPECT_EQ(after->tenants, before->tenants);
  EXPECT_EQ(after->instances, before->instances);
  EXPECT_EQ(after->idempotency, before->idempotency);
  EXPECT_EQ(after->meta, before->meta);
  EXPECT_EQ(after->newest_event, 2u);
  absl::StatusOr<std::vector<EventRow>> events = (*copy)->ReadEvents(0, 10);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(*events, changes.append_events);
}

TEST_F(PgStoreTest, EventsAreReadInOrderAfterASequenceAndPruned) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ChangeSet changes = MakeFleet(1, 1, 1);
  for (uint64_t i = 1; i <= 5; ++i) {
    changes.append_events.push_back(EventRow{i, static_cast<int64_t>(i), 1, "o", "t", "p"});
  }
  ASSERT_TRUE(store->Commit(changes).ok()) << store->failure();
  absl::StatusOr<std::vector<EventRow>> events = store->ReadEvents(2, 2);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].sequence, 3u);
  EXPECT_EQ((*events)[1].sequence, 4u);

  ChangeSet prune;
  prune.prune_events_through = 3;
  ASSERT_TRUE(store->Commit(prune).ok());
  absl::StatusOr<LoadedState> state = store->LoadAll();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->oldest_event, 4u);
  EXPECT_EQ(state->newest_event, 5u);
}

TEST_F(PgStoreTest, NewerSchemaVersionIsFailedPreconditionNamingBothVersions) {
  ASSERT_NE(Open(), nullptr);
  Admin("UPDATE nvlsched_schema SET version = 999");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 999"));
  EXPECT_THAT(store.status().message(), HasSubstr(absl::StrCat(CurrentSchemaVersion())));
}

// The constraints on instances, sorted by name.
std::string InstanceConstraints(const pqxx::result& r) {
  std::vector<std::string> names;
  for (const auto& row : r) names.push_back(row[0].as<std::string>());
  return absl::StrJoin(names, ",");
}
constexpr char kInstanceConstraints[] =
    "SELECT conname FROM pg_constraint WHERE conrelid = 'instances'::regclass ORDER BY conname";

TEST_F(PgStoreTest, NewStoreRunsTheMigrationsAfterVersionElevenAndAnOldOneUpgradesInPlace) {
  StoreOptions fresh = Options();
  int reported = 0;
  fresh.on_migration = [&reported](const MigrationStep&) { ++reported; };
  std::unique_ptr<Store> store = OpenOrFail(fresh);
  EXPECT_EQ(reported, 0);  // a new store is created, not upgraded
  ASSERT_NE(store, nullptr);
  // Created at version 11 and migrated: no unique name, no key to machines.
  const std::string current =
      "instances_gpu_count_check,instances_instance_type_id_fkey,instances_pkey,"
      "instances_tenant_id_fkey";
  EXPECT_EQ(InstanceConstraints(Admin(kInstanceConstraints)), current);
  ChangeSet changes = MakeFleet(1, 3, 1);
  changes.upsert_instances = {MakeInstance("i-1", "a", "m-0-0"), MakeInstance("i-2", "b", "")};
  ASSERT_TRUE(store->Commit(changes).ok()) << store->failure();
  absl::StatusOr<LoadedState> before = store->LoadAll();
  ASSERT_TRUE(before.ok()) << before.status();
  store.reset();

  // What version 11 had, with its rows.
  Admin(R"sql(
    ALTER TABLE instances ADD CONSTRAINT instances_tenant_id_name_key UNIQUE (tenant_id, name),
      ADD CONSTRAINT instances_machine_id_fkey FOREIGN KEY (machine_id) REFERENCES machines(id);
    UPDATE nvlsched_schema SET version = 11;
  )sql");
  ASSERT_NE(InstanceConstraints(Admin(kInstanceConstraints)), current);
  StoreOptions options = Options();
  std::vector<std::string> seen;
  options.on_migration = [&seen](const MigrationStep& step) {
    seen.push_back(absl::StrCat(step.from_version, "->", step.to_version,
                                step.took.has_value() ? " done" : " starting"));
  };
  store = OpenOrFail(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(seen, (std::vector<std::string>{"11->12 starting", "11->12 done"}));
  absl::StatusOr<LoadedState> after = store->LoadAll();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->schema_version, CurrentSchemaVersion());
  EXPECT_EQ(after->instances, before->instances);
  EXPECT_EQ(InstanceConstraints(Admin(kInstanceConstraints)), current);
  // A second name "a" is the engine's to refuse now.
  ChangeSet same_name;
  same_name.upsert_instances = {MakeInstance("i-3", "a", "m-0-1")};
  EXPECT_TRUE(store->Commit(same_name).ok()) << store->failure();
}

TEST_F(PgStoreTest, FailedMigrationLeavesTheDatabaseAtItsVersionAndSaysWhichOne) {
  ASSERT_NE(Open(), nullptr);
  // Version 11 without the constraint version 12 drops: its migration fails.
  Admin("UPDATE nvlsched_schema SET version = 11");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("applying schema migration 12 to"));
  EXPECT_THAT(store.status().message(), HasSubstr("instances_tenant_id_name_key"));
  EXPECT_EQ(Admin("SELECT version FROM nvlsched_schema")[0][0].as<int>(), 11);
}

TEST_F(PgStoreTest, UnreachableServerIsUnavailableAndBadUriInvalidArgument) {
  StoreOptions options;
  options.path = absl::StrCat("postgresql:///db?host=", dir_.File("no-server"));
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("connecting to"));

  options.path = "postgresql://h/db?no_such_option=1";
  store = Store::Open(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("no_such_option"));
}

// The migration path: a SQLite file into PostgreSQL and back, everything equal, in order.
TEST_F(PgStoreTest, CopyStoreMovesASqliteDatabaseIntoPostgresAndBack) {
  ChangeSet changes = MakeFleet(2, 3, 2);
  changes.upsert_instances = {MakeInstance("i-2", "b", "m-0-1"), MakeInstance("i-1", "a", "")};
  changes.put_meta = {MetaRow{"fleet_seeded", "1"}};
  for (uint64_t i = 1; i <= 3; ++i) {
    changes.append_events.push_back(EventRow{i, static_cast<int64_t>(i), 1, "o", "t", "p"});
  }
  StoreOptions sqlite;
  sqlite.path = dir_.File("source.db");
  absl::StatusOr<std::unique_ptr<Store>> source = Store::Open(sqlite);
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_TRUE((*source)->Commit(changes).ok());

  std::unique_ptr<Store> pg = Open();
  ASSERT_NE(pg, nullptr);
  CopyReport report;
  ASSERT_TRUE(CopyStore(**source, *pg, &report).ok());
  EXPECT_EQ(report.machines, 6u);
  EXPECT_EQ(report.instances, 2u);
  EXPECT_EQ(report.events, 3u);
  // A second copy into the now non-empty database is refused and changes nothing.
  absl::Status again = CopyStore(**source, *pg);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_THAT(again.message(), HasSubstr("not empty"));

  StoreOptions back_options;
  back_options.path = dir_.File("back.db");
  absl::StatusOr<std::unique_ptr<Store>> back = Store::Open(back_options);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(CopyStore(*pg, **back).ok());
  absl::StatusOr<LoadedState> a = (*source)->LoadAll();
  absl::StatusOr<LoadedState> b = (*back)->LoadAll();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->instance_types, a->instance_types);
  EXPECT_EQ(b->domains, a->domains);
  EXPECT_EQ(b->machines, a->machines);
  EXPECT_EQ(b->tenants, a->tenants);
  EXPECT_EQ(b->instances, a->instances);  // i-2 before i-1: insertion order, not id order
  EXPECT_EQ(b->meta, a->meta);
  absl::StatusOr<std::vector<EventRow>> events = (*back)->ReadEvents(0, 10);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(*events, changes.append_events);
}

TEST(RedactPostgresUriTest, HidesPasswordsOnly) {
  EXPECT_EQ(RedactPostgresUri("postgresql://nv:s3cret@db.example:5432/nvl?sslmode=require"),
            "postgresql://nv:***@db.example:5432/nvl?sslmode=require");
  EXPECT_EQ(RedactPostgresUri("postgresql://nv@db/nvl?password=s3cret&sslmode=require"),
            "postgresql://nv@db/nvl?password=***&sslmode=require");
  EXPECT_EQ(RedactPostgresUri("postgresql:///nvl?host=/run/pg"), "postgresql:///nvl?host=/run/pg");
}

}  // namespace
}  // namespace nvlsched::store
