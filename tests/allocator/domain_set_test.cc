// Tests allocator/domain_set.h against std::set, at sizes that exercise 1, 2 and 3 levels.
#include "allocator/domain_set.h"

#include <random>
#include <set>

#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(DomainSetTest, EmptyAndUnreserved) {
  DomainSet set;
  EXPECT_TRUE(set.Empty());
  EXPECT_EQ(set.First(), DomainSet::kNone);
  EXPECT_EQ(set.Next(0), DomainSet::kNone);
  EXPECT_FALSE(set.Contains(3));
}

TEST(DomainSetTest, InsertEraseAreIdempotent) {
  DomainSet set;
  set.Reserve(100);
  set.Insert(70);
  set.Insert(70);
  EXPECT_EQ(set.size(), 1u);
  set.Erase(5);
  EXPECT_EQ(set.size(), 1u);
  set.Erase(70);
  EXPECT_TRUE(set.Empty());
}

TEST(DomainSetTest, ReserveKeepsMembersWhenAddingLevels) {
  DomainSet set;
  set.Reserve(10);
  set.Insert(3);
  set.Insert(9);
  set.Reserve(300000);  // three levels now
  EXPECT_EQ(set.First(), 3u);
  EXPECT_EQ(set.Next(3), 9u);
  set.Insert(299999);
  EXPECT_EQ(set.Next(9), 299999u);
  EXPECT_EQ(set.Next(299999), DomainSet::kNone);
}

class DomainSetModelTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(DomainSetModelTest, MatchesStdSet) {
  const uint32_t capacity = GetParam();
  std::mt19937 rng(capacity);
  DomainSet set;
  set.Reserve(capacity);
  std::set<uint32_t> model;
  for (int step = 0; step < 20000; ++step) {
    uint32_t i = rng() % capacity;
    if (rng() % 3) {
      set.Insert(i);
      model.insert(i);
    } else {
      set.Erase(i);
      model.erase(i);
    }
    ASSERT_EQ(set.size(), model.size());
    ASSERT_EQ(set.First(), model.empty() ? DomainSet::kNone : *model.begin());
    uint32_t probe = rng() % capacity;
    auto it = model.upper_bound(probe);
    ASSERT_EQ(set.Next(probe), it == model.end() ? DomainSet::kNone : *it) << probe;
    ASSERT_EQ(set.Contains(probe), model.count(probe) == 1);
  }
  // Full iteration visits exactly the model, in order.
  std::vector<uint32_t> seen;
  for (uint32_t d = set.First(); d != DomainSet::kNone; d = set.Next(d)) seen.push_back(d);
  EXPECT_EQ(seen, std::vector<uint32_t>(model.begin(), model.end()));
}

INSTANTIATE_TEST_SUITE_P(Sizes, DomainSetModelTest,
                         ::testing::Values(1u, 63u, 64u, 65u, 4096u, 4097u, 300000u));

}  // namespace
}  // namespace nvlsched::allocator
