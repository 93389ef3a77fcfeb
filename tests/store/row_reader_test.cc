// Tests store/row_reader.h: insertion order, list order, and orphan child rows.
#include "store/row_reader.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Transaction.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/row_writer.h"
#include "store/schema.h"
#include "tests/store/store_test_util.h"

namespace nvlsched::store {
namespace {

using ::nvlsched::store::store_testing::MakeFleet;
using ::nvlsched::store::store_testing::MakeInstance;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class RowReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.exec("PRAGMA foreign_keys = ON");
    ASSERT_TRUE(MigrateToCurrent(db_, "mem").ok());
    writer_ = *RowWriter::Prepare(db_);
  }
  void Write(const ChangeSet& changes) {
    SQLite::Transaction transaction(db_);
    absl::StatusOr<int64_t> rows = writer_->Apply(changes);
    ASSERT_TRUE(rows.ok()) << rows.status();
    transaction.commit();
  }

  SQLite::Database db_{":memory:", SQLite::OPEN_READWRITE};
  std::unique_ptr<RowWriter> writer_;
};

TEST_F(RowReaderTest, EmptyDatabaseReadsEmptyAtCurrentVersion) {
  absl::StatusOr<LoadedState> state = ReadAllRows(db_);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->schema_version, CurrentSchemaVersion());
  EXPECT_THAT(state->machines, IsEmpty());
  EXPECT_THAT(state->meta, IsEmpty());
}

TEST_F(RowReaderTest, RowsComeBackInInsertionOrderNotIdOrder) {
  ChangeSet changes = MakeFleet(1, 3, 1);
  changes.upsert_instances = {MakeInstance("zz", "first", "m-0-0"),
                              MakeInstance("aa", "second", "m-0-1"),
                              MakeInstance("mm", "third", "m-0-2")};
  changes.put_meta = {MetaRow{"z", "1"}, MetaRow{"a", "2"}};
  Write(changes);
  absl::StatusOr<LoadedState> state = ReadAllRows(db_);
  ASSERT_TRUE(state.ok());
  std::vector<std::string> ids;
  for (const InstanceRow& row : state->instances) ids.push_back(row.id);
  EXPECT_THAT(ids, ElementsAre("zz", "aa", "mm"));
  EXPECT_THAT(state->meta, ElementsAre(MetaRow{"z", "1"}, MetaRow{"a", "2"}));
}

TEST_F(RowReaderTest, PartitionListsKeepOrderAndRepeats) {
  ChangeSet changes = MakeFleet(1, 2, 1);
  InstanceRow a = MakeInstance("i-a", "a", "m-0-0");
  a.nvlink_partition_ids = {"p-c", "p-a", "p-b", "p-a"};
  InstanceRow b = MakeInstance("i-b", "b", "m-0-1");
  b.nvlink_partition_ids = {"p-a"};
  changes.upsert_instances = {a, b};
  Write(changes);
  absl::StatusOr<LoadedState> state = ReadAllRows(db_);
  ASSERT_TRUE(state.ok());
  EXPECT_THAT(state->instances, ElementsAre(a, b));
}

TEST_F(RowReaderTest, ChildRowWithoutParentIsDataLoss) {
  Write(MakeFleet(1, 1, 1));
  db_.exec("PRAGMA foreign_keys = OFF");
  db_.exec("INSERT INTO machine_labels VALUES ('m-ghost', 'k', 'v')");
  absl::StatusOr<LoadedState> state = ReadAllRows(db_);
  EXPECT_EQ(state.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(state.status().message(), HasSubstr("machine_labels"));
  EXPECT_THAT(state.status().message(), HasSubstr("m-ghost"));
}

}  // namespace
}  // namespace nvlsched::store
