// Tests allocator/undo_journal.h (its use for rollback is in allocator_recovery_test).
#include "allocator/undo_journal.h"

#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(UndoJournalTest, RecordsAndSavedValuesComeBackLastInFirstOut) {
  UndoJournal journal;
  journal.Push(UndoKind::kClaimAdded, 4);
  Machine before;
  before.id = "m";
  before.state_reason = "old";
  journal.Save(before);
  journal.Push(UndoKind::kMachineChanged, 9);
  EXPECT_EQ(journal.size(), 2u);

  UndoRecord last = journal.PopRecord();
  EXPECT_EQ(last.kind, UndoKind::kMachineChanged);
  EXPECT_EQ(last.index, 9u);
  EXPECT_EQ(journal.PopSavedMachine().state_reason, "old");
  EXPECT_EQ(journal.PopRecord().kind, UndoKind::kClaimAdded);
  EXPECT_TRUE(journal.empty());
}

TEST(UndoJournalTest, GrowingKeepsEveryRecordInOrder) {
  UndoJournal journal;
  constexpr uint32_t kRecords = 1000;  // several doublings of the record storage
  for (uint32_t i = 0; i < kRecords; ++i) {
    journal.Push(i % 2 == 0 ? UndoKind::kClaimAdded : UndoKind::kClaimReleased, i);
  }
  ASSERT_EQ(journal.size(), kRecords);
  for (uint32_t i = kRecords; i-- > 0;) {
    UndoRecord record = journal.PopRecord();
    ASSERT_EQ(record.index, i);
    ASSERT_EQ(record.kind, i % 2 == 0 ? UndoKind::kClaimAdded : UndoKind::kClaimReleased);
  }
  EXPECT_TRUE(journal.empty());
}

TEST(UndoJournalTest, ClearForgetsEverythingAndBumpsTheEpoch) {
  UndoJournal journal;
  uint64_t epoch = journal.epoch();
  journal.Save(Tenant{});
  journal.Push(UndoKind::kTenantChanged, 0);
  journal.Clear();
  EXPECT_TRUE(journal.empty());
  EXPECT_NE(journal.epoch(), epoch);
  journal.Push(UndoKind::kBatchAdded, 3);  // the storage is reused after Clear
  EXPECT_EQ(journal.PopRecord().index, 3u);
}

}  // namespace
}  // namespace nvlsched::allocator
