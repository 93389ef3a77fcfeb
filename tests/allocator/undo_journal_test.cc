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

TEST(UndoJournalTest, ClearForgetsEverythingAndBumpsTheEpoch) {
  UndoJournal journal;
  uint64_t epoch = journal.epoch();
  journal.Save(Tenant{});
  journal.Push(UndoKind::kTenantChanged, 0);
  journal.Clear();
  EXPECT_TRUE(journal.empty());
  EXPECT_NE(journal.epoch(), epoch);
}

}  // namespace
}  // namespace nvlsched::allocator
