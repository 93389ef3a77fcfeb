// Tests allocator/small_bitset.h against a brute-force bool array.
#include "allocator/small_bitset.h"

#include <array>
#include <random>

#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(SmallBitsetTest, EmptySetHasNoMembers) {
  SmallBitset set;
  EXPECT_TRUE(set.None());
  EXPECT_EQ(set.First(), -1);
  EXPECT_EQ(set.Last(), -1);
  EXPECT_EQ(set.Count(), 0);
}

TEST(SmallBitsetTest, FindsAcrossWordBoundaries) {
  SmallBitset set;
  for (int i : {0, 63, 64, 127, 128, 191}) set.Set(i);
  EXPECT_EQ(set.First(), 0);
  EXPECT_EQ(set.NextFrom(1), 63);
  EXPECT_EQ(set.NextFrom(65), 127);
  EXPECT_EQ(set.NextFrom(129), 191);
  EXPECT_EQ(set.PrevFrom(190), 128);
  EXPECT_EQ(set.PrevFrom(126), 64);
  EXPECT_EQ(set.PrevFrom(62), 0);
  EXPECT_EQ(set.Last(), 191);
  EXPECT_EQ(set.Count(), 6);
  set.Reset(0);
  EXPECT_EQ(set.PrevFrom(62), -1);
  EXPECT_EQ(set.NextFrom(192), -1);
  EXPECT_EQ(set.PrevFrom(-1), -1);
}

TEST(SmallBitsetTest, MatchesABruteForceModel) {
  std::mt19937 rng(7);
  SmallBitset set;
  std::array<bool, SmallBitset::kBits> model{};
  for (int step = 0; step < 5000; ++step) {
    int i = static_cast<int>(rng() % SmallBitset::kBits);
    if (rng() % 2) {
      set.Set(i);
      model[i] = true;
    } else {
      set.Reset(i);
      model[i] = false;
    }
    int from = static_cast<int>(rng() % SmallBitset::kBits);
    int next = -1, prev = -1;
    for (int j = from; j < SmallBitset::kBits; ++j) {
      if (model[j]) { next = j; break; }
    }
    for (int j = from; j >= 0; --j) {
      if (model[j]) { prev = j; break; }
    }
    ASSERT_EQ(set.NextFrom(from), next);
    ASSERT_EQ(set.PrevFrom(from), prev);
    ASSERT_EQ(set.Test(i), model[i]);
  }
}

}  // namespace
}  // namespace nvlsched::allocator
