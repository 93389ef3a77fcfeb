// Tests store/row_writer.h on an in-memory database: foreign-key ordering, child-row
// replacement, NULL for "none", constraint errors naming the row, and statement reuse.
#include "store/row_writer.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/schema.h"
#include "tests/store/store_test_util.h"

namespace nvlsched::store {
namespace {

using ::nvlsched::store::store_testing::MakeFleet;
using ::nvlsched::store::store_testing::MakeInstance;
using ::testing::HasSubstr;

class RowWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.exec("PRAGMA foreign_keys = ON");
    ASSERT_TRUE(MigrateToCurrent(db_, "mem").ok());
    absl::StatusOr<std::unique_ptr<RowWriter>> writer = RowWriter::Prepare(db_);
    ASSERT_TRUE(writer.ok()) << writer.status();
    writer_ = *std::move(writer);
  }

  // Applies in a transaction that commits only on success, like Store::Commit.
  absl::StatusOr<int64_t> Apply(const ChangeSet& changes) {
    SQLite::Transaction transaction(db_, SQLite::TransactionBehavior::IMMEDIATE);
    absl::StatusOr<int64_t> rows = writer_->Apply(changes);
    if (rows.ok()) transaction.commit();
    return rows;
  }

  int Count(const std::string& sql) { return db_.execAndGet(sql).getInt(); }

  int PreparedStatements() {
    int count = 0;
    for (sqlite3_stmt* s = sqlite3_next_stmt(db_.getHandle(), nullptr); s != nullptr;
         s = sqlite3_next_stmt(db_.getHandle(), s)) {
      ++count;
    }
    return count;
  }

  SQLite::Database db_{":memory:", SQLite::OPEN_READWRITE};
  std::unique_ptr<RowWriter> writer_;
};

TEST_F(RowWriterTest, OneChangeSetCanCreateAWholeFleetWithInstances) {
  ChangeSet changes = MakeFleet(2, 3, 1);
  changes.upsert_instances = {MakeInstance("i-1", "a", "m-1-2")};
  changes.put_idempotency = {IdempotencyRow{"t-0", "r", "f", "p", 1}};
  absl::StatusOr<int64_t> rows = Apply(changes);
  ASSERT_TRUE(rows.ok()) << rows.status();
  // 1 type + 2 domains + 6 machines + 12 labels + 1 tenant + 1 quota + 1 meta
  // + 1 instance (its 2 partition ids in the row) + 1 idempotency.
  EXPECT_EQ(*rows, 26);
  EXPECT_EQ(Count("SELECT count(*) FROM machines"), 6);
}

TEST_F(RowWriterTest, UpsertReplacesChildRowsWholesale) {
  ChangeSet changes = MakeFleet(1, 1, 1);
  changes.upsert_instances = {MakeInstance("i-1", "a", "m-0-0")};
  ASSERT_TRUE(Apply(changes).ok());
  changes.upsert_machines[0].labels = {{"only", "one"}};
  changes.upsert_tenants[0].quotas.clear();
  changes.upsert_instances[0].nvlink_partition_ids = {"p-9", "p-8", "p-7"};
  ASSERT_TRUE(Apply(changes).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM machine_labels"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM tenant_quotas"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM instances WHERE nvlink_partition_ids = 'p-9' || char(10) "
                  "|| 'p-8' || char(10) || 'p-7'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM instances"), 1);
}

TEST_F(RowWriterTest, EmptyMachineAndBatchAreStoredAsNull) {
  ChangeSet changes = MakeFleet(1, 1, 1);
  InstanceRow unplaced = MakeInstance("i-1", "a", "");
  unplaced.batch_id = "";
  changes.upsert_instances = {unplaced};
  ASSERT_TRUE(Apply(changes).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM instances WHERE machine_id IS NULL AND batch_id IS NULL"),
            1);
}

TEST_F(RowWriterTest, ConstraintErrorsNameTheRow) {
  ASSERT_TRUE(Apply(MakeFleet(1, 2, 1)).ok());
  ChangeSet no_gpus;
  no_gpus.upsert_instances = {MakeInstance("i-1", "fine", "m-0-0"),
                              MakeInstance("i-2", "bad", "m-0-1")};
  no_gpus.upsert_instances[1].gpu_count = 0;
  absl::StatusOr<int64_t> rows = Apply(no_gpus);
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(rows.status().message(), HasSubstr("upserting instance \"i-2\""));
  EXPECT_THAT(rows.status().message(), HasSubstr("CHECK constraint failed: gpu_count > 0"));

  ChangeSet bad_state = MakeFleet(1, 1, 1);
  bad_state.upsert_machines[0].state = 7;
  rows = Apply(bad_state);
  EXPECT_THAT(rows.status().message(), HasSubstr("upserting machine \"m-0-0\""));
  EXPECT_THAT(rows.status().message(), HasSubstr("CHECK constraint failed"));

  ChangeSet bad_quota = MakeFleet(1, 1, 1);
  bad_quota.upsert_tenants[0].quotas = {{"no-such-type", 1}};
  rows = Apply(bad_quota);
  EXPECT_THAT(rows.status().message(), HasSubstr("upserting tenant \"t-0\""));
  EXPECT_THAT(rows.status().message(), HasSubstr("FOREIGN KEY constraint failed"));
}

TEST_F(RowWriterTest, DeletingARowThatIsNotStoredIsANoOp) {
  ChangeSet changes;
  changes.delete_machine_ids = {"m-missing"};
  changes.delete_instance_ids = {"i-missing"};
  absl::StatusOr<int64_t> rows = Apply(changes);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, 0);
}

TEST_F(RowWriterTest, StatementsArePreparedOnceAndReused) {
  const int prepared = PreparedStatements();
  EXPECT_EQ(prepared, 15);  // 13 for the model, 2 for the event log (append, prune)
  ASSERT_TRUE(Apply(MakeFleet(2, 18, 2)).ok());
  for (int i = 0; i < 50; ++i) {
    ChangeSet changes;
    changes.upsert_instances = {
        MakeInstance(absl::StrCat("i-", i), absl::StrCat("n-", i), "m-0-0")};
    if (i > 0) changes.delete_instance_ids = {absl::StrCat("i-", i - 1)};
    ASSERT_TRUE(Apply(changes).ok());
  }
  EXPECT_EQ(PreparedStatements(), prepared);
}

}  // namespace
}  // namespace nvlsched::store
