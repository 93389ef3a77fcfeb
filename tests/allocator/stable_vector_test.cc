// Tests allocator/stable_vector.h: elements never move as the vector grows.
#include "allocator/stable_vector.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(StableVectorTest, AddressesSurviveGrowth) {
  StableVector<std::string> v;
  v.emplace_back() = "short";  // small-string buffer: would move in a std::vector
  const std::string* first = &v[0];
  const char* chars = v[0].data();
  for (int i = 0; i < 5000; ++i) v.emplace_back() = std::to_string(i);
  EXPECT_EQ(&v[0], first);
  EXPECT_EQ(v[0].data(), chars);
  EXPECT_EQ(v.size(), 5001u);
  EXPECT_EQ(v[4000], "3999");
  EXPECT_EQ(v.back(), "4999");
}

TEST(StableVectorTest, PopBackThenEmplaceGivesAFreshElement) {
  StableVector<std::vector<int>> v;
  v.emplace_back().push_back(7);
  v.pop_back();
  EXPECT_TRUE(v.empty());
  EXPECT_TRUE(v.emplace_back().empty());
}

TEST(StableVectorTest, IteratesInIndexOrder) {
  StableVector<int> v;
  for (int i = 0; i < 600; ++i) v.emplace_back() = i;
  int expected = 0;
  for (int x : v) EXPECT_EQ(x, expected++);
  EXPECT_EQ(expected, 600);
}

}  // namespace
}  // namespace nvlsched::allocator
