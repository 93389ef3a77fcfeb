// Tests allocator/slot_recycler.h.
#include "allocator/slot_recycler.h"

#include <vector>

#include "allocator/stable_vector.h"
#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(SlotRecyclerTest, ReleasedSlotsAreParkedUntilRecycled) {
  StableVector<int> slots;
  SlotRecycler recycler;
  uint32_t first = recycler.Allocate(slots);
  EXPECT_EQ(first, 0u);
  EXPECT_EQ(slots.size(), 1u);
  recycler.Release(first);
  uint32_t second = recycler.Allocate(slots);
  EXPECT_NE(second, first);  // parked: the journal may still need first's data
  EXPECT_EQ(recycler.parked_count(), 1u);
  recycler.Recycle();
  EXPECT_EQ(recycler.Allocate(slots), first);
  EXPECT_EQ(slots.size(), 2u);
}

TEST(SlotRecyclerTest, UndoTwinsRestoreTheStacksExactly) {
  StableVector<int> slots;
  SlotRecycler recycler;
  uint32_t a = recycler.Allocate(slots);
  uint32_t b = recycler.Allocate(slots);
  recycler.Release(a);
  recycler.Release(b);
  recycler.Unrelease(b);
  recycler.Unrelease(a);
  EXPECT_EQ(recycler.parked_count(), 0u);
  recycler.Unallocate(b);
  EXPECT_EQ(recycler.Allocate(slots), b);
}

// The claims table is a plain std::vector: the same rules hold for it.
TEST(SlotRecyclerTest, WorksOverAStdVector) {
  std::vector<int> slots;
  SlotRecycler recycler;
  uint32_t a = recycler.Allocate(slots);
  EXPECT_EQ(recycler.Allocate(slots), 1u);
  EXPECT_EQ(slots.size(), 2u);
  recycler.Release(a);
  EXPECT_EQ(recycler.Allocate(slots), 2u);  // parked, so not reused yet
  recycler.Recycle();
  EXPECT_EQ(recycler.Allocate(slots), a);
  EXPECT_EQ(slots.size(), 3u);
}

}  // namespace
}  // namespace nvlsched::allocator
